//! The embedder-facing event stream of [`Event`]s.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::Event;

/// The ordered, bounded stream of [`Event`]s of one client. The driver waits when it is full:
/// events are never dropped or reordered, so keep reading it.
///
/// Read with [`Events::recv`], or as a `futures::Stream`.
#[derive(Debug)]
pub struct Events {
    /// Boxed: tokio allocates channel slots in blocks of 32, and 32 `Event`s would take
    /// about 6.5 KiB per client even when idle.
    pub(crate) rx: mpsc::Receiver<Box<Event>>,
}

impl Events {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await.map(|e| *e)
    }
}

impl futures_util::Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx).map(|e| e.map(|e| *e))
    }
}
