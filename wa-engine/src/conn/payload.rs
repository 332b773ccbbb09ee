//! The `ClientPayload` sent inside the Noise ClientFinish (shared/protocol/03 §2): a
//! registration payload for an unpaired device, a login payload otherwise.
//!
//! Values follow whatsmeow store/clientpayload.go (03 §2.1-§2.4 tables).

use md5::{Digest as _, Md5};
use prost::Message as _;
use wa_proto::wa::client_payload::{
    ConnectReason, ConnectType, DevicePairingRegistrationData, UserAgent, WebInfo, user_agent,
    web_info,
};
use wa_proto::wa::{ClientPayload, DeviceProps, device_props};

use super::DeviceConfig;
use crate::store::Credentials;

/// The Curve25519 key type byte `0x05` ("DJB") of `eKeytype` (03 §2.3).
const DJB_KEY_TYPE: u8 = 5;

/// MD5 of `"<primary>.<secondary>.<tertiary>"`: `buildHash` of the registration data (03 §2.3).
pub(crate) fn build_hash(version: [u32; 3]) -> [u8; 16] {
    let text = format!("{}.{}.{}", version[0], version[1], version[2]);
    Md5::digest(text.as_bytes()).into()
}

fn base(device: &DeviceConfig) -> ClientPayload {
    ClientPayload {
        user_agent: Some(UserAgent {
            platform: Some(user_agent::Platform::Web as i32),
            app_version: Some(user_agent::AppVersion {
                primary: Some(device.app_version[0]),
                secondary: Some(device.app_version[1]),
                tertiary: Some(device.app_version[2]),
                ..Default::default()
            }),
            mcc: Some("000".into()),
            mnc: Some("000".into()),
            os_version: Some("0.1".into()),
            manufacturer: Some(String::new()),
            device: Some("Desktop".into()),
            os_build_number: Some("0.1".into()),
            release_channel: Some(user_agent::ReleaseChannel::Release as i32),
            locale_language_iso6391: Some("en".into()),
            locale_country_iso31661_alpha2: Some("US".into()),
            ..Default::default()
        }),
        web_info: Some(WebInfo {
            web_sub_platform: Some(web_info::WebSubPlatform::WebBrowser as i32),
            ..Default::default()
        }),
        connect_type: Some(ConnectType::WifiUnknown as i32),
        connect_reason: Some(ConnectReason::UserActivated as i32),
        ..Default::default()
    }
}

/// Serialized `DeviceProps` (03 §2.4): `os` is the name the phone shows in its list of linked
/// devices.
pub(crate) fn device_props(device: &DeviceConfig) -> Vec<u8> {
    DeviceProps {
        os: Some(device.name.clone()),
        version: Some(device_props::AppVersion {
            primary: Some(0),
            secondary: Some(1),
            tertiary: Some(0),
            ..Default::default()
        }),
        platform_type: Some(device.platform_type as i32),
        require_full_sync: Some(false),
        history_sync_config: Some(device_props::HistorySyncConfig {
            storage_quota_mb: Some(10_240),
            inline_initial_payload_in_e2_ee_msg: Some(true),
            support_bot_user_agent_chat_history: Some(true),
            support_cag_reactions_and_polls: Some(true),
            support_biz_hosted_msg: Some(true),
            support_recent_sync_chunk_message_count_tuning: Some(true),
            support_hosted_group_msg: Some(true),
            support_fbid_bot_chat_history: Some(true),
            support_message_association: Some(true),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

/// The registration payload: `devicePairingData` with our keys, `passive = false`,
/// `pull = false`, no username (03 §2.1, §2.3).
pub(crate) fn registration(device: &DeviceConfig, creds: &Credentials) -> Vec<u8> {
    let mut payload = base(device);
    payload.passive = Some(false);
    payload.pull = Some(false);
    payload.push_name = device.push_name.clone();
    let spk_id = creds.signed_prekey.id.to_be_bytes();
    payload.device_pairing_data = Some(DevicePairingRegistrationData {
        e_regid: Some(creds.registration_id.to_be_bytes().to_vec()),
        e_keytype: Some(vec![DJB_KEY_TYPE]),
        e_ident: Some(creds.identity_key.public.to_vec()),
        e_skey_id: Some(spk_id[1..].to_vec()),
        e_skey_val: Some(creds.signed_prekey.key_pair.public.to_vec()),
        e_skey_sig: Some(creds.signed_prekey.signature.to_vec()),
        build_hash: Some(build_hash(device.app_version).to_vec()),
        device_props: Some(device_props(device)),
    });
    payload.encode_to_vec()
}

/// The login payload: `username` = own phone number, `device` = own device id,
/// `passive = true`, `pull = true`, `lc = 1` (whatsmeow `getLoginPayload`).
pub(crate) fn login(device: &DeviceConfig, username: u64, device_id: u32) -> Vec<u8> {
    let mut payload = base(device);
    payload.username = Some(username);
    payload.device = Some(device_id);
    payload.passive = Some(true);
    payload.pull = Some(true);
    payload.lc = Some(1);
    payload.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_hash_matches_whatsmeow_version() {
        // 03 §2.3: MD5("2.3000.1045649367") = 9fa53af9421567b114e33c9bb1ef7db2.
        assert_eq!(
            build_hash([2, 3000, 1_045_649_367]),
            [
                0x9f, 0xa5, 0x3a, 0xf9, 0x42, 0x15, 0x67, 0xb1, 0x14, 0xe3, 0x3c, 0x9b, 0xb1, 0xef,
                0x7d, 0xb2
            ]
        );
    }
}
