//! Waiting for rich-message events of our engine (shared by the engine's rich-message tests
//! against the sandbox, Baileys and whatsmeow).

use std::time::Duration;

use wa_engine::message::rich::PollVoteEvent;
use wa_engine::message::{ContentKind, IncomingMessage};
use wa_engine::{Event, Events};

use super::engine::next_within;

/// The next incoming message of `kind`, within `within`.
pub async fn next_kind(
    within: Duration,
    events: &mut Events,
    kind: ContentKind,
) -> anyhow::Result<IncomingMessage> {
    next_within(events, within, |e| match e {
        Event::Message(m) if m.content().kind() == kind => Some((**m).clone()),
        _ => None,
    })
    .await
}

/// The next decrypted poll vote, within `within`.
pub async fn next_vote(within: Duration, events: &mut Events) -> anyhow::Result<PollVoteEvent> {
    next_within(events, within, |e| match e {
        Event::PollVote(v) => Some((**v).clone()),
        _ => None,
    })
    .await
}
