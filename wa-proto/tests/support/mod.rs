//! Helpers shared by the vector tests: load a JSON vector from `shared/vectors/`
//! (panicking loudly when it is missing) and read hex / integer fields from it.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

/// Path of a vector file under `shared/vectors/` (beside the repository root).
pub(crate) fn vector_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative)
}

/// Loads a JSON vector; panics with a clear message when it is missing (never skips).
pub(crate) fn load(relative: &str) -> Value {
    let path = vector_path(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "test vector {} is missing or unreadable ({err}); shared/vectors must sit beside the repo",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("test vector {} is not JSON: {err}", path.display()))
}

/// The JSON value at `pointer`, or an error naming it.
pub(crate) fn at<'a>(v: &'a Value, pointer: &str) -> Result<&'a Value> {
    v.pointer(pointer)
        .with_context(|| format!("vector field {pointer} missing"))
}

/// Hex-decodes the string at `pointer`.
pub(crate) fn hex_at(v: &Value, pointer: &str) -> Result<Vec<u8>> {
    let s = at(v, pointer)?
        .as_str()
        .with_context(|| format!("vector field {pointer} is not a string"))?;
    hex::decode(s).with_context(|| format!("vector field {pointer} is not hex"))
}

/// The string at `pointer`.
pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str) -> Result<&'a str> {
    at(v, pointer)?
        .as_str()
        .with_context(|| format!("vector field {pointer} is not a string"))
}

/// The unsigned integer at `pointer`.
pub(crate) fn u64_at(v: &Value, pointer: &str) -> Result<u64> {
    at(v, pointer)?
        .as_u64()
        .with_context(|| format!("vector field {pointer} is not an unsigned integer"))
}

/// The boolean at `pointer`.
pub(crate) fn bool_at(v: &Value, pointer: &str) -> Result<bool> {
    at(v, pointer)?
        .as_bool()
        .with_context(|| format!("vector field {pointer} is not a boolean"))
}

/// Removes the random padding WhatsApp appends before encryption: `n` bytes of value `n`
/// (shared/protocol/05 §3).
pub(crate) fn unpad(plaintext: &[u8]) -> Result<&[u8]> {
    let n = usize::from(*plaintext.last().context("empty plaintext")?);
    anyhow::ensure!(n >= 1 && n <= plaintext.len(), "bad padding length {n}");
    Ok(&plaintext[..plaintext.len() - n])
}
