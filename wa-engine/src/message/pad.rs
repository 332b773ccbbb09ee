//! WhatsApp's random plaintext padding, applied inside the Signal / sender-key encryption
//! (shared/protocol/05-messages-receipts.md §3).

use rand_core::CryptoRng;

use super::error::MessageError;

/// Appends `n` bytes of value `n` to `plaintext`, `n` in 1..=15 drawn from one random byte:
/// `r & 0x0F`, 0 becoming 15 (whatsmeow `message.go` padMessage, whatsapp-rust
/// `wacore/src/messages.rs`; Baileys draws 1..=16, which every receiver accepts too).
pub fn pad<R: CryptoRng + ?Sized>(mut plaintext: Vec<u8>, rng: &mut R) -> Vec<u8> {
    let mut byte = [0_u8; 1];
    rng.fill_bytes(&mut byte);
    let mut n = byte[0] & 0x0F;
    if n == 0 {
        n = 0x0F;
    }
    plaintext.extend(std::iter::repeat_n(n, usize::from(n)));
    plaintext
}

/// Removes the padding: `n` = last byte, 1 <= n <= len, and every one of the last `n` bytes
/// equals `n` (whatsmeow and whatsapp-rust check all of them; Baileys only `n <= len`).
///
/// # Errors
/// [`MessageError::BadPadding`] for an empty input, `n == 0`, `n > len` or a mismatching
/// padding byte.
pub fn unpad(padded: &[u8]) -> Result<&[u8], MessageError> {
    let Some(&n) = padded.last() else {
        return Err(MessageError::BadPadding);
    };
    let n = usize::from(n);
    if n == 0 || n > padded.len() {
        return Err(MessageError::BadPadding);
    }
    let (body, tail) = padded.split_at(padded.len() - n);
    if tail.iter().any(|&b| usize::from(b) != n) {
        return Err(MessageError::BadPadding);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    #[test]
    fn padding_round_trips_with_one_to_fifteen_bytes() {
        let mut rng = StdRng::seed_from_u64(1);
        for len in 0..40 {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let padded = pad(body.clone(), &mut rng);
            let added = padded.len() - body.len();
            assert!((1..=15).contains(&added));
            assert_eq!(unpad(&padded).unwrap(), body.as_slice());
        }
    }

    #[test]
    fn unpad_rejects_empty_zero_oversized_and_inconsistent_padding() {
        assert!(unpad(&[]).is_err());
        assert!(unpad(&[1, 2, 0]).is_err());
        assert!(unpad(&[4, 4, 4]).is_err());
        assert!(unpad(&[9, 2, 3, 3]).is_err());
        assert_eq!(unpad(&[9, 3, 3, 3]).unwrap(), &[9]);
        // Baileys' 16-byte padding is accepted.
        let mut b = vec![7];
        b.extend([16; 16]);
        assert_eq!(unpad(&b).unwrap(), &[7]);
    }
}
