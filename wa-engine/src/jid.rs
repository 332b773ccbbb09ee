//! JIDs.

/// A WhatsApp JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jid;
