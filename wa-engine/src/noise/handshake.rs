//! The Noise XX handshake as WhatsApp runs it (`Noise_XX_25519_AESGCM_SHA256`, prologue
//! `WA 06 03`, messages wrapped in the `HandshakeMessage` protobuf), both roles.
//!
//! Flow (shared/protocol/01 §4.4-§4.5; whatsmeow `handshake.go` `doHandshake` and
//! `socket/noisehandshake.go`; Baileys `src/Utils/noise-handler.ts`):
//!
//! ```text
//! client                                              server
//! ClientHandshake::new ── ClientHello{e} ──────────▶ ServerHandshake::handle_client_hello
//!                      ◀── ServerHello{e, s, cert} ── (returns AwaitingClientFinish)
//! handle_server_hello (verifies the certificate chain)
//! ServerHelloVerified::write_client_finish
//!                      ── ClientFinish{s, payload} ▶ AwaitingClientFinish::handle_client_finish
//! Handshake::finish -> Transport                      Handshake::finish -> Transport
//! ```
//!
//! One deviation from the Noise specification, shared by every WhatsApp client: the first
//! message (`-> e`) carries no payload and WhatsApp does **not** `MixHash` the empty
//! payload, whereas the spec (and snow) always calls `EncryptAndHash(payload)`. Everything
//! else — initial `h = ck =` the 32-byte protocol name, HKDF, nonces, associated data, the
//! nonce carried from the certificate payload into the client static (n = 1), `Split` — is
//! standard Noise XX. `tests/noise_snow.rs` checks exactly this against snow.

use hkdf::Hkdf;
use prost::Message;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wa_proto::wa::HandshakeMessage;
#[cfg(feature = "server-side")]
use wa_proto::wa::handshake_message::ServerHello;
use wa_proto::wa::handshake_message::{ClientFinish, ClientHello};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::NoiseError;
use super::cert::{TrustRoot, VerifiedChain, verify_cert_chain};
use super::frame::CONN_HEADER;
use super::transport::{CipherState, TAG_LEN, Transport};

/// The protocol name, `"Noise_XX_25519_AESGCM_SHA256"` padded with four NUL bytes to 32 bytes;
/// being exactly 32 bytes it is used as the initial `h` and `ck` without hashing.
///
/// Source: whatsmeow `socket/constants.go` (`NoiseStartPattern`); shared/protocol/01 §4.1.
pub const PROTOCOL_NAME: &[u8; 32] = b"Noise_XX_25519_AESGCM_SHA256\0\0\0\0";

/// The IK protocol name a registered client resumes with, `"Noise_IK_25519_AESGCM_SHA256"`
/// padded with four NUL bytes to 32 bytes (used raw, like [`PROTOCOL_NAME`]).
///
/// Source: shared/protocol/01 §6; whatsapp-rust `wacore/binary/src/consts.rs`
/// (`NOISE_PATTERN_IK`), mirroring WhatsApp Web.
pub const IK_PROTOCOL_NAME: &[u8; 32] = b"Noise_IK_25519_AESGCM_SHA256\0\0\0\0";

/// The protocol name of the fallback after a refused IK hello,
/// `"Noise_XXfallback_25519_AESGCM_SHA256"`: 36 bytes, so the initial `h` and `ck` are its
/// SHA-256 (Noise spec §5.2 `InitializeSymmetric`).
///
/// Source: shared/protocol/01 §6; whatsapp-rust `NOISE_PATTERN_XXFALLBACK`.
pub const XX_FALLBACK_PROTOCOL_NAME: &[u8] = b"Noise_XXfallback_25519_AESGCM_SHA256";

/// An X25519 key pair: the client's noise key or ephemeral key, the server's static or
/// ephemeral key, or a certificate signing key.
///
/// The private half is zeroized on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct KeyPair {
    secret: StaticSecret,
    public: PublicKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &Hex(self.public.as_bytes()))
            .field("private", &"<redacted>")
            .finish()
    }
}

/// Lower-case hex for `Debug` of public values.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl KeyPair {
    /// The key pair of a 32-byte X25519 private key (clamped when used, RFC 7748).
    #[must_use]
    pub fn from_private_bytes(private: [u8; 32]) -> Self {
        let secret = StaticSecret::from(private);
        let public = PublicKey::from(&secret);
        Self { secret, public }
    }

    /// A fresh key pair with 32 private bytes drawn from `rng`.
    #[must_use]
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut private = Zeroizing::new([0_u8; 32]);
        rng.fill_bytes(private.as_mut());
        Self::from_private_bytes(*private)
    }

    /// The public key, 32 bytes (Montgomery u-coordinate).
    #[must_use]
    pub fn public(&self) -> &[u8; 32] {
        self.public.as_bytes()
    }

    /// A copy of the private key, 32 bytes, for persisting it; zeroized when dropped.
    #[must_use]
    pub fn private_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The raw private key, for XEdDSA signing inside the crate.
    pub(crate) fn private(&self) -> &[u8; 32] {
        self.secret.as_bytes()
    }

    /// X25519 with `their_public`; the shared secret is zeroized when dropped.
    fn dh(&self, their_public: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(
            self.secret
                .diffie_hellman(&PublicKey::from(*their_public))
                .to_bytes(),
        )
    }
}

/// The Noise symmetric state (`h`, `ck`, `k`, `n`) with WhatsApp's operations.
///
/// Low-level: connections use the typestate API ([`ClientHandshake`], and `ServerHandshake` with
/// the `server-side` feature);
/// this type is public so that every intermediate hash and chaining key can be checked
/// against captured vectors. Operations (shared/protocol/01 §4.2; whatsmeow
/// `socket/noisehandshake.go` `Authenticate`, `MixIntoKey`, `Encrypt`, `Decrypt`, `Finish`):
///
/// - `mix_hash(d)`: `h = SHA-256(h || d)`;
/// - `mix_key(ikm)`: `ck, k = HKDF-SHA256(salt = ck, ikm, info = "", 64)`; `n = 0`;
/// - `encrypt_and_hash(p)`: `c = AES-GCM(k, IV(n), aad = h, p)`; `n += 1`; `mix_hash(c)`;
/// - `decrypt_and_hash(c)`: the inverse; `h` only changes on success;
/// - `split()`: `HKDF-SHA256(salt = ck, ikm = "", info = "", 64)` = initiator-send || initiator-receive.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SymmetricState {
    h: [u8; 32],
    ck: [u8; 32],
    /// Keyed with `k`; `AesGcm` zeroizes its own key schedule on drop (feature `zeroize`).
    #[zeroize(skip)]
    cipher: CipherState,
}

impl std::fmt::Debug for SymmetricState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymmetricState")
            .field("h", &Hex(&self.h))
            .finish_non_exhaustive()
    }
}

impl Default for SymmetricState {
    fn default() -> Self {
        Self::new()
    }
}

impl SymmetricState {
    /// The state after `InitializeSymmetric(PROTOCOL_NAME)` and `MixHash(prologue)` with the
    /// prologue `WA 06 03`. Like whatsmeow (`Start`) and Baileys, the cipher key starts as the
    /// protocol name too; the flow never encrypts before the first `mix_key`.
    #[must_use]
    pub fn new() -> Self {
        Self::with_protocol_name(PROTOCOL_NAME)
    }

    /// The state after `InitializeSymmetric(name)` and `MixHash(prologue)` with the prologue
    /// `WA 06 03`, for any handshake pattern ([`PROTOCOL_NAME`], [`IK_PROTOCOL_NAME`],
    /// [`XX_FALLBACK_PROTOCOL_NAME`]): a name of at most 32 bytes is padded with zeros, a
    /// longer one is hashed with SHA-256 (Noise spec §5.2); `ck` and the cipher key start
    /// as that value.
    #[must_use]
    pub fn with_protocol_name(name: &[u8]) -> Self {
        let mut init = [0u8; 32];
        if name.len() <= 32 {
            init[..name.len()].copy_from_slice(name);
        } else {
            init = Sha256::digest(name).into();
        }
        let mut state = Self {
            h: init,
            ck: init,
            cipher: CipherState::new(&init),
        };
        state.mix_hash(&CONN_HEADER);
        state
    }

    /// `h = SHA-256(h || data)` (whatsmeow `Authenticate`).
    pub fn mix_hash(&mut self, data: &[u8]) {
        let mut hasher = Sha256::new();
        hasher.update(self.h);
        hasher.update(data);
        self.h = hasher.finalize().into();
    }

    /// `ck, k = HKDF-SHA256(salt = ck, ikm, info = "", 64 bytes)`; resets the counter to 0.
    pub fn mix_key(&mut self, input_key_material: &[u8]) {
        let okm = self.hkdf(input_key_material);
        self.ck.copy_from_slice(&okm[..32]);
        let mut k = [0_u8; 32];
        k.copy_from_slice(&okm[32..]);
        self.cipher = CipherState::new(&k);
        k.zeroize();
    }

    /// Encrypts `plaintext` with `aad = h`, appends `ciphertext || tag` to `out` and mixes the
    /// ciphertext into `h`.
    ///
    /// # Errors
    /// [`NoiseError::CounterExhausted`] (impossible within a handshake).
    pub fn encrypt_and_hash(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let start = out.len();
        self.cipher.seal(&self.h, plaintext, out)?;
        // `start <= out.len()`: the slice cannot panic.
        let ciphertext = &out[start..];
        let mut hasher = Sha256::new();
        hasher.update(self.h);
        hasher.update(ciphertext);
        self.h = hasher.finalize().into();
        Ok(())
    }

    /// Decrypts `ciphertext` with `aad = h`, appends the plaintext to `out` and mixes the
    /// ciphertext into `h`. `what` names the field for the error.
    ///
    /// # Errors
    /// [`NoiseError::DecryptFailed`]`(what)` if authentication fails (`h` and `out` are then
    /// unchanged; the counter advances).
    pub fn decrypt_and_hash(
        &mut self,
        ciphertext: &[u8],
        out: &mut Vec<u8>,
        what: &'static str,
    ) -> Result<(), NoiseError> {
        self.cipher.open(&self.h, ciphertext, out, what)?;
        self.mix_hash(ciphertext);
        Ok(())
    }

    /// The handshake hash `h`, 32 bytes.
    #[must_use]
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.h
    }

    /// The chaining key `ck`, 32 bytes. Secret: for checking vectors only.
    #[cfg(feature = "server-side")]
    #[must_use]
    pub fn chaining_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.ck)
    }

    /// `Split()`: returns (initiator-to-responder key, responder-to-initiator key).
    #[must_use]
    pub fn split(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        let okm = self.hkdf(&[]);
        let mut first = Zeroizing::new([0_u8; 32]);
        let mut second = Zeroizing::new([0_u8; 32]);
        first.copy_from_slice(&okm[..32]);
        second.copy_from_slice(&okm[32..]);
        (first, second)
    }

    /// `HKDF-SHA256(salt = ck, ikm, info = "")`, 64 bytes.
    fn hkdf(&self, input_key_material: &[u8]) -> Zeroizing<[u8; 64]> {
        let mut okm = Zeroizing::new([0_u8; 64]);
        // 64 bytes is far below HKDF-SHA256's 255 × 32 limit, so expand cannot fail.
        if Hkdf::<Sha256>::new(Some(&self.ck), input_key_material)
            .expand(&[], okm.as_mut())
            .is_err()
        {
            unreachable!("HKDF-SHA256 expands 64 bytes");
        }
        okm
    }
}

/// Which side of the handshake this is; decides the transport key directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client (Noise initiator).
    Initiator,
    /// The server (Noise responder).
    Responder,
}

/// Client side, step 1: the `ClientHello` is ready; expecting the `ServerHello`.
///
/// ```no_run
/// use wa_engine::noise::{ClientHandshake, FrameDecoder, FrameEncoder, KeyPair, TrustRoot};
/// # fn run(noise_key: KeyPair, ephemeral: KeyPair, client_payload: &[u8], now_unix: u64,
/// #        socket_bytes: &[u8]) -> Result<(), wa_engine::noise::NoiseError> {
/// let (mut enc, mut dec) = (FrameEncoder::client(), FrameDecoder::client());
/// let hs = ClientHandshake::new(noise_key, ephemeral, TrustRoot::default());
/// let (mut msg, mut wire) = (Vec::new(), Vec::new());
/// hs.write_client_hello(&mut msg);
/// enc.encode(&msg, &mut wire)?; // send `wire`
/// dec.push(socket_bytes);
/// let Some(server_hello) = dec.next_frame()? else { return Ok(()) };
/// let verified = hs.handle_server_hello(now_unix, &server_hello)?;
/// msg.clear();
/// let done = verified.write_client_finish(client_payload, &mut msg)?;
/// wire.clear();
/// enc.encode(&msg, &mut wire)?; // send `wire`
/// let transport = done.finish();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    state: SymmetricState,
    static_key: KeyPair,
    ephemeral: KeyPair,
    trust_root: TrustRoot,
}

impl ClientHandshake {
    /// Starts the handshake with our long-term noise key `static_key` and a fresh
    /// `ephemeral` key (one per connection), trusting certificate chains under `trust_root`
    /// ([`TrustRoot::default`] is WhatsApp's production root).
    #[must_use]
    pub fn new(static_key: KeyPair, ephemeral: KeyPair, trust_root: TrustRoot) -> Self {
        let mut state = SymmetricState::new();
        state.mix_hash(ephemeral.public());
        Self {
            state,
            static_key,
            ephemeral,
            trust_root,
        }
    }

    /// Appends the first handshake message, `HandshakeMessage{clientHello{ephemeral}}`
    /// (protobuf, unframed), to `out`.
    pub fn write_client_hello(&self, out: &mut Vec<u8>) {
        let msg = HandshakeMessage {
            client_hello: Some(ClientHello {
                ephemeral: Some(self.ephemeral.public().to_vec()),
                ..ClientHello::default()
            }),
            ..HandshakeMessage::default()
        };
        out.extend_from_slice(&msg.encode_to_vec());
    }

    /// The handshake hash so far, 32 bytes.
    #[must_use]
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.state.handshake_hash()
    }

    /// Processes the server's `HandshakeMessage{serverHello}` (protobuf, unframed): decrypts
    /// the server static key and the certificate chain and verifies the chain against the
    /// trust root at `now` (unix seconds).
    ///
    /// # Errors
    /// [`NoiseError::MalformedHandshake`], [`NoiseError::UnexpectedMessage`] (no
    /// `serverHello`), [`NoiseError::MissingField`], [`NoiseError::BadLength`] (ephemeral or
    /// decrypted static not 32 bytes), [`NoiseError::DecryptFailed`], and
    /// [`NoiseError::Certificate`] with the failed check.
    pub fn handle_server_hello(
        mut self,
        now: u64,
        message: &[u8],
    ) -> Result<ServerHelloVerified, NoiseError> {
        let msg = HandshakeMessage::decode(message).map_err(NoiseError::MalformedHandshake)?;
        let hello = msg.server_hello.ok_or(NoiseError::UnexpectedMessage {
            expected: "serverHello",
        })?;
        let ephemeral = hello
            .ephemeral
            .ok_or(NoiseError::MissingField("serverHello.ephemeral"))?;
        let static_ct = hello
            .r#static
            .ok_or(NoiseError::MissingField("serverHello.static"))?;
        let payload_ct = hello
            .payload
            .ok_or(NoiseError::MissingField("serverHello.payload"))?;
        let remote_ephemeral = key32("serverHello.ephemeral", &ephemeral)?;

        let st = &mut self.state;
        st.mix_hash(&remote_ephemeral);
        st.mix_key(self.ephemeral.dh(&remote_ephemeral).as_ref());

        let mut static_plain = Vec::with_capacity(32);
        st.decrypt_and_hash(&static_ct, &mut static_plain, "server static key")?;
        let remote_static = key32("server static key", &static_plain)?;
        st.mix_key(self.ephemeral.dh(&remote_static).as_ref());

        let mut cert = Vec::with_capacity(payload_ct.len());
        st.decrypt_and_hash(&payload_ct, &mut cert, "certificate chain")?;
        let chain = verify_cert_chain(&cert, &self.trust_root, &remote_static, now)?;
        tracing::debug!(
            leaf_serial = chain.leaf.serial,
            intermediate_serial = chain.intermediate.serial,
            "noise: server certificate chain verified"
        );

        Ok(ServerHelloVerified {
            state: self.state,
            static_key: self.static_key,
            remote_ephemeral,
            remote_static,
            chain,
        })
    }
}

/// Client side, step 2: the server is authenticated; ready to send the `ClientFinish`.
#[derive(Debug)]
pub struct ServerHelloVerified {
    state: SymmetricState,
    static_key: KeyPair,
    remote_ephemeral: [u8; 32],
    remote_static: [u8; 32],
    chain: VerifiedChain,
}

impl ServerHelloVerified {
    /// The server's static public key (certified by the leaf certificate), 32 bytes.
    #[must_use]
    pub fn server_static(&self) -> &[u8; 32] {
        &self.remote_static
    }

    /// The verified certificate chain.
    #[must_use]
    pub fn certificates(&self) -> &VerifiedChain {
        &self.chain
    }

    /// The handshake hash so far, 32 bytes.
    #[must_use]
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.state.handshake_hash()
    }

    /// The chaining key so far. Secret: for checking vectors only.
    #[cfg(feature = "server-side")]
    #[must_use]
    pub fn chaining_key(&self) -> Zeroizing<[u8; 32]> {
        self.state.chaining_key()
    }

    /// Appends the last handshake message, `HandshakeMessage{clientFinish{static, payload}}`
    /// (protobuf, unframed), to `out`, carrying our encrypted static key and the encrypted
    /// `client_payload` (a serialized `ClientPayload`, shared/protocol/03 §2).
    ///
    /// # Errors
    /// [`NoiseError::CounterExhausted`] (impossible in practice).
    pub fn write_client_finish(
        mut self,
        client_payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Handshake, NoiseError> {
        let st = &mut self.state;
        // Encrypted with the key from `es` at n = 1: the certificate payload used n = 0.
        let mut static_ct = Vec::with_capacity(32 + TAG_LEN);
        st.encrypt_and_hash(self.static_key.public(), &mut static_ct)?;
        st.mix_key(self.static_key.dh(&self.remote_ephemeral).as_ref());
        let mut payload_ct = Vec::with_capacity(client_payload.len() + TAG_LEN);
        st.encrypt_and_hash(client_payload, &mut payload_ct)?;

        let msg = HandshakeMessage {
            client_finish: Some(ClientFinish {
                r#static: Some(static_ct),
                payload: Some(payload_ct),
            }),
            ..HandshakeMessage::default()
        };
        out.extend_from_slice(&msg.encode_to_vec());
        Ok(Handshake {
            state: self.state,
            role: Role::Initiator,
            remote_static: self.remote_static,
        })
    }
}

/// Server side, step 1: expecting the client's `ClientHello`.
#[cfg(feature = "server-side")]
#[derive(Debug)]
pub struct ServerHandshake {
    static_key: KeyPair,
    ephemeral: KeyPair,
    cert_chain: Vec<u8>,
}

#[cfg(feature = "server-side")]
impl ServerHandshake {
    /// Prepares the responder with the server's static key (the key the leaf certificate
    /// certifies), a fresh `ephemeral` key, and the serialized `CertChain` to send
    /// (see [`build_cert_chain`](super::build_cert_chain)).
    #[must_use]
    pub fn new(static_key: KeyPair, ephemeral: KeyPair, cert_chain: Vec<u8>) -> Self {
        Self {
            static_key,
            ephemeral,
            cert_chain,
        }
    }

    /// Processes the client's `HandshakeMessage{clientHello}` (protobuf, unframed; the
    /// connection header was consumed by the [`FrameDecoder`](super::FrameDecoder)) and
    /// appends our `HandshakeMessage{serverHello{ephemeral, static, payload}}` to `out`.
    ///
    /// An IK hello (one carrying `static` and `payload`, shared/protocol/01 §6) is never
    /// accepted here: it gets a real `Noise_XXfallback` reply, which the client completes
    /// with a `ClientFinish` like XX. Use [`handle_client_hello_resumable`](Self::handle_client_hello_resumable)
    /// to accept IK from known clients.
    ///
    /// # Errors
    /// [`NoiseError::MalformedHandshake`], [`NoiseError::UnexpectedMessage`],
    /// [`NoiseError::MissingField`], [`NoiseError::BadLength`] (ephemeral not 32 bytes).
    pub fn handle_client_hello(
        self,
        message: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<AwaitingClientFinish, NoiseError> {
        match self.handle_client_hello_resumable(message, |_| false, out)? {
            ServerHelloOutcome::AwaitFinish(next) => Ok(next),
            // `accept` refused every key, so IK cannot have completed.
            ServerHelloOutcome::Resumed(..) => Err(NoiseError::UnexpectedMessage {
                expected: "clientHello without IK resume",
            }),
        }
    }

    /// Like [`handle_client_hello`](Self::handle_client_hello), but also answers Noise IK
    /// (`Noise_IK_25519_AESGCM_SHA256`), as WhatsApp's server does for a registered client
    /// that cached our static key (shared/protocol/01 §6; whatsapp-rust
    /// `wacore/noise/src/handshake.rs` `IkHandshakeState`, mirroring WhatsApp Web).
    ///
    /// - A plain XX hello (`ephemeral` only): the XX `ServerHello`, then
    ///   [`ServerHelloOutcome::AwaitFinish`].
    /// - An IK hello (`ephemeral`, `static`, `payload`) whose static key decrypts under our
    ///   static key, whose payload decrypts, and for whose static key `accept` returns true
    ///   (a registered device): `ServerHello{ephemeral, payload}` (no `static`, which tells
    ///   the client IK was accepted; the payload is the encrypted certificate chain), then
    ///   [`ServerHelloOutcome::Resumed`] with the completed handshake and the `ClientPayload`.
    ///   IK responder steps: pre-message `MixHash(S)`, `MixHash(ce)`, `MixKey(DH(S, ce))`,
    ///   `cs = DecryptAndHash(static)`, `MixKey(DH(S, cs))`, `DecryptAndHash(payload)`;
    ///   reply `MixHash(E)`, `MixKey(DH(E, ce))`, `MixKey(DH(E, cs))`,
    ///   `EncryptAndHash(cert chain)`.
    /// - Any other IK hello (the client cached an old static key, or the device is unknown):
    ///   a real `Noise_XXfallback_25519_AESGCM_SHA256` reply: the state restarts from that
    ///   name, `MixHash(prologue)`, `MixHash(ce)` (the pre-message), then exactly the XX
    ///   `ServerHello`; the client answers with a `ClientFinish` carrying its payload again.
    ///
    /// # Errors
    /// As [`handle_client_hello`](Self::handle_client_hello); a failed IK decryption is not
    /// an error (it selects the fallback).
    pub fn handle_client_hello_resumable(
        self,
        message: &[u8],
        accept: impl FnOnce(&[u8; 32]) -> bool,
        out: &mut Vec<u8>,
    ) -> Result<ServerHelloOutcome, NoiseError> {
        let msg = HandshakeMessage::decode(message).map_err(NoiseError::MalformedHandshake)?;
        let hello = msg.client_hello.ok_or(NoiseError::UnexpectedMessage {
            expected: "clientHello",
        })?;
        let ephemeral = hello
            .ephemeral
            .ok_or(NoiseError::MissingField("clientHello.ephemeral"))?;
        let remote_ephemeral = key32("clientHello.ephemeral", &ephemeral)?;

        let st = match (hello.r#static, hello.payload) {
            (Some(static_ct), Some(payload_ct)) => {
                if let Some((st, client_static, payload)) =
                    self.try_ik(&remote_ephemeral, &static_ct, &payload_ct, accept)
                {
                    return self.ik_reply(st, &remote_ephemeral, client_static, payload, out);
                }
                SymmetricState::with_protocol_name(XX_FALLBACK_PROTOCOL_NAME)
            }
            (Some(_), None) | (None, Some(_)) => {
                SymmetricState::with_protocol_name(XX_FALLBACK_PROTOCOL_NAME)
            }
            (None, None) => SymmetricState::new(),
        };
        self.xx_reply(st, &remote_ephemeral, out)
            .map(ServerHelloOutcome::AwaitFinish)
    }

    /// Reads an IK hello: `Some` when both parts decrypt and `accept` knows the client.
    fn try_ik(
        &self,
        remote_ephemeral: &[u8; 32],
        static_ct: &[u8],
        payload_ct: &[u8],
        accept: impl FnOnce(&[u8; 32]) -> bool,
    ) -> Option<(SymmetricState, [u8; 32], Vec<u8>)> {
        let mut st = SymmetricState::with_protocol_name(IK_PROTOCOL_NAME);
        st.mix_hash(self.static_key.public());
        st.mix_hash(remote_ephemeral);
        st.mix_key(self.static_key.dh(remote_ephemeral).as_ref());
        let mut static_plain = Vec::with_capacity(32);
        st.decrypt_and_hash(static_ct, &mut static_plain, "IK client static key")
            .ok()?;
        let client_static = key32("IK client static key", &static_plain).ok()?;
        st.mix_key(self.static_key.dh(&client_static).as_ref());
        let mut payload = Vec::with_capacity(payload_ct.len());
        st.decrypt_and_hash(payload_ct, &mut payload, "IK client payload")
            .ok()?;
        accept(&client_static).then_some((st, client_static, payload))
    }

    /// Writes the IK `ServerHello{ephemeral, payload}` and completes the handshake.
    fn ik_reply(
        self,
        mut st: SymmetricState,
        remote_ephemeral: &[u8; 32],
        client_static: [u8; 32],
        payload: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<ServerHelloOutcome, NoiseError> {
        st.mix_hash(self.ephemeral.public());
        st.mix_key(self.ephemeral.dh(remote_ephemeral).as_ref());
        st.mix_key(self.ephemeral.dh(&client_static).as_ref());
        let mut payload_ct = Vec::with_capacity(self.cert_chain.len() + TAG_LEN);
        st.encrypt_and_hash(&self.cert_chain, &mut payload_ct)?;
        let msg = HandshakeMessage {
            server_hello: Some(ServerHello {
                ephemeral: Some(self.ephemeral.public().to_vec()),
                r#static: None,
                payload: Some(payload_ct),
            }),
            ..HandshakeMessage::default()
        };
        out.extend_from_slice(&msg.encode_to_vec());
        Ok(ServerHelloOutcome::Resumed(
            Handshake {
                state: st,
                role: Role::Responder,
                remote_static: client_static,
            },
            ClientFinished {
                client_static,
                payload,
            },
        ))
    }

    /// Writes the XX (or XXfallback, by `st`'s name) `ServerHello{ephemeral, static, payload}`.
    fn xx_reply(
        self,
        mut st: SymmetricState,
        remote_ephemeral: &[u8; 32],
        out: &mut Vec<u8>,
    ) -> Result<AwaitingClientFinish, NoiseError> {
        st.mix_hash(remote_ephemeral);
        st.mix_hash(self.ephemeral.public());
        st.mix_key(self.ephemeral.dh(remote_ephemeral).as_ref());
        let mut static_ct = Vec::with_capacity(32 + TAG_LEN);
        st.encrypt_and_hash(self.static_key.public(), &mut static_ct)?;
        st.mix_key(self.static_key.dh(remote_ephemeral).as_ref());
        let mut payload_ct = Vec::with_capacity(self.cert_chain.len() + TAG_LEN);
        st.encrypt_and_hash(&self.cert_chain, &mut payload_ct)?;

        let msg = HandshakeMessage {
            server_hello: Some(ServerHello {
                ephemeral: Some(self.ephemeral.public().to_vec()),
                r#static: Some(static_ct),
                payload: Some(payload_ct),
            }),
            ..HandshakeMessage::default()
        };
        out.extend_from_slice(&msg.encode_to_vec());
        Ok(AwaitingClientFinish {
            state: st,
            ephemeral: self.ephemeral,
        })
    }
}

/// What [`ServerHandshake::handle_client_hello_resumable`] did with the client's hello.
#[cfg(feature = "server-side")]
#[derive(Debug)]
pub enum ServerHelloOutcome {
    /// XX or XXfallback: the `ServerHello` is written; a `ClientFinish` must follow.
    AwaitFinish(AwaitingClientFinish),
    /// IK accepted: the handshake is complete (no `ClientFinish` follows); the client's
    /// static key and its `ClientPayload` came in the hello.
    Resumed(Handshake, ClientFinished),
}

/// Server side, step 2: the `ServerHello` is sent; expecting the client's `ClientFinish`.
#[cfg(feature = "server-side")]
#[derive(Debug)]
pub struct AwaitingClientFinish {
    state: SymmetricState,
    ephemeral: KeyPair,
}

/// What the client revealed in its `ClientFinish`.
#[cfg(feature = "server-side")]
pub struct ClientFinished {
    /// The client's static (noise) public key, 32 bytes.
    pub client_static: [u8; 32],
    /// The decrypted payload: a serialized `ClientPayload` (shared/protocol/03 §2).
    pub payload: Vec<u8>,
}

#[cfg(feature = "server-side")]
impl std::fmt::Debug for ClientFinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFinished")
            .field("client_static", &Hex(&self.client_static))
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

#[cfg(feature = "server-side")]
impl AwaitingClientFinish {
    /// The handshake hash so far, 32 bytes.
    #[must_use]
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.state.handshake_hash()
    }

    /// Processes the client's `HandshakeMessage{clientFinish{static, payload}}` (protobuf,
    /// unframed): returns the completed [`Handshake`] and the client's static key and payload.
    ///
    /// # Errors
    /// [`NoiseError::MalformedHandshake`], [`NoiseError::UnexpectedMessage`],
    /// [`NoiseError::MissingField`], [`NoiseError::DecryptFailed`], [`NoiseError::BadLength`]
    /// (decrypted static not 32 bytes).
    pub fn handle_client_finish(
        mut self,
        message: &[u8],
    ) -> Result<(Handshake, ClientFinished), NoiseError> {
        let msg = HandshakeMessage::decode(message).map_err(NoiseError::MalformedHandshake)?;
        let finish = msg.client_finish.ok_or(NoiseError::UnexpectedMessage {
            expected: "clientFinish",
        })?;
        let static_ct = finish
            .r#static
            .ok_or(NoiseError::MissingField("clientFinish.static"))?;
        let payload_ct = finish
            .payload
            .ok_or(NoiseError::MissingField("clientFinish.payload"))?;

        let st = &mut self.state;
        let mut static_plain = Vec::with_capacity(32);
        st.decrypt_and_hash(&static_ct, &mut static_plain, "client static key")?;
        let client_static = key32("client static key", &static_plain)?;
        st.mix_key(self.ephemeral.dh(&client_static).as_ref());
        let mut payload = Vec::with_capacity(payload_ct.len());
        st.decrypt_and_hash(&payload_ct, &mut payload, "client payload")?;

        Ok((
            Handshake {
                state: self.state,
                role: Role::Responder,
                remote_static: client_static,
            },
            ClientFinished {
                client_static,
                payload,
            },
        ))
    }
}

/// A completed handshake, either role. [`finish`](Self::finish) switches to transport mode.
#[derive(Debug)]
pub struct Handshake {
    state: SymmetricState,
    role: Role,
    remote_static: [u8; 32],
}

impl Handshake {
    /// The final handshake hash, 32 bytes (identical on both sides; usable as a channel binding).
    #[must_use]
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.state.handshake_hash()
    }

    /// The peer's static public key, 32 bytes: the server's for the client, the client's
    /// noise key for the server.
    #[must_use]
    pub fn remote_static(&self) -> &[u8; 32] {
        &self.remote_static
    }

    /// Whether we were the initiator (client) or the responder (server).
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Splits into transport ciphers: the client sends with the first key and receives with
    /// the second; the server the other way round (shared/protocol/01 §4.5 step 12, §7).
    #[must_use]
    pub fn finish(self) -> Transport {
        let (to_responder, to_initiator) = self.state.split();
        match self.role {
            Role::Initiator => Transport::new(&to_responder, &to_initiator),
            Role::Responder => Transport::new(&to_initiator, &to_responder),
        }
    }
}

/// `bytes` as a 32-byte key, or [`NoiseError::BadLength`] naming `field`.
fn key32(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], NoiseError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| NoiseError::BadLength {
        field,
        len: bytes.len(),
        expected: 32,
    })
}

/// Compares two keys in constant time.
pub(super) fn keys_equal(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}
