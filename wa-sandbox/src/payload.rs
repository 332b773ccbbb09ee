//! Reading the ClientPayload a client sends in its Noise ClientFinish
//! (shared/protocol/03 §2): registration (`devicePairingData`) or login (`username` +
//! `device`).

use prost::Message as _;
use wa_proto::wa::{ClientPayload, DeviceProps};

use crate::accounts::{Registration, SignedPreKey};

/// What the client asked for at the end of the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hello {
    /// A new companion wants to pair (03 §2.3).
    Registration(Registration),
    /// A paired companion logs in (03 §2.1).
    Login {
        /// Phone number as an integer (`username`).
        username: u64,
        /// Device id.
        device: u16,
        /// `passive`: hold offline delivery until `<active/>` (03 §7.2).
        passive: bool,
    },
}

/// Why a ClientPayload was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PayloadError {
    /// Not a ClientPayload protobuf.
    #[error("ClientPayload does not decode")]
    Decode,
    /// Neither `devicePairingData` nor `username` + `device`.
    #[error("ClientPayload is neither a registration nor a login")]
    Neither,
    /// A registration field is missing or has the wrong length.
    #[error("registration data field {0} missing or malformed")]
    BadRegistrationField(&'static str),
    /// `device` does not fit a device id.
    #[error("device id out of range")]
    BadDevice,
}

/// Parses a ClientPayload and classifies it. `noise_pub` is the client's Noise static key
/// (from ClientFinish), recorded with a registration.
pub(crate) fn parse_hello(bytes: &[u8], noise_pub: [u8; 32]) -> Result<Hello, PayloadError> {
    let payload = ClientPayload::decode(bytes).map_err(|_| PayloadError::Decode)?;
    if let Some(reg) = payload.device_pairing_data {
        let fixed = |v: &Option<Vec<u8>>,
                     name: &'static str,
                     len: usize|
         -> Result<Vec<u8>, PayloadError> {
            match v {
                Some(b) if b.len() == len => Ok(b.clone()),
                _ => Err(PayloadError::BadRegistrationField(name)),
            }
        };
        let regid = fixed(&reg.e_regid, "eRegid", 4)?;
        let ident = fixed(&reg.e_ident, "eIdent", 32)?;
        let skey_id = fixed(&reg.e_skey_id, "eSkeyID", 3)?;
        let skey_val = fixed(&reg.e_skey_val, "eSkeyVal", 32)?;
        let skey_sig = fixed(&reg.e_skey_sig, "eSkeySig", 64)?;
        let os = reg
            .device_props
            .as_deref()
            .and_then(|b| DeviceProps::decode(b).ok())
            .and_then(|p| p.os)
            .unwrap_or_default();
        let to32 = |v: &[u8]| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(v);
            a
        };
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&skey_sig);
        return Ok(Hello::Registration(Registration {
            noise_pub,
            identity_pub: to32(&ident),
            registration_id: u32::from_be_bytes([regid[0], regid[1], regid[2], regid[3]]),
            signed_prekey: SignedPreKey {
                id: u32::from_be_bytes([0, skey_id[0], skey_id[1], skey_id[2]]),
                public: to32(&skey_val),
                signature: sig,
            },
            os,
        }));
    }
    match (payload.username, payload.device) {
        (Some(username), Some(device)) => Ok(Hello::Login {
            username,
            device: u16::try_from(device).map_err(|_| PayloadError::BadDevice)?,
            passive: payload.passive.unwrap_or(false),
        }),
        _ => Err(PayloadError::Neither),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_proto::wa::client_payload::DevicePairingRegistrationData;

    #[test]
    fn classifies_login_payload() {
        let p = ClientPayload {
            username: Some(15551234567),
            device: Some(3),
            passive: Some(true),
            ..Default::default()
        };
        assert_eq!(
            parse_hello(&p.encode_to_vec(), [0; 32]),
            Ok(Hello::Login {
                username: 15551234567,
                device: 3,
                passive: true
            })
        );
    }

    #[test]
    fn reads_registration_fields() {
        let props = DeviceProps {
            os: Some("Mac OS".into()),
            ..Default::default()
        };
        let p = ClientPayload {
            passive: Some(false),
            device_pairing_data: Some(DevicePairingRegistrationData {
                e_regid: Some(vec![0, 0, 0x30, 0x39]),
                e_keytype: Some(vec![5]),
                e_ident: Some(vec![7; 32]),
                e_skey_id: Some(vec![0, 0, 1]),
                e_skey_val: Some(vec![8; 32]),
                e_skey_sig: Some(vec![9; 64]),
                build_hash: Some(vec![0; 16]),
                device_props: Some(props.encode_to_vec()),
            }),
            ..Default::default()
        };
        let Ok(Hello::Registration(r)) = parse_hello(&p.encode_to_vec(), [1; 32]) else {
            panic!("not a registration");
        };
        assert_eq!(r.noise_pub, [1; 32]);
        assert_eq!(r.identity_pub, [7; 32]);
        assert_eq!(r.registration_id, 12345);
        assert_eq!(r.signed_prekey.id, 1);
        assert_eq!(r.signed_prekey.public, [8; 32]);
        assert_eq!(r.os, "Mac OS");
    }

    #[test]
    fn rejects_short_identity_and_empty_payload() {
        let p = ClientPayload {
            device_pairing_data: Some(DevicePairingRegistrationData {
                e_regid: Some(vec![0; 4]),
                e_ident: Some(vec![7; 31]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            parse_hello(&p.encode_to_vec(), [0; 32]),
            Err(PayloadError::BadRegistrationField("eIdent"))
        );
        assert_eq!(
            parse_hello(&ClientPayload::default().encode_to_vec(), [0; 32]),
            Err(PayloadError::Neither)
        );
        assert_eq!(
            parse_hello(&[0xff, 0xff], [0; 32]),
            Err(PayloadError::Decode)
        );
    }
}
