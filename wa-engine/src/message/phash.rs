//! The participant-list hash (`phash` on group sends and in acks, `device_hash` in device
//! notifications), shared/protocol/05-messages-receipts.md §7.4.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::Jid;

/// `"2:" + base64_std_nopad(SHA-256(concat(sort(F(d))))[0..6])` with
/// `F(d) = user + ".0:" + device + "@" + server`: device always written (0 for the primary),
/// agent always `0`, sort bytewise (whatsmeow `send.go` participantListHashV2; oxidezap
/// whatsapp-rust, which notes that the server recomputes this exact string). Always 10
/// characters. Baileys' `generateParticipantHashV2` is known to differ
/// (shared/vectors/phash/README.md).
pub fn participant_hash<'a>(devices: impl IntoIterator<Item = &'a Jid>) -> String {
    let mut forms: Vec<String> = devices
        .into_iter()
        .map(|d| format!("{}.0:{}@{}", d.user(), d.device(), d.server()))
        .collect();
    forms.sort_unstable();
    let mut hasher = Sha256::new();
    for form in &forms {
        hasher.update(form.as_bytes());
    }
    let digest = hasher.finalize();
    let mut out = String::from("2:");
    base64::engine::general_purpose::STANDARD_NO_PAD.encode_string(&digest[..6], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_example() {
        let devices: Vec<Jid> = [
            "222@s.whatsapp.net",
            "111:2@s.whatsapp.net",
            "111@s.whatsapp.net",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(participant_hash(&devices), "2:3mfgTp+X");
    }
}
