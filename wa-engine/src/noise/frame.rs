//! Frame layer: 3-byte big-endian length prefix, the client's connection header, and a
//! sans-IO splitter that turns arbitrary chunks into whole frames.
//!
//! Every frame, both directions, handshake and transport, is `len (3 bytes, BE) || payload`.
//! The client prefixes its first frame, once per WebSocket connection, with the connection
//! header `WA 06 03`, optionally preceded by the edge-routing pre-intro
//! `ED 00 01 || len(R) (3 bytes, BE) || R`. The server never sends a header.
//! WebSocket message boundaries mean nothing: a message may hold several frames or part of one.
//!
//! Sources: shared/protocol/01 §2-§3; whatsmeow `socket/framesocket.go` (`SendFrame`,
//! `processData`); Baileys `src/Utils/noise-handler.ts` (`encodeFrame`, `decodeFrame`,
//! `introHeader`); whatsapp-rust `wacore/noise/src/edge_routing.rs`.

use bytes::{Buf, Bytes, BytesMut};

use super::NoiseError;

/// The connection header (and Noise prologue): `'W' 'A'`, magic 6, dictionary version 3.
///
/// Source: whatsmeow `socket/constants.go` (`WAConnHeader`); shared/protocol/01 §2.
pub const CONN_HEADER: [u8; 4] = [b'W', b'A', 6, 3];

/// Magic of the edge-routing pre-intro: `'E' 'D' 0 1` (shared/protocol/01 §2.1).
pub const PRE_INTRO_MAGIC: [u8; 4] = [b'E', b'D', 0, 1];

/// Length of a frame's length prefix, bytes.
pub const LEN_PREFIX: usize = 3;

/// Largest payload a frame can carry, bytes: `2^24 - 1`, the most a 3-byte prefix encodes.
///
/// whatsmeow refuses to send `len >= 1 << 24` (`socket/framesocket.go`); its WebSocket read
/// limit is 16 MiB too.
pub const MAX_FRAME_LEN: usize = (1 << 24) - 1;

/// Largest routing-info blob the pre-intro's 3-byte length can announce, bytes.
const MAX_ROUTING_INFO_LEN: usize = (1 << 24) - 1;

/// Writes frames: prefixes each payload with its length, and the client's first frame with
/// the connection header (and optional edge-routing pre-intro).
///
/// ```
/// use wa_engine::noise::FrameEncoder;
/// let mut enc = FrameEncoder::client();
/// let mut out = Vec::new();
/// enc.encode(b"hi", &mut out).unwrap();
/// assert_eq!(out, [b'W', b'A', 6, 3, 0, 0, 2, b'h', b'i']);
/// out.clear();
/// enc.encode(b"hi", &mut out).unwrap();
/// assert_eq!(out, [0, 0, 2, b'h', b'i']);
/// ```
#[derive(Debug, Clone)]
pub struct FrameEncoder {
    /// Bytes still to prefix to the next frame (the intro), empty once sent.
    intro: Vec<u8>,
}

impl FrameEncoder {
    /// An encoder for the client: the first frame gets the `WA 06 03` header.
    #[must_use]
    pub fn client() -> Self {
        Self {
            intro: CONN_HEADER.to_vec(),
        }
    }

    /// An encoder for the client holding edge-routing info `routing_info` (from
    /// `<edge_routing><routing_info>`): the first frame gets
    /// `ED 00 01 || len (3 bytes BE) || routing_info || WA 06 03`.
    ///
    /// An empty or oversized (more than `2^24 - 1` bytes) `routing_info` falls back to the
    /// plain header, as whatsapp-rust `build_edge_routing_preintro` does. Baileys
    /// (`introHeader`) sends the pre-intro; whatsmeow never does.
    #[must_use]
    pub fn client_with_routing_info(routing_info: &[u8]) -> Self {
        let len = routing_info.len();
        if len == 0 || len > MAX_ROUTING_INFO_LEN {
            return Self::client();
        }
        let mut intro = Vec::with_capacity(PRE_INTRO_MAGIC.len() + LEN_PREFIX + len + 4);
        intro.extend_from_slice(&PRE_INTRO_MAGIC);
        intro.extend_from_slice(&len_prefix(len));
        intro.extend_from_slice(routing_info);
        intro.extend_from_slice(&CONN_HEADER);
        Self { intro }
    }

    /// An encoder for the server: no header, ever.
    #[must_use]
    pub fn server() -> Self {
        Self { intro: Vec::new() }
    }

    /// Appends one frame carrying `payload` to `out` (with the intro if this is the first
    /// frame of a client encoder).
    ///
    /// # Errors
    /// [`NoiseError::FrameTooLarge`] if `payload` is longer than [`MAX_FRAME_LEN`]; nothing
    /// is written then.
    pub fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        let prefix = checked_len_prefix(payload.len())?;
        out.reserve(self.intro.len() + LEN_PREFIX + payload.len());
        out.append(&mut self.intro);
        out.extend_from_slice(&prefix);
        out.extend_from_slice(payload);
        Ok(())
    }

    /// Appends the intro (if still due) and a length prefix for a payload of `payload_len`
    /// bytes that the caller will append itself, e.g. by encrypting straight into `out`.
    ///
    /// # Errors
    /// [`NoiseError::FrameTooLarge`] if `payload_len` exceeds [`MAX_FRAME_LEN`].
    pub fn encode_header(
        &mut self,
        payload_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let prefix = checked_len_prefix(payload_len)?;
        out.append(&mut self.intro);
        out.extend_from_slice(&prefix);
        Ok(())
    }

    /// Whether the intro has been written (always `true` for a server encoder).
    #[must_use]
    pub fn intro_sent(&self) -> bool {
        self.intro.is_empty()
    }
}

/// What the decoder still expects before frames.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IntroState {
    /// Server side: expecting the connection header (possibly after a pre-intro).
    Expected,
    /// Nothing (client side, or header already consumed).
    Done,
}

/// Splits a byte stream into frames. Sans-IO: feed chunks with [`push`](Self::push), take
/// whole frames with [`next_frame`](Self::next_frame).
///
/// A decoder made with [`server`](Self::server) first consumes the client's connection header
/// (and an optional edge-routing pre-intro, whose routing info it keeps). A length prefix
/// above the limit fails with [`NoiseError::FrameTooLarge`] before any byte of that frame is
/// buffered beyond what was pushed, so a peer cannot make us allocate by announcing a size.
/// Errors are sticky: the stream cannot be resynchronised, the caller should close.
///
/// ```
/// use wa_engine::noise::FrameDecoder;
/// let mut dec = FrameDecoder::client();
/// dec.push(&[0, 0, 3, 1, 2]);
/// assert!(dec.next_frame().unwrap().is_none());
/// dec.push(&[3, 0, 0, 0]);
/// assert_eq!(&dec.next_frame().unwrap().unwrap()[..], &[1, 2, 3]);
/// assert_eq!(&dec.next_frame().unwrap().unwrap()[..], &[] as &[u8]);
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: BytesMut,
    intro: IntroState,
    routing_info: Option<Bytes>,
    max_frame_len: usize,
}

impl FrameDecoder {
    /// A decoder for frames the client receives (no header expected).
    #[must_use]
    pub fn client() -> Self {
        Self {
            buf: BytesMut::new(),
            intro: IntroState::Done,
            routing_info: None,
            max_frame_len: MAX_FRAME_LEN,
        }
    }

    /// A decoder for frames the server receives: the stream must start with the connection
    /// header `WA 06 03`, optionally preceded by the edge-routing pre-intro.
    #[must_use]
    pub fn server() -> Self {
        Self {
            intro: IntroState::Expected,
            ..Self::client()
        }
    }

    /// Lowers the largest accepted frame payload to `max` bytes (capped at
    /// [`MAX_FRAME_LEN`]).
    #[must_use]
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max.min(MAX_FRAME_LEN);
        self
    }

    /// Appends bytes received from the peer (any split: part of a frame, several frames).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Takes the next whole frame's payload, or `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// - [`NoiseError::BadPreIntro`] / [`NoiseError::BadConnectionHeader`] (server side) if the
    ///   stream does not start with a valid intro;
    /// - [`NoiseError::FrameTooLarge`] if a length prefix exceeds the limit (or, server side,
    ///   the pre-intro announces more than that limit of routing info).
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, NoiseError> {
        if self.intro == IntroState::Expected && !self.consume_intro()? {
            return Ok(None);
        }
        let Some(prefix) = self.buf.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let len = read_len(prefix);
        if len > self.max_frame_len {
            return Err(NoiseError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        if self.buf.len() < LEN_PREFIX + len {
            // Reserve only what the peer actually still owes, never ahead of its bytes.
            return Ok(None);
        }
        self.buf.advance(LEN_PREFIX);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Declares the stream closed: fails if a partial frame (or partial intro) is buffered.
    ///
    /// # Errors
    /// [`NoiseError::TruncatedFrame`] with the number of leftover bytes.
    pub fn finish(&self) -> Result<(), NoiseError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(NoiseError::TruncatedFrame {
                buffered: self.buf.len(),
            })
        }
    }

    /// The routing info the client sent in its edge-routing pre-intro, if any (server side).
    #[must_use]
    pub fn routing_info(&self) -> Option<&[u8]> {
        self.routing_info.as_deref()
    }

    /// Bytes buffered that do not yet form a whole frame (or intro).
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Consumes the intro if it is complete. Returns `Ok(false)` if more bytes are needed.
    fn consume_intro(&mut self) -> Result<bool, NoiseError> {
        let Some(first) = self.buf.first() else {
            return Ok(false);
        };
        let mut offset = 0;
        let mut routing = None;
        if *first == PRE_INTRO_MAGIC[0] {
            let Some(magic) = self.buf.get(..4) else {
                return Ok(false);
            };
            if magic != PRE_INTRO_MAGIC {
                return Err(NoiseError::BadPreIntro { found: four(magic) });
            }
            let Some(prefix) = self.buf.get(4..4 + LEN_PREFIX) else {
                return Ok(false);
            };
            let len = read_len(prefix);
            if len > self.max_frame_len {
                return Err(NoiseError::FrameTooLarge {
                    len,
                    max: self.max_frame_len,
                });
            }
            offset = 4 + LEN_PREFIX + len;
            routing = Some(4 + LEN_PREFIX..offset);
        }
        let Some(header) = self.buf.get(offset..offset + CONN_HEADER.len()) else {
            // Checking a partial header early gives a faster, clearer error on garbage.
            let have = self.buf.get(offset..).unwrap_or_default();
            if !CONN_HEADER.starts_with(have) && routing.is_none() {
                let mut found = [0_u8; 4];
                found[..have.len()].copy_from_slice(have);
                return Err(NoiseError::BadConnectionHeader { found });
            }
            return Ok(false);
        };
        if header != CONN_HEADER {
            return Err(NoiseError::BadConnectionHeader {
                found: four(header),
            });
        }
        let mut intro = self.buf.split_to(offset + CONN_HEADER.len()).freeze();
        if let Some(range) = routing {
            intro = intro.slice(range);
            self.routing_info = Some(intro);
        }
        self.intro = IntroState::Done;
        Ok(true)
    }
}

/// The 3-byte big-endian length prefix of `len` (which must be `<= MAX_FRAME_LEN`).
fn len_prefix(len: usize) -> [u8; LEN_PREFIX] {
    let [_, a, b, c] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [a, b, c]
}

/// Checks `len` against [`MAX_FRAME_LEN`] and returns its prefix.
fn checked_len_prefix(len: usize) -> Result<[u8; LEN_PREFIX], NoiseError> {
    if len > MAX_FRAME_LEN {
        return Err(NoiseError::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    Ok(len_prefix(len))
}

/// Reads a 3-byte big-endian length (`prefix` has at least 3 bytes).
fn read_len(prefix: &[u8]) -> usize {
    prefix
        .iter()
        .take(LEN_PREFIX)
        .fold(0_usize, |acc, b| (acc << 8) | usize::from(*b))
}

/// The first four bytes of `bytes`, zero-padded.
fn four(bytes: &[u8]) -> [u8; 4] {
    let mut out = [0_u8; 4];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(dec: &mut FrameDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(f) = dec.next_frame().unwrap() {
            out.push(f.to_vec());
        }
        out
    }

    #[test]
    fn server_decoder_splits_at_every_byte_boundary() {
        let mut stream = Vec::new();
        let mut enc = FrameEncoder::client();
        let payloads: Vec<Vec<u8>> = vec![vec![1; 5], vec![], vec![2; 300], vec![3]];
        for p in &payloads {
            enc.encode(p, &mut stream).unwrap();
        }
        for chunk in 1..=stream.len() {
            let mut dec = FrameDecoder::server();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                dec.push(piece);
                got.extend(frames_of(&mut dec));
            }
            assert_eq!(got, payloads, "chunk size {chunk}");
            dec.finish().unwrap();
        }
    }

    proptest::proptest! {
        #[test]
        fn any_split_of_any_frames_yields_the_same_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..8),
            routing in proptest::collection::vec(proptest::num::u8::ANY, 0..20),
            cuts in proptest::collection::vec(proptest::num::usize::ANY, 0..10),
        ) {
            let mut stream = Vec::new();
            let mut enc = FrameEncoder::client_with_routing_info(&routing);
            for p in &payloads {
                enc.encode(p, &mut stream).unwrap();
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut dec = FrameDecoder::server();
            let mut got = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                dec.push(&stream[at..cut]);
                at = cut;
                got.extend(frames_of(&mut dec));
            }
            proptest::prop_assert_eq!(got, payloads.clone());
            proptest::prop_assert!(dec.finish().is_ok());
            let expected_routing = (!routing.is_empty() && !payloads.is_empty()).then_some(&routing[..]);
            proptest::prop_assert_eq!(dec.routing_info(), expected_routing);
        }
    }

    #[test]
    fn server_decoder_reads_routing_info_pre_intro() {
        let mut stream = Vec::new();
        FrameEncoder::client_with_routing_info(b"route")
            .encode(b"x", &mut stream)
            .unwrap();
        assert_eq!(&stream[..14], b"ED\x00\x01\x00\x00\x05routeWA");
        for split in 0..stream.len() {
            let mut dec = FrameDecoder::server();
            dec.push(&stream[..split]);
            let mut got = frames_of(&mut dec);
            dec.push(&stream[split..]);
            got.extend(frames_of(&mut dec));
            assert_eq!(got, vec![b"x".to_vec()]);
            assert_eq!(dec.routing_info(), Some(&b"route"[..]));
        }
    }

    #[test]
    fn rejects_wrong_dictionary_version_in_header() {
        let mut dec = FrameDecoder::server();
        dec.push(&[b'W', b'A', 6, 2, 0, 0, 0]);
        assert!(matches!(
            dec.next_frame(),
            Err(NoiseError::BadConnectionHeader {
                found: [b'W', b'A', 6, 2]
            })
        ));
    }

    #[test]
    fn rejects_garbage_before_header_is_complete() {
        let mut dec = FrameDecoder::server();
        dec.push(b"GE");
        assert!(matches!(
            dec.next_frame(),
            Err(NoiseError::BadConnectionHeader {
                found: [b'G', b'E', 0, 0]
            })
        ));
    }

    #[test]
    fn rejects_oversized_length_prefix_without_buffering() {
        let mut dec = FrameDecoder::client().with_max_frame_len(1024);
        dec.push(&[0, 4, 1]);
        assert!(matches!(
            dec.next_frame(),
            Err(NoiseError::FrameTooLarge {
                len: 1025,
                max: 1024
            })
        ));
        assert_eq!(dec.buffered_len(), 3);
    }

    #[test]
    fn encoder_refuses_payload_above_limit() {
        let payload = vec![0_u8; MAX_FRAME_LEN + 1];
        let mut out = Vec::new();
        assert!(matches!(
            FrameEncoder::server().encode(&payload, &mut out),
            Err(NoiseError::FrameTooLarge { .. })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn encode_header_then_payload_equals_encode() {
        let (mut a, mut b) = (FrameEncoder::client(), FrameEncoder::client());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for payload in [&b"first"[..], b"second"] {
            a.encode(payload, &mut x).unwrap();
            b.encode_header(payload.len(), &mut y).unwrap();
            y.extend_from_slice(payload);
        }
        assert_eq!(x, y);
        assert!(a.intro_sent() && b.intro_sent());
    }

    #[test]
    fn finish_reports_truncated_frame() {
        let mut dec = FrameDecoder::client();
        dec.push(&[0, 0, 9, 1, 2]);
        assert!(dec.next_frame().unwrap().is_none());
        assert!(matches!(
            dec.finish(),
            Err(NoiseError::TruncatedFrame { buffered: 5 })
        ));
    }
}
