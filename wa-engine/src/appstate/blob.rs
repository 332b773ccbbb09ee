//! External blobs (`md-app-state`): snapshots and large patches' mutations stored on the
//! media server (shared/protocol/08 §4; whatsmeow `appstate.go` downloadExternalAppStateBlob).
//! The download is the caller's; these functions decrypt and decode the bytes.

use prost::Message as _;
use wa_proto::wa::{ExternalBlobReference, SyncdMutation, SyncdMutations, SyncdSnapshot};

use super::AppStateError;
use crate::media::{self, Expected, MediaKey, MediaType};

fn hash32(bytes: Option<&[u8]>) -> Option<[u8; 32]> {
    bytes.and_then(|b| <[u8; 32]>::try_from(b).ok())
}

/// Decrypts and verifies the downloaded enc file of `reference` (media scheme with HKDF info
/// "WhatsApp App State Keys"; checks the MAC, `fileEncSha256`, `fileSha256` and
/// `fileSizeBytes` when present) and returns the plaintext protobuf bytes.
///
/// # Errors
/// [`AppStateError::MissingField`] without a media key; [`AppStateError::Blob`] if the key
/// length is wrong or any check fails.
pub fn decrypt_blob(
    reference: &ExternalBlobReference,
    enc_file: &[u8],
) -> Result<Vec<u8>, AppStateError> {
    let key = reference
        .media_key
        .as_deref()
        .ok_or(AppStateError::MissingField(
            "ExternalBlobReference.mediaKey",
        ))?;
    let key = MediaKey::from_slice(key).map_err(AppStateError::Blob)?;
    let expected = Expected {
        file_sha256: hash32(reference.file_sha256.as_deref()),
        file_enc_sha256: hash32(reference.file_enc_sha256.as_deref()),
        file_length: reference.file_size_bytes,
    };
    media::decrypt(&key, MediaType::AppState, enc_file, expected).map_err(AppStateError::Blob)
}

/// Decrypts a `<snapshot>` blob into the `SyncdSnapshot` to pass to
/// [`CollectionState::apply_snapshot`](super::CollectionState::apply_snapshot).
///
/// # Errors
/// Those of [`decrypt_blob`]; [`AppStateError::Protobuf`] if the plaintext does not decode.
pub fn decode_snapshot_blob(
    reference: &ExternalBlobReference,
    enc_file: &[u8],
) -> Result<SyncdSnapshot, AppStateError> {
    let plain = decrypt_blob(reference, enc_file)?;
    SyncdSnapshot::decode(plain.as_slice()).map_err(|source| AppStateError::Protobuf {
        what: "SyncdSnapshot",
        source,
    })
}

/// Decrypts a patch's `externalMutations` blob into the mutations to pass to
/// [`CollectionState::apply_patch`](super::CollectionState::apply_patch).
///
/// # Errors
/// Those of [`decrypt_blob`]; [`AppStateError::Protobuf`] if the plaintext does not decode.
pub fn decode_external_mutations(
    reference: &ExternalBlobReference,
    enc_file: &[u8],
) -> Result<Vec<SyncdMutation>, AppStateError> {
    let plain = decrypt_blob(reference, enc_file)?;
    SyncdMutations::decode(plain.as_slice())
        .map(|m| m.mutations)
        .map_err(|source| AppStateError::Protobuf {
            what: "SyncdMutations",
            source,
        })
}
