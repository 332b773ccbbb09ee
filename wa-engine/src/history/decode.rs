//! Reading an inflated `HistorySync` field by field, and the typed results clients keep
//! (shared/protocol/08 §9.2, 07 §1.2, §2.10, §3.3; whatsmeow `message.go` DownloadHistorySync
//! doStorage; Baileys `Utils/history.js` processHistoryMessage; whatsapp-rust
//! `wacore/src/history_sync.rs`).

use prost::Message as _;
use wa_proto::wa::{
    Conversation, GlobalSettings, PhoneNumberToLidMapping, Pushname, WebMessageInfo,
    history_sync::HistorySyncType,
};

use super::{HistoryConfig, HistoryError};
use crate::Jid;

/// One top-level field of a `HistorySync`, decoded on its own.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HistoryItem {
    /// Field 1: the chunk's sync type (raw value; see [`HistorySyncType`]).
    SyncType(i32),
    /// Field 2: one conversation with its messages.
    Conversation(Box<Conversation>),
    /// Field 3: one status message.
    StatusMessage(Box<WebMessageInfo>),
    /// Field 5.
    ChunkOrder(u32),
    /// Field 6: percent.
    Progress(u32),
    /// Field 7: one contact's push name.
    Pushname(Pushname),
    /// Field 8.
    GlobalSettings(GlobalSettings),
    /// Field 15: one PN↔LID mapping.
    LidMapping(PhoneNumberToLidMapping),
    /// Field 19: the account's NCT salt.
    NctSalt(Vec<u8>),
}

/// An iterator over the top-level fields of inflated `HistorySync` bytes, decoding one
/// field at a time so a caller holds at most one conversation besides the input
/// (whatsapp-rust extracts field by field for the same reason). Unknown fields are skipped.
/// After the first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct HistoryItems<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

/// Why a field could not be read from the bytes at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Short {
    /// The bytes end inside the field: more may follow (streaming) or the input is
    /// truncated (whole buffer).
    More,
    /// The bytes are not a valid protobuf field.
    Bad,
}

/// Reads a protobuf varint at `*pos`.
fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, Short> {
    let mut value = 0_u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or(Short::More)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Short::Bad)
}

/// Most nested groups skipped (prost's recursion limit).
const MAX_GROUP_DEPTH: usize = 100;

/// Moves `*pos` forward by `len` within `buf`.
fn advance(buf: &[u8], pos: &mut usize, len: usize) -> Result<(), Short> {
    let end = pos.checked_add(len).ok_or(Short::Bad)?;
    if end > buf.len() {
        return Err(Short::More);
    }
    *pos = end;
    Ok(())
}

/// Skips the body of group `field` whose start tag was just read, up to and including its
/// end tag.
fn skip_group(buf: &[u8], pos: &mut usize, field: u64) -> Result<(), Short> {
    let mut open = vec![field];
    while let Some(&current) = open.last() {
        let key = varint(buf, pos)?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, pos)?;
            }
            1 => advance(buf, pos, 8)?,
            5 => advance(buf, pos, 4)?,
            2 => {
                let len = usize::try_from(varint(buf, pos)?).map_err(|_| Short::Bad)?;
                advance(buf, pos, len)?;
            }
            3 => {
                if open.len() >= MAX_GROUP_DEPTH {
                    return Err(Short::Bad);
                }
                open.push(number);
            }
            4 if number == current => {
                open.pop();
            }
            _ => return Err(Short::Bad),
        }
    }
    Ok(())
}

/// Reads the top-level `HistorySync` field at the start of `buf`: its length in bytes and
/// the item, if it is one we use, or `None` if `buf` ends inside the field. `offset` (the position of `buf` in the whole stream) only
/// labels errors.
pub(super) fn parse_field(
    buf: &[u8],
    offset: usize,
) -> Result<Option<(usize, Option<HistoryItem>)>, HistoryError> {
    let mut pos = 0;
    let header = (|| {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        let body = match wire {
            0 => {
                let v = varint(buf, &mut pos)?;
                // Truncation to the declared 32-bit field types, as protobuf decoders do.
                return Ok((
                    pos,
                    match field {
                        1 => Some(HistoryItem::SyncType(v as i32)),
                        5 => Some(HistoryItem::ChunkOrder(v as u32)),
                        6 => Some(HistoryItem::Progress(v as u32)),
                        _ => None,
                    },
                    None,
                ));
            }
            1 => {
                advance(buf, &mut pos, 8)?;
                None
            }
            5 => {
                advance(buf, &mut pos, 4)?;
                None
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| Short::Bad)?;
                let start = pos;
                advance(buf, &mut pos, len)?;
                Some((field, start))
            }
            // A (deprecated) group: skipped like any unknown field, as prost does.
            3 => {
                skip_group(buf, &mut pos, field)?;
                None
            }
            // An end-group without a start; 6 and 7 do not exist.
            _ => return Err(Short::Bad),
        };
        Ok((pos, None, body))
    })();
    let (end, item, body) = match header {
        Ok(parts) => parts,
        Err(Short::More) => return Ok(None),
        Err(Short::Bad) => return Err(HistoryError::Malformed { offset }),
    };
    let Some((field, start)) = body else {
        return Ok(Some((end, item)));
    };
    let body = &buf[start..end];
    let proto = |what| move |source| HistoryError::Protobuf { what, source };
    let item = match field {
        2 => Some(HistoryItem::Conversation(Box::new(
            Conversation::decode(body).map_err(proto("Conversation"))?,
        ))),
        3 => Some(HistoryItem::StatusMessage(Box::new(
            WebMessageInfo::decode(body).map_err(proto("WebMessageInfo"))?,
        ))),
        7 => Some(HistoryItem::Pushname(
            Pushname::decode(body).map_err(proto("Pushname"))?,
        )),
        8 => Some(HistoryItem::GlobalSettings(
            GlobalSettings::decode(body).map_err(proto("GlobalSettings"))?,
        )),
        15 => Some(HistoryItem::LidMapping(
            PhoneNumberToLidMapping::decode(body).map_err(proto("PhoneNumberToLIDMapping"))?,
        )),
        19 => Some(HistoryItem::NctSalt(body.to_vec())),
        _ => None,
    };
    Ok(Some((end, item)))
}

impl<'a> HistoryItems<'a> {
    /// Iterates over `inflated` (the output of [`inflate`](super::inflate) or
    /// [`BlobInflater::finish`](super::BlobInflater::finish)).
    #[must_use]
    pub fn new(inflated: &'a [u8]) -> Self {
        Self {
            buf: inflated,
            offset: 0,
            failed: false,
        }
    }

    fn next_field(&mut self) -> Result<Option<HistoryItem>, HistoryError> {
        while self.offset < self.buf.len() {
            let start = self.offset;
            match parse_field(&self.buf[start..], start)? {
                Some((len, item)) => {
                    self.offset = start + len;
                    if item.is_some() {
                        return Ok(item);
                    }
                }
                // The buffer is all there is: a field cut short is malformed.
                None => return Err(HistoryError::Malformed { offset: start }),
            }
        }
        Ok(None)
    }
}

impl Iterator for HistoryItems<'_> {
    type Item = Result<HistoryItem, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_field() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// A contact's push name from history sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushName {
    /// The contact (as sent: usually a PN user JID).
    pub jid: Jid,
    /// The push name.
    pub name: String,
}

/// A phone number and its LID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LidMapping {
    /// `…@s.whatsapp.net`, no device.
    pub pn: Jid,
    /// `…@lid`, no device.
    pub lid: Jid,
}

/// A trusted-contact token the peer issued to us, restored from a conversation
/// (shared/protocol/07 §2.10: fields 21, 22, 28).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTcToken {
    /// Storage key: the peer's LID when the conversation names one, else the chat JID.
    pub jid: Jid,
    /// The token bytes.
    pub token: Vec<u8>,
    /// Unix seconds: when the server issued the token.
    pub timestamp: u64,
    /// Unix seconds: when we last issued our token to the peer, if known.
    pub sender_timestamp: Option<u64>,
}

/// What one history-sync chunk gives a client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistorySyncData {
    /// The chunk's type (`None` if absent or unknown).
    pub sync_type: Option<HistorySyncType>,
    /// Chunk order.
    pub chunk_order: Option<u32>,
    /// Progress, percent.
    pub progress: Option<u32>,
    /// Conversations; their `messages` are emptied when
    /// [`HistoryConfig::keep_messages`] is off.
    pub conversations: Vec<Conversation>,
    /// Status messages (dropped when `keep_messages` is off).
    pub status_messages: Vec<WebMessageInfo>,
    /// Contacts' push names.
    pub push_names: Vec<PushName>,
    /// PN↔LID mappings from field 15 and from each conversation's `lidJid`/`pnJid`
    /// (as Baileys does), without duplicates, in order of appearance.
    pub lid_mappings: Vec<LidMapping>,
    /// Trusted-contact tokens (conversations with a token and a non-zero timestamp).
    pub tc_tokens: Vec<HistoryTcToken>,
    /// The account's NCT salt (field 19), if present and non-empty.
    pub nct_salt: Option<Vec<u8>>,
    /// `GlobalSettings.chatDbLidMigrationTimestamp`, unix seconds, if set.
    pub chat_db_lid_migration_timestamp: Option<i64>,
}

impl HistorySyncData {
    /// Number of messages kept, over all conversations.
    #[must_use]
    pub fn message_count(&self) -> usize {
        self.conversations.iter().map(|c| c.messages.len()).sum()
    }

    fn add_mapping(&mut self, pn: Option<&str>, lid: Option<&str>) {
        let (Some(pn), Some(lid)) = (pn, lid) else {
            return;
        };
        let (Ok(pn), Ok(lid)) = (pn.parse::<Jid>(), lid.parse::<Jid>()) else {
            return;
        };
        if !pn.is_pn() || !lid.is_lid() {
            return;
        }
        let mapping = LidMapping {
            pn: pn.to_non_ad(),
            lid: lid.to_non_ad(),
        };
        if !self.lid_mappings.contains(&mapping) {
            self.lid_mappings.push(mapping);
        }
    }

    fn add_conversation(&mut self, mut conversation: Conversation, config: &HistoryConfig) {
        let id = conversation
            .id
            .as_deref()
            .and_then(|id| id.parse::<Jid>().ok());
        if let Some(id) = &id {
            let id_str = id.to_string();
            if id.is_pn() {
                self.add_mapping(Some(&id_str), conversation.lid_jid.as_deref());
            } else if id.is_lid() {
                self.add_mapping(conversation.pn_jid.as_deref(), Some(&id_str));
            }
        }
        let token = conversation.tc_token.as_deref().filter(|t| !t.is_empty());
        let timestamp = conversation.tc_token_timestamp.filter(|t| *t > 0);
        if let (Some(token), Some(timestamp), Some(id)) = (token, timestamp, &id) {
            let lid = conversation
                .lid_jid
                .as_deref()
                .and_then(|l| l.parse::<Jid>().ok())
                .filter(Jid::is_lid);
            self.tc_tokens.push(HistoryTcToken {
                jid: lid.unwrap_or_else(|| id.clone()).to_non_ad(),
                token: token.to_vec(),
                timestamp,
                sender_timestamp: conversation.tc_token_sender_timestamp.filter(|t| *t > 0),
            });
        }
        if !config.keep_messages {
            conversation.messages = Vec::new();
        }
        self.conversations.push(conversation);
    }
}

/// Decodes inflated `HistorySync` bytes into what a client keeps: conversations (with or
/// without messages, per `config`), push names, PN↔LID mappings, tctokens and the NCT salt.
/// Tokens, mappings and the salt are always extracted, even when messages are dropped.
///
/// # Errors
/// [`HistoryError::Malformed`] or [`HistoryError::Protobuf`] for bytes that do not decode.
pub fn decode(inflated: &[u8], config: &HistoryConfig) -> Result<HistorySyncData, HistoryError> {
    let mut data = HistorySyncData::default();
    for item in HistoryItems::new(inflated) {
        data.add(item?, config);
    }
    Ok(data)
}

impl HistorySyncData {
    /// Folds one item into the results (what [`decode`] does for each field); use it with
    /// the items of a [`HistoryStream`](super::HistoryStream).
    pub fn add(&mut self, item: HistoryItem, config: &HistoryConfig) {
        let data = self;
        match item {
            HistoryItem::SyncType(t) => data.sync_type = HistorySyncType::try_from(t).ok(),
            HistoryItem::Conversation(c) => data.add_conversation(*c, config),
            HistoryItem::StatusMessage(m) => {
                if config.keep_messages {
                    data.status_messages.push(*m);
                }
            }
            HistoryItem::ChunkOrder(n) => data.chunk_order = Some(n),
            HistoryItem::Progress(n) => data.progress = Some(n),
            HistoryItem::Pushname(p) => {
                if let (Some(id), Some(name)) = (p.id, p.pushname)
                    && let Ok(jid) = id.parse::<Jid>()
                    && !name.is_empty()
                {
                    data.push_names.push(PushName { jid, name });
                }
            }
            HistoryItem::GlobalSettings(g) => {
                // Repeated occurrences merge, as in a protobuf decoder.
                if let Some(t) = g.chat_db_lid_migration_timestamp.filter(|t| *t > 0) {
                    data.chat_db_lid_migration_timestamp = Some(t);
                }
            }
            HistoryItem::LidMapping(m) => {
                data.add_mapping(m.pn_jid.as_deref(), m.lid_jid.as_deref())
            }
            // Last occurrence wins, as in a protobuf decoder.
            HistoryItem::NctSalt(salt) => data.nct_salt = (!salt.is_empty()).then_some(salt),
        }
    }
}
