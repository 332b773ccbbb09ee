//! ClientPayload, DeviceProps and ADV messages against payloads real Baileys clients sent
//! (`shared/vectors/noise/baileys_handshake.json`, `shared/vectors/pairing/pair_success.json`)
//! and a real WhatsApp pairing (`pair_success.json` `real_capture`).

mod support;

use anyhow::{Context, Result};
use prost::Message as _;
use support::{bool_at, hex_at, load, str_at, u64_at};
use wa_proto::wa::{
    AdvDeviceIdentity, AdvEncryptionType, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
    ClientPayload, DeviceProps, client_payload, device_props,
};

#[test]
fn decodes_baileys_registration_payload_and_reencodes_it_byte_for_byte() -> Result<()> {
    let v = load("pairing/pair_success.json");
    let base = "/real_socket/7.0.0-rc14/client_payload";
    let bytes = hex_at(&v, &format!("{base}/hex"))?;
    let payload = ClientPayload::decode(bytes.as_slice())?;
    let d = format!("{base}/decoded");

    assert_eq!(payload.passive, Some(bool_at(&v, &format!("{d}/passive"))?));
    assert_eq!(payload.pull, Some(bool_at(&v, &format!("{d}/pull"))?));
    assert_eq!(
        payload.username, None,
        "registration payloads carry no username"
    );
    assert_eq!(
        payload.connect_type(),
        client_payload::ConnectType::WifiUnknown
    );
    assert_eq!(
        payload.connect_reason(),
        client_payload::ConnectReason::UserActivated
    );
    assert_eq!(
        payload.web_info.as_ref().map(|w| w.web_sub_platform()),
        Some(client_payload::web_info::WebSubPlatform::WebBrowser)
    );

    let ua = payload.user_agent.as_ref().context("userAgent missing")?;
    assert_eq!(ua.platform(), client_payload::user_agent::Platform::Web);
    assert_eq!(ua.platform, Some(14));
    let version = ua.app_version.as_ref().context("appVersion missing")?;
    assert_eq!(
        (
            u64::from(version.primary()),
            u64::from(version.secondary()),
            u64::from(version.tertiary())
        ),
        (
            u64_at(&v, &format!("{d}/userAgent/appVersion/primary"))?,
            u64_at(&v, &format!("{d}/userAgent/appVersion/secondary"))?,
            u64_at(&v, &format!("{d}/userAgent/appVersion/tertiary"))?
        )
    );
    for (field, value) in [
        ("mcc", ua.mcc()),
        ("mnc", ua.mnc()),
        ("osVersion", ua.os_version()),
        ("device", ua.device()),
        ("osBuildNumber", ua.os_build_number()),
        ("localeLanguageIso6391", ua.locale_language_iso6391()),
        (
            "localeCountryIso31661Alpha2",
            ua.locale_country_iso31661_alpha2(),
        ),
    ] {
        assert_eq!(
            value,
            str_at(&v, &format!("{d}/userAgent/{field}"))?,
            "{field}"
        );
    }
    assert_eq!(
        ua.release_channel(),
        client_payload::user_agent::ReleaseChannel::Release
    );

    let reg = payload
        .device_pairing_data
        .as_ref()
        .context("devicePairingData missing")?;
    let p = format!("{d}/devicePairingData");
    assert_eq!(reg.e_regid(), hex_at(&v, &format!("{p}/eRegid"))?);
    assert_eq!(reg.e_keytype(), [0x05]);
    assert_eq!(reg.e_ident(), hex_at(&v, &format!("{p}/eIdent"))?);
    assert_eq!(reg.e_skey_id(), hex_at(&v, &format!("{p}/eSkeyId"))?);
    assert_eq!(reg.e_skey_val(), hex_at(&v, &format!("{p}/eSkeyVal"))?);
    assert_eq!(reg.e_skey_sig(), hex_at(&v, &format!("{p}/eSkeySig"))?);
    assert_eq!(reg.build_hash(), hex_at(&v, &format!("{p}/buildHash"))?);
    assert_eq!(reg.device_props(), hex_at(&v, &format!("{p}/deviceProps"))?);

    // DeviceProps inside the registration data.
    let props = DeviceProps::decode(reg.device_props())?;
    let q = format!("{p}/deviceProps_decoded");
    assert_eq!(props.os(), str_at(&v, &format!("{q}/os"))?);
    let pv = props
        .version
        .as_ref()
        .context("DeviceProps.version missing")?;
    assert_eq!((pv.primary(), pv.secondary(), pv.tertiary()), (10, 15, 7));
    assert_eq!(props.platform_type(), device_props::PlatformType::Chrome);
    assert_eq!(
        props.require_full_sync,
        Some(bool_at(&v, &format!("{q}/requireFullSync"))?)
    );
    let h = props
        .history_sync_config
        .as_ref()
        .context("historySyncConfig missing")?;
    assert_eq!(
        u64::from(h.storage_quota_mb()),
        u64_at(&v, &format!("{q}/historySyncConfig/storageQuotaMb"))?
    );
    assert_eq!(h.support_call_log_history, Some(false));
    assert_eq!(h.support_message_association, Some(true));
    assert_eq!(props.encode_to_vec(), reg.device_props());

    // Every field Baileys writes is declared, so nothing is lost on a round trip.
    assert_eq!(payload.encode_to_vec(), bytes);
    Ok(())
}

#[test]
fn reencodes_handshake_vector_client_payload_byte_for_byte() -> Result<()> {
    let v = load("noise/baileys_handshake.json");
    let bytes = hex_at(&v, "/reference/parts/client_payload_plain")?;
    let payload = ClientPayload::decode(bytes.as_slice())?;
    let version = payload
        .user_agent
        .as_ref()
        .and_then(|ua| ua.app_version.as_ref())
        .context("appVersion missing")?;
    // client_config.version of the vector: [2, 3000, 1023223821].
    assert_eq!(
        (version.primary(), version.secondary(), version.tertiary()),
        (2, 3000, 1_023_223_821)
    );
    let reg = payload
        .device_pairing_data
        .as_ref()
        .context("devicePairingData missing")?;
    assert_eq!(reg.e_ident(), hex_at(&v, "/keys/identity/public")?);
    assert_eq!(reg.e_skey_val(), hex_at(&v, "/keys/signedPreKey/public")?);
    assert_eq!(
        reg.e_skey_sig(),
        hex_at(&v, "/client_creds/signedPreKeySignature")?
    );
    // registrationId 6699 as 4 bytes big-endian.
    assert_eq!(reg.e_regid(), 6699u32.to_be_bytes());
    let props = DeviceProps::decode(reg.device_props())?;
    assert_eq!(props.os(), "Ubuntu");
    assert_eq!(
        props.require_full_sync,
        Some(false),
        "syncFullHistory = false"
    );
    assert_eq!(payload.encode_to_vec(), bytes);
    Ok(())
}

#[test]
fn login_payload_built_in_rust_round_trips() -> Result<()> {
    use client_payload::user_agent::{AppVersion, Platform, ReleaseChannel};
    use client_payload::{ConnectReason, ConnectType, UserAgent, WebInfo, web_info};

    let mut payload = ClientPayload {
        username: Some(559_984_726_662),
        passive: Some(true),
        user_agent: Some(UserAgent {
            app_version: Some(AppVersion {
                primary: Some(2),
                secondary: Some(3000),
                tertiary: Some(1_045_649_367),
                ..Default::default()
            }),
            mcc: Some("000".into()),
            mnc: Some("000".into()),
            os_version: Some("0.1".into()),
            device: Some("Desktop".into()),
            os_build_number: Some("0.1".into()),
            locale_language_iso6391: Some("en".into()),
            locale_country_iso31661_alpha2: Some("US".into()),
            ..Default::default()
        }),
        web_info: Some(WebInfo::default()),
        device: Some(77),
        pull: Some(true),
        lc: Some(1),
        ..Default::default()
    };
    if let Some(ua) = payload.user_agent.as_mut() {
        ua.set_platform(Platform::Web);
        ua.set_release_channel(ReleaseChannel::Release);
    }
    if let Some(web) = payload.web_info.as_mut() {
        web.set_web_sub_platform(web_info::WebSubPlatform::WebBrowser);
    }
    payload.set_connect_type(ConnectType::WifiUnknown);
    payload.set_connect_reason(ConnectReason::UserActivated);

    let bytes = payload.encode_to_vec();
    let decoded = ClientPayload::decode(bytes.as_slice())?;
    assert_eq!(decoded, payload);
    assert_eq!(decoded.username(), 559_984_726_662);
    assert_eq!(decoded.device(), 77);
    assert!(decoded.device_pairing_data.is_none());
    // Field 1 (username, varint) comes first on the wire.
    assert_eq!(bytes.first(), Some(&0x08));
    Ok(())
}

#[test]
fn decodes_lab_pair_success_device_identity_layers() -> Result<()> {
    let v = load("pairing/pair_success.json");
    let outer_bytes = hex_at(&v, "/adv/device_identity_hmac")?;
    let outer = AdvSignedDeviceIdentityHmac::decode(outer_bytes.as_slice())?;
    assert_eq!(outer.hmac(), hex_at(&v, "/adv/hmac")?);
    assert_eq!(outer.details(), hex_at(&v, "/adv/signed_device_identity")?);
    // accountType 0 is written explicitly by the generator and must survive a round trip.
    assert_eq!(outer.account_type, Some(AdvEncryptionType::E2ee as i32));
    assert_eq!(outer.encode_to_vec(), outer_bytes);

    let signed = AdvSignedDeviceIdentity::decode(outer.details())?;
    assert_eq!(
        signed.details(),
        hex_at(&v, "/adv/device_identity_details")?
    );
    assert_eq!(
        signed.account_signature_key(),
        hex_at(&v, "/phone/identity_key/public")?
    );
    assert_eq!(
        signed.account_signature(),
        hex_at(&v, "/adv/account_signature")?
    );
    assert!(signed.device_signature.is_none());

    let identity = AdvDeviceIdentity::decode(signed.details())?;
    assert_eq!(u64::from(identity.raw_id()), u64_at(&v, "/phone/raw_id")?);
    assert_eq!(identity.timestamp(), u64_at(&v, "/phone/timestamp")?);
    assert_eq!(
        u64::from(identity.key_index()),
        u64_at(&v, "/phone/key_index")?
    );
    assert_eq!(identity.account_type(), AdvEncryptionType::E2ee);
    assert_eq!(identity.device_type(), AdvEncryptionType::E2ee);
    Ok(())
}

#[test]
fn decodes_real_pair_success_device_identity_and_reply() -> Result<()> {
    let v = load("pairing/pair_success.json");
    let outer = AdvSignedDeviceIdentityHmac::decode(
        hex_at(&v, "/real_capture/device_identity_hmac")?.as_slice(),
    )?;
    assert_eq!(outer.hmac(), hex_at(&v, "/real_capture/hmac")?);
    let signed_bytes = hex_at(&v, "/real_capture/signed_device_identity")?;
    assert_eq!(outer.details(), signed_bytes);
    // Real sizes from shared/protocol/03 §4.6: details 120 bytes, HMAC 32 bytes.
    assert_eq!((outer.details().len(), outer.hmac().len()), (120, 32));

    let signed = AdvSignedDeviceIdentity::decode(signed_bytes.as_slice())?;
    assert_eq!(
        signed.account_signature_key(),
        hex_at(&v, "/real_capture/account_signature_key")?
    );
    assert_eq!(
        signed.account_signature(),
        hex_at(&v, "/real_capture/account_signature")?
    );
    assert_eq!(signed.encode_to_vec(), signed_bytes);

    let identity = AdvDeviceIdentity::decode(signed.details())?;
    let d = "/real_capture/device_identity";
    assert_eq!(
        u64::from(identity.raw_id()),
        u64_at(&v, &format!("{d}/raw_id"))?
    );
    assert_eq!(identity.timestamp(), u64_at(&v, &format!("{d}/timestamp"))?);
    assert_eq!(
        u64::from(identity.key_index()),
        u64_at(&v, &format!("{d}/key_index"))?
    );
    assert_eq!(
        identity.key_index(),
        19,
        "key index differs from the device id (77)"
    );

    // The companion's reply: details, accountSignature and deviceSignature, no accountSignatureKey.
    let reply_bytes = hex_at(&v, "/real_capture/reply_device_identity")?;
    let reply = AdvSignedDeviceIdentity::decode(reply_bytes.as_slice())?;
    assert_eq!(reply.details(), signed.details());
    assert!(reply.account_signature_key.is_none());
    assert_eq!(
        reply.device_signature(),
        hex_at(&v, "/real_capture/device_signature")?
    );
    assert_eq!(reply.encode_to_vec(), reply_bytes);
    Ok(())
}
