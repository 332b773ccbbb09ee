//! A second WhatsApp account with its own wa-engine client on a test server's embedded
//! sandbox ([`Peer`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use wa_engine::{Client, Event, IncomingMessage, Jid, MemoryStore, Store};
use wa_server::AppState;

use super::eventually;

/// A second WhatsApp account with its own wa-engine client, paired to the server's embedded
/// sandbox. Its events are drained into a channel at once, so the client never waits on the
/// test (its delivery receipts go out while the test polls HTTP).
pub(crate) struct Peer {
    /// The client.
    pub(crate) client: Client,
    /// Its events, drained at once.
    pub(crate) events: mpsc::UnboundedReceiver<Event>,
    /// Its JID (with device) once connected.
    pub(crate) jid: Jid,
}

impl Peer {
    /// Creates account `number` and links a client named `device_name` to it; returns
    /// once it is connected and its prekeys are on the server.
    pub(crate) async fn pair(state: &AppState, number: &str, device_name: &str) -> Self {
        let sb = state.sandbox().expect("sandbox");
        let phone = sb.create_account(number).expect("account");
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (client, mut stream) = Client::builder(store.clone())
            .url(sb.ws_url())
            .trust_root(sb.trust_root())
            .device_name(device_name)
            .prekey_batch(30)
            .connect()
            .await
            .expect("peer connects");
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(e) = stream.recv().await {
                if tx.send(e).is_err() {
                    break;
                }
            }
        });
        let mut peer = Self {
            client,
            events,
            jid: Jid::pn(number),
        };
        peer.jid = peer
            .wait("the peer to connect", |e| match e {
                Event::Qr { code, .. } => {
                    phone.scan(code).expect("the peer's phone scans");
                    None
                }
                Event::Connected { jid } => Some(jid.clone()),
                _ => None,
            })
            .await;
        // Its prekeys must be on the server before anyone can open a session with it.
        eventually("the peer's prekeys uploaded", || {
            let counters = store.prekey_counters().expect("store")?;
            (counters.first_unuploaded_id > 1).then_some(())
        })
        .await;
        peer
    }

    /// Its user JID (no device).
    pub(crate) fn user(&self) -> Jid {
        self.jid.to_non_ad()
    }

    /// The first event `pred` maps to something (30 s at most; `what` names it).
    pub(crate) async fn wait<T>(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&Event) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("the peer saw no {what} within 30 s"))
                .expect("peer event stream open");
            if let Some(t) = pred(&event) {
                return t;
            }
        }
    }

    /// The next message.
    pub(crate) async fn next_message(&mut self) -> IncomingMessage {
        self.wait("message", |e| match e {
            Event::Message(m) => Some((**m).clone()),
            _ => None,
        })
        .await
    }
}
