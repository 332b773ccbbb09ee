//! Fault injection: dropped sockets, stream errors, slow frames, refused connections.
//!
//! Faults are plain data ([`Fault`], serde-tagged by `kind`) so the HTTP control API
//! (`POST /faults`) and Rust tests ([`Faults`](crate::Faults)) inject the same things. This
//! module is plain data; [`Router::inject`](crate::Router::inject) applies a fault.

use serde::{Deserialize, Serialize};

/// Which live connections a fault reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Only connections logged in to this account (phone number); `None` = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Only connections of this device id; `None` = any device of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<u16>,
}

impl Target {
    /// Every live connection, including registration connections (not yet a device).
    pub fn all() -> Self {
        Self::default()
    }

    /// The logged-in connection(s) of one device.
    pub fn device(phone: impl Into<String>, device: u16) -> Self {
        Self {
            phone: Some(phone.into()),
            device: Some(device),
        }
    }

    /// Whether a connection bound to `device` (or to no device yet) is targeted.
    pub(crate) fn matches(&self, device: Option<&(String, u16)>) -> bool {
        match (&self.phone, self.device, device) {
            (None, None, _) => true,
            (Some(p), d, Some((dp, dd))) => p == dp && d.is_none_or(|d| d == *dd),
            (None, Some(d), Some((_, dd))) => d == *dd,
            (_, _, None) => false,
        }
    }
}

/// A stream error the server sends before closing (shared/protocol/03 §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StreamErrorKind {
    /// `<stream:error code="N"/>`, e.g. 515 (restart required), 503 (service unavailable),
    /// 500, 429.
    Code(u16),
    /// `<stream:error code="401"><conflict type="device_removed"/></stream:error>`: the
    /// companion was unlinked.
    DeviceRemoved,
    /// `<stream:error><conflict type="replaced"/></stream:error>`: another connection of the
    /// same device took over.
    Replaced,
    /// `<xmlstreamend/>`: graceful server close (shared/protocol/03 §8.4).
    StreamEnd,
}

/// One fault to inject.
///
/// JSON form (control API): `{"kind": "drop", "phone": "15551234567", "device": 1}`,
/// `{"kind": "stream_error", "phone": …, "device": …, "error": {"code": 515}}` or
/// `"error": "device_removed" | "replaced" | "stream_end"`,
/// `{"kind": "delay_frames", "ms": 250}`, `{"kind": "refuse_connections", "count": 2}`.
/// Omitting `phone` and `device` targets every live connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fault {
    /// Close the targeted sockets without a stream error (a network drop).
    Drop {
        /// Which connections.
        #[serde(flatten)]
        target: Target,
    },
    /// Send a stream error to the targeted connections, then close them.
    StreamError {
        /// Which connections.
        #[serde(flatten)]
        target: Target,
        /// What to send.
        error: StreamErrorKind,
    },
    /// Delay every server frame by this many milliseconds (0 turns it off). Applies to all
    /// connections, current and future.
    DelayFrames {
        /// Delay per frame, milliseconds.
        ms: u64,
    },
    /// Refuse the next `count` WebSocket connections (HTTP 503 on the upgrade request).
    RefuseConnections {
        /// How many connection attempts to refuse.
        count: u32,
    },
}

/// The global faults in force (those that reach no particular connection).
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    /// How many more incoming connections to refuse.
    pub(crate) refuse_next: u32,
    /// Delay before each server frame.
    pub(crate) frame_delay: std::time::Duration,
}

impl FaultState {
    /// Whether the next incoming connection must be refused (consumes one refusal).
    pub(crate) fn take_refusal(&mut self) -> bool {
        if self.refuse_next > 0 {
            self.refuse_next -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_json_forms_parse() {
        let f: Fault = serde_json::from_str(
            r#"{"kind":"stream_error","phone":"15551234567","device":1,"error":{"code":515}}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::StreamError {
                target: Target::device("15551234567", 1),
                error: StreamErrorKind::Code(515)
            }
        );
        let f: Fault =
            serde_json::from_str(r#"{"kind":"stream_error","error":"device_removed"}"#).unwrap();
        assert_eq!(
            f,
            Fault::StreamError {
                target: Target::all(),
                error: StreamErrorKind::DeviceRemoved
            }
        );
        let f: Fault = serde_json::from_str(r#"{"kind":"refuse_connections","count":2}"#).unwrap();
        assert_eq!(f, Fault::RefuseConnections { count: 2 });
        let f: Fault = serde_json::from_str(r#"{"kind":"drop","phone":"15551234567"}"#).unwrap();
        assert_eq!(
            f,
            Fault::Drop {
                target: Target {
                    phone: Some("15551234567".into()),
                    device: None
                }
            }
        );
    }

    #[test]
    fn target_matching() {
        let dev = ("15551234567".to_owned(), 3u16);
        assert!(Target::all().matches(None));
        assert!(Target::all().matches(Some(&dev)));
        assert!(Target::device("15551234567", 3).matches(Some(&dev)));
        assert!(!Target::device("15551234567", 4).matches(Some(&dev)));
        assert!(!Target::device("15551234567", 3).matches(None));
    }
}
