//! JIDs: WhatsApp addresses (`user.agent:device@server`).
//!
//! Model and string forms follow shared/protocol/02 §6 (sources: whatsmeow
//! types/jid.go, Baileys src/WABinary/jid-utils.ts, whatsapp-rust
//! wacore/binary/src/jid.rs). Choices where they disagree are documented on
//! [`Jid`] and on its `FromStr` / `Display` implementations.

use std::fmt;
use std::str::FromStr;

/// The server (domain) part of a JID.
///
/// Known servers are variants so that comparing and encoding them needs no
/// string work; anything else is kept verbatim in [`Server::Other`]. Build a
/// `Server` from text with [`Server::from_name`] (or `From<&str>`), which maps
/// known names to their variants: an `Other("g.us")` built by hand would not
/// compare equal to [`Server::Group`].
///
/// Source: shared/protocol/02 §6.1 (whatsmeow types/jid.go server constants,
/// Baileys `JidServer`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    /// `s.whatsapp.net`: phone-number (PN) users; with an empty user, the server itself.
    Pn,
    /// `lid`: LID users ("hidden" ids that are not phone numbers).
    Lid,
    /// `g.us`: groups.
    Group,
    /// `broadcast`: broadcast lists; `status@broadcast` is the status feed.
    Broadcast,
    /// `newsletter`: channels.
    Newsletter,
    /// `hosted`: hosted (Cloud-API) PN devices.
    Hosted,
    /// `hosted.lid`: hosted LID devices.
    HostedLid,
    /// `c.us`: the legacy user server (e.g. Baileys `OFFICIAL_BIZ_JID`, `server@c.us`).
    LegacyUser,
    /// `msgr`: Messenger users (FB_JID encoding).
    Messenger,
    /// `interop`: interop users (INTEROP_JID encoding).
    Interop,
    /// `bot`: Meta AI bots.
    Bot,
    /// `call`: call ids (Baileys only).
    Call,
    /// Any other server name, kept verbatim. Never one of the names above when
    /// built through [`Server::from_name`].
    Other(String),
}

impl Server {
    /// Maps a server name to its variant; unknown names become [`Server::Other`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "s.whatsapp.net" => Self::Pn,
            "lid" => Self::Lid,
            "g.us" => Self::Group,
            "broadcast" => Self::Broadcast,
            "newsletter" => Self::Newsletter,
            "hosted" => Self::Hosted,
            "hosted.lid" => Self::HostedLid,
            "c.us" => Self::LegacyUser,
            "msgr" => Self::Messenger,
            "interop" => Self::Interop,
            "bot" => Self::Bot,
            "call" => Self::Call,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Like [`Server::from_name`], but returns `None` instead of `Other`.
    pub fn known(name: &str) -> Option<Self> {
        match Self::from_name(name) {
            Self::Other(_) => None,
            known => Some(known),
        }
    }

    /// The server's name as written after the `@`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pn => "s.whatsapp.net",
            Self::Lid => "lid",
            Self::Group => "g.us",
            Self::Broadcast => "broadcast",
            Self::Newsletter => "newsletter",
            Self::Hosted => "hosted",
            Self::HostedLid => "hosted.lid",
            Self::LegacyUser => "c.us",
            Self::Messenger => "msgr",
            Self::Interop => "interop",
            Self::Bot => "bot",
            Self::Call => "call",
            Self::Other(name) => name,
        }
    }

    /// The AD_JID domain byte of this server, if device JIDs on it can be
    /// encoded as AD_JID: `s.whatsapp.net` 0, `lid` 1, `hosted` 128,
    /// `hosted.lid` 129 (whatsmeow types/jid.go `WhatsAppDomain`..`HostedLIDDomain`;
    /// shared/protocol/02 §6.3).
    pub fn ad_domain(&self) -> Option<u8> {
        match self {
            Self::Pn => Some(0),
            Self::Lid => Some(1),
            Self::Hosted => Some(128),
            Self::HostedLid => Some(129),
            _ => None,
        }
    }
}

impl Default for Server {
    /// The default server is `Other("")`, the server of the placeholder
    /// [`Jid::default`]. It is not a valid server.
    fn default() -> Self {
        Self::Other(String::new())
    }
}

impl From<&str> for Server {
    fn from(name: &str) -> Self {
        Self::from_name(name)
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a JID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JidError {
    /// The string has no `@` and is not the bare name of a known server.
    #[error("not a JID: no '@' and {0:?} is not a known server")]
    NoServer(String),
    /// Nothing follows the `@`.
    #[error("JID has an empty server part")]
    EmptyServer,
    /// More than one `@`.
    #[error("JID has more than one '@'")]
    ExtraAt,
    /// The part after `:` is not a decimal number in `0..=65535`.
    #[error("JID device {0:?} is not a number in 0..=65535")]
    InvalidDevice(String),
    /// The part after `.`/`_` is all digits but above 255.
    #[error("JID agent {0:?} is not a number in 0..=255")]
    InvalidAgent(String),
}

/// A WhatsApp JID: `(user, agent, device, integrator, server)`.
///
/// Fields (shared/protocol/02 §6.1):
/// - `user`: phone number, LID, group id (`<id>` or legacy `creator-timestamp`),
///   `status`, call id, …; empty for a server JID such as `@s.whatsapp.net`.
/// - `agent`: the raw AD_JID domain/agent byte when it is not one of the known
///   domains (whatsmeow `RawAgent`; 0 almost always). Only representable on the
///   wire for `s.whatsapp.net` JIDs.
/// - `device`: the device id, *and whether it was written*. `Some(0)` is the
///   primary device written out as `user:0@…`, `None` is a JID without a device
///   part. The distinction exists because Baileys (which produced our vectors)
///   encodes AD_JID whenever a `:device` part is present, even `:0`, and
///   JID_PAIR otherwise (Baileys src/WABinary/encode.ts `writeJid`), while a
///   decoded AD_JID always carries a device. [`Jid::device`] reads it as a
///   number (0 when absent).
/// - `integrator`: interop integrator id (`integrator-user:device@interop`).
/// - `server`: see [`Server`].
///
/// Equality is structural, so `123@s.whatsapp.net != 123:0@s.whatsapp.net`;
/// compare [`Jid::to_non_ad`] results, or use [`Jid::same_user`], to ignore
/// devices.
///
/// String forms (`FromStr` / `Display`), chosen so that every JID string in
/// shared/vectors/binary round-trips:
/// - `user@server`, `user:device@server`, `@server` (empty user, Baileys'
///   spelling; whatsmeow prints the bare server, which parses too when the
///   name is a known server);
/// - `user.agent:device@server` (whatsmeow `ParseJID`/`String`); Baileys'
///   `user_agent` spelling also parses. Only a suffix made of digits is taken
///   as the agent, so other dotted users stay whole;
/// - `integrator-user:device@interop` (Baileys/WhatsApp Web; whatsmeow drops the
///   integrator when printing). Only on `interop`, since group ids contain `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Jid {
    user: String,
    server: Server,
    agent: u8,
    device: Option<u16>,
    integrator: u16,
}

impl Jid {
    /// A JID `user@server` without device.
    pub fn new(user: impl Into<String>, server: Server) -> Self {
        Self {
            user: user.into(),
            server,
            agent: 0,
            device: None,
            integrator: 0,
        }
    }

    /// A phone-number user: `user@s.whatsapp.net`.
    pub fn pn(user: impl Into<String>) -> Self {
        Self::new(user, Server::Pn)
    }

    /// A LID user: `user@lid`.
    pub fn lid(user: impl Into<String>) -> Self {
        Self::new(user, Server::Lid)
    }

    /// A group: `id@g.us`.
    pub fn group(id: impl Into<String>) -> Self {
        Self::new(id, Server::Group)
    }

    /// A server JID with an empty user, e.g. `@s.whatsapp.net` for the
    /// WhatsApp server (the `to` of IQs).
    pub fn server_jid(server: Server) -> Self {
        Self::new(String::new(), server)
    }

    /// `status@broadcast`, the status feed (Baileys `STORIES_JID`).
    pub fn status_broadcast() -> Self {
        Self::new("status", Server::Broadcast)
    }

    /// Returns this JID with device part `device` (written even when 0, see
    /// the type docs). Devices above 255 cannot be encoded as AD_JID; only
    /// `msgr` and `interop` JIDs carry 16-bit devices on the wire.
    #[must_use]
    pub fn with_device(mut self, device: u16) -> Self {
        self.device = Some(device);
        self
    }

    /// Returns this JID with raw agent byte `agent` (whatsmeow `RawAgent`).
    #[must_use]
    pub fn with_agent(mut self, agent: u8) -> Self {
        self.agent = agent;
        self
    }

    /// Returns this JID with interop integrator `integrator`. Only meaningful
    /// on `interop` JIDs (it is neither printed nor encoded elsewhere).
    #[must_use]
    pub fn with_integrator(mut self, integrator: u16) -> Self {
        self.integrator = integrator;
        self
    }

    /// The user part (may be empty).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The server part.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The raw agent byte (0 unless set).
    pub fn agent(&self) -> u8 {
        self.agent
    }

    /// The device id, 0 when no device part was written (0 is the primary phone).
    pub fn device(&self) -> u16 {
        self.device.unwrap_or(0)
    }

    /// The device part as written: `None` for `user@server`, `Some(0)` for `user:0@server`.
    pub fn device_part(&self) -> Option<u16> {
        self.device
    }

    /// The interop integrator id (0 unless set).
    pub fn integrator(&self) -> u16 {
        self.integrator
    }

    /// Whether this is an AD (device) JID, i.e. has a device part.
    pub fn is_ad(&self) -> bool {
        self.device.is_some()
    }

    /// The same JID without agent and device (whatsmeow `ToNonAD`); the
    /// integrator is kept, as whatsmeow does.
    pub fn to_non_ad(&self) -> Self {
        Self {
            user: self.user.clone(),
            server: self.server.clone(),
            agent: 0,
            device: None,
            integrator: self.integrator,
        }
    }

    /// Whether both JIDs name the same user on the same server, ignoring
    /// agent and device.
    pub fn same_user(&self, other: &Self) -> bool {
        self.user == other.user && self.server == other.server
    }

    /// Whether the user part is empty (a server JID such as `@s.whatsapp.net`).
    pub fn is_server_jid(&self) -> bool {
        self.user.is_empty()
    }

    /// Whether this is the placeholder [`Jid::default`] (no server).
    pub fn is_empty(&self) -> bool {
        self.server == Server::default()
    }

    /// Whether this is a group (`@g.us`).
    pub fn is_group(&self) -> bool {
        self.server == Server::Group
    }

    /// Whether this is a broadcast list or the status feed (`@broadcast`).
    pub fn is_broadcast(&self) -> bool {
        self.server == Server::Broadcast
    }

    /// Whether this is `status@broadcast`.
    pub fn is_status_broadcast(&self) -> bool {
        self.server == Server::Broadcast && self.user == "status"
    }

    /// Whether this is a channel (`@newsletter`).
    pub fn is_newsletter(&self) -> bool {
        self.server == Server::Newsletter
    }

    /// Whether this is a phone-number user or device (`@s.whatsapp.net`, non-empty user).
    pub fn is_pn(&self) -> bool {
        self.server == Server::Pn && !self.user.is_empty()
    }

    /// Whether this is a LID user or device (`@lid`).
    pub fn is_lid(&self) -> bool {
        self.server == Server::Lid
    }

    /// Whether this is a Meta AI bot (`@bot`).
    pub fn is_bot(&self) -> bool {
        self.server == Server::Bot
    }

    /// Whether this is a person's account or device: `s.whatsapp.net`, `lid`,
    /// `hosted` or `hosted.lid` with a non-empty user.
    pub fn is_user(&self) -> bool {
        self.server.ad_domain().is_some() && !self.user.is_empty()
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.integrator != 0 && self.server == Server::Interop {
            write!(f, "{}-", self.integrator)?;
        }
        f.write_str(&self.user)?;
        if self.agent != 0 {
            write!(f, ".{}", self.agent)?;
        }
        if let Some(device) = self.device {
            write!(f, ":{device}")?;
        }
        write!(f, "@{}", self.server)
    }
}

/// Parses a decimal number made only of ASCII digits (no sign, no spaces).
fn parse_decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for Jid {
    type Err = JidError;

    /// Parses the string forms listed on [`Jid`].
    ///
    /// Errors: no `@` (unless the whole string is a known server name, which
    /// gives a server JID, as whatsmeow `ParseJID` does), empty server, a
    /// second `@`, a device that is not a number in `0..=65535`, an all-digit
    /// agent above 255.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((user_part, server)) = s.split_once('@') else {
            return match Server::known(s) {
                Some(server) => Ok(Self::server_jid(server)),
                None => Err(JidError::NoServer(s.to_owned())),
            };
        };
        if server.is_empty() {
            return Err(JidError::EmptyServer);
        }
        if server.contains('@') {
            return Err(JidError::ExtraAt);
        }
        let server = Server::from_name(server);

        let (user_agent, device) = match user_part.rsplit_once(':') {
            Some((user, device)) => {
                let device = parse_decimal::<u16>(device)
                    .ok_or_else(|| JidError::InvalidDevice(device.to_owned()))?;
                (user, Some(device))
            }
            None => (user_part, None),
        };
        let (user, agent) = match user_agent.rsplit_once(['.', '_']) {
            Some((user, agent))
                if !agent.is_empty() && agent.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let agent = parse_decimal::<u8>(agent)
                    .ok_or_else(|| JidError::InvalidAgent(agent.to_owned()))?;
                (user, agent)
            }
            _ => (user_agent, 0),
        };
        let (user, integrator) = if server == Server::Interop {
            match user.split_once('-') {
                Some((integrator, rest)) => match parse_decimal::<u16>(integrator) {
                    Some(integrator) => (rest, integrator),
                    None => (user, 0),
                },
                None => (user, 0),
            }
        } else {
            (user, 0)
        };
        Ok(Self {
            user: user.to_owned(),
            server,
            agent,
            device,
            integrator,
        })
    }
}

impl TryFrom<&str> for Jid {
    type Error = JidError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Jid {
        match s.parse() {
            Ok(j) => j,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(parse("123@s.whatsapp.net"), Jid::pn("123"));
        assert_eq!(parse("123:4@s.whatsapp.net"), Jid::pn("123").with_device(4));
        assert_eq!(parse("123:0@s.whatsapp.net"), Jid::pn("123").with_device(0));
        assert_eq!(parse("@s.whatsapp.net"), Jid::server_jid(Server::Pn));
        assert_eq!(parse("s.whatsapp.net"), Jid::server_jid(Server::Pn));
        assert_eq!(
            parse("123.0:4@s.whatsapp.net"),
            Jid::pn("123").with_device(4)
        );
        assert_eq!(
            parse("123.7:4@s.whatsapp.net"),
            Jid::pn("123").with_agent(7).with_device(4)
        );
        assert_eq!(
            parse("123_7:4@s.whatsapp.net"),
            Jid::pn("123").with_agent(7).with_device(4)
        );
        assert_eq!(
            parse("9-5551234:2@interop"),
            Jid::new("5551234", Server::Interop)
                .with_device(2)
                .with_integrator(9)
        );
        assert_eq!(
            parse("731187700355-1590589172@g.us"),
            Jid::group("731187700355-1590589172")
        );
        assert_eq!(parse("status@broadcast"), Jid::status_broadcast());
        assert_eq!(
            parse("x@example.org"),
            Jid::new("x", Server::Other("example.org".into()))
        );
    }

    #[test]
    fn displays_in_the_parsed_form() {
        for s in [
            "123@s.whatsapp.net",
            "123:4@s.whatsapp.net",
            "123:0@s.whatsapp.net",
            "@s.whatsapp.net",
            "@g.us",
            "123.7:4@s.whatsapp.net",
            "9-5551234:2@interop",
            "1000123:7@msgr",
            "123456:3@hosted.lid",
            "E4AC8E3F502B73A9@call",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_malformed_strings() {
        assert_eq!(
            "hello".parse::<Jid>(),
            Err(JidError::NoServer("hello".into()))
        );
        assert_eq!("a@".parse::<Jid>(), Err(JidError::EmptyServer));
        assert_eq!("a@b@c".parse::<Jid>(), Err(JidError::ExtraAt));
        assert!(matches!(
            "a:x@lid".parse::<Jid>(),
            Err(JidError::InvalidDevice(_))
        ));
        assert!(matches!(
            "a:70000@lid".parse::<Jid>(),
            Err(JidError::InvalidDevice(_))
        ));
        assert!(matches!(
            "a:+1@lid".parse::<Jid>(),
            Err(JidError::InvalidDevice(_))
        ));
        assert!(matches!(
            "a.300:1@s.whatsapp.net".parse::<Jid>(),
            Err(JidError::InvalidAgent(_))
        ));
    }

    #[test]
    fn helpers_classify_and_strip_devices() {
        let d = parse("123:4@lid");
        assert!(d.is_lid() && d.is_ad() && d.is_user());
        assert_eq!(d.device(), 4);
        assert_eq!(d.to_non_ad(), Jid::lid("123"));
        assert!(d.same_user(&Jid::lid("123")));
        assert!(parse("1-2@g.us").is_group());
        assert!(parse("status@broadcast").is_status_broadcast());
        assert!(parse("@s.whatsapp.net").is_server_jid());
        assert!(Jid::default().is_empty());
    }
}
