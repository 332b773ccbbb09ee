//! `src/generated.rs` was regenerated after the last `.proto` edit.
//!
//! The generator writes a fingerprint of `proto/*.proto` into the header of
//! `src/generated.rs`; this test recomputes it without protox, so a plain `cargo test`
//! catches a `.proto` change whose regeneration was forgotten. (A hand edit of
//! `generated.rs` is caught by the CI step
//! `cargo build -p wa-proto --features generate && git diff --exit-code wa-proto/src/generated.rs`.)

use std::fs;
use std::path::Path;

/// Same function as `fingerprint` in build.rs: FNV-1a 64 over (name, 0, content, 0) per file.
fn proto_fingerprint(files: &[(String, Vec<u8>)]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, content) in files {
        for byte in name
            .as_bytes()
            .iter()
            .chain([0u8].iter())
            .chain(content)
            .chain([0u8].iter())
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

#[test]
fn generated_code_matches_the_proto_files() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(crate_dir.join("proto"))
        .expect("wa-proto/proto is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let content = fs::read(&path).expect("proto file is readable");
            (name, content)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .proto files found");

    let expected = format!("// proto-fnv1a64: {:016x}", proto_fingerprint(&files));
    let generated = fs::read_to_string(crate_dir.join("src/generated.rs"))
        .expect("src/generated.rs is readable");
    assert!(
        generated.lines().take(5).any(|line| line == expected),
        "src/generated.rs is stale: run `cargo build -p wa-proto --features generate` \
         (expected header line `{expected}`)"
    );
}
