//! Fuzz target: the Noise XX handshake messages and transport frames, both roles.
//!
//! A real handshake with fixed keys (server chain from `build_cert_chain`) is run once
//! (`OnceLock`); its messages serve as the "real" inputs. Input: `mode (1) || rest`:
//!
//! | mode | what runs |
//! | --- | --- |
//! | 0 | server `handle_client_hello(rest)`, then `handle_client_finish(real finish)` |
//! | 1 | as 0 with a mutated real ClientHello |
//! | 2 | server on the real ClientHello, then `handle_client_finish(rest)` |
//! | 3 | as 2 with a mutated real ClientFinish |
//! | 4 | client `handle_server_hello(rest)` |
//! | 5 | as 4 with a mutated real ServerHello |
//! | 6 | `verify_cert_chain` on a mutated real chain (or `rest` as a chain) |
//! | 7 | transport: client encrypts a plaintext from the input, the frame is mutated, the server decrypts it |
//! | 8 | transport: the server decrypts `rest`; `decrypt` and `decrypt_in_place` agree |
//!
//! Invariants: no panic; whatever succeeds carries exactly the real values (client static
//! key and payload, server static key, leaf key, plaintext): a change anywhere that still
//! authenticates is a bug. A frame that differs from the real one never decrypts.
//!
//! Run: see fuzz/README.md.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::sync::{Mutex, OnceLock, PoisonError};

use common::{FuzzRng, Input, mutate};
use libfuzzer_sys::fuzz_target;
use wa_engine::noise::{
    ClientHandshake, KeyPair, ServerHandshake, Transport, TrustRoot, build_cert_chain,
    verify_cert_chain,
};

const ROOT_SERIAL: u32 = 7;
const NOT_BEFORE: u64 = 1_700_000_000;
const NOT_AFTER: u64 = 1_900_000_000;
const NOW: u64 = 1_800_000_000;
const CLIENT_PAYLOAD: &[u8] = b"\x18\x01\x20\x02 a ClientPayload stand-in";

fn key(byte: u8) -> KeyPair {
    KeyPair::from_private_bytes([byte; 32])
}

fn server_static() -> KeyPair {
    key(0x51)
}
fn server_ephemeral() -> KeyPair {
    key(0x52)
}
fn client_static() -> KeyPair {
    key(0x61)
}
fn client_ephemeral() -> KeyPair {
    key(0x62)
}
fn trust_root() -> TrustRoot {
    TrustRoot::new(*key(0x71).public(), ROOT_SERIAL)
}

/// One real handshake's messages and the transports it produced.
struct Real {
    chain: Vec<u8>,
    client_hello: Vec<u8>,
    server_hello: Vec<u8>,
    client_finish: Vec<u8>,
    /// (client, server) transports, shared by all runs (their counters move in step).
    transports: Mutex<(Transport, Transport)>,
}

fn real() -> &'static Real {
    static REAL: OnceLock<Real> = OnceLock::new();
    REAL.get_or_init(|| {
        let mut rng = FuzzRng::new(1);
        let chain = build_cert_chain(
            &key(0x71),
            ROOT_SERIAL,
            &key(0x72),
            server_static().public(),
            NOT_BEFORE,
            NOT_AFTER,
            &mut rng,
        );
        let client = ClientHandshake::new(client_static(), client_ephemeral(), trust_root());
        let mut client_hello = Vec::new();
        client.write_client_hello(&mut client_hello);
        let server = ServerHandshake::new(server_static(), server_ephemeral(), chain.clone());
        let mut server_hello = Vec::new();
        let awaiting = server
            .handle_client_hello(&client_hello, &mut server_hello)
            .expect("real hello");
        let verified = client
            .handle_server_hello(NOW, &server_hello)
            .expect("real server hello");
        let mut client_finish = Vec::new();
        let client_done = verified
            .write_client_finish(CLIENT_PAYLOAD, &mut client_finish)
            .expect("finish");
        let (server_done, _) = awaiting
            .handle_client_finish(&client_finish)
            .expect("real finish");
        Real {
            chain,
            client_hello,
            server_hello,
            client_finish,
            transports: Mutex::new((client_done.finish(), server_done.finish())),
        }
    })
}

fn server() -> ServerHandshake {
    ServerHandshake::new(server_static(), server_ephemeral(), real().chain.clone())
}

/// Server side: hello then finish; whatever completes must be the real client.
fn responder(hello: &[u8], finish: &[u8]) {
    let real = real();
    let mut out = Vec::new();
    let Ok(awaiting) = server().handle_client_hello(hello, &mut out) else {
        return;
    };
    if let Ok((hs, finished)) = awaiting.handle_client_finish(finish) {
        assert_eq!(
            &finished.client_static,
            client_static().public(),
            "forged client static"
        );
        assert_eq!(finished.payload, CLIENT_PAYLOAD, "forged client payload");
        assert_eq!(hs.remote_static(), client_static().public());
        assert_eq!(
            out, real.server_hello,
            "a different ServerHello led to the real finish"
        );
    }
}

/// Client side: whatever verifies must be the real server.
fn initiator(server_hello: &[u8]) {
    let client = ClientHandshake::new(client_static(), client_ephemeral(), trust_root());
    if let Ok(verified) = client.handle_server_hello(NOW, server_hello) {
        assert_eq!(
            verified.server_static(),
            server_static().public(),
            "forged server static"
        );
        let mut finish = Vec::new();
        let _ = verified.write_client_finish(CLIENT_PAYLOAD, &mut finish);
    }
}

fuzz_target!(|data: &[u8]| {
    let real = real();
    let mut input = Input::new(data);
    match input.byte() % 9 {
        0 => responder(input.rest(), &real.client_finish),
        1 => {
            let hello = mutate(&real.client_hello, &mut input);
            responder(&hello, &real.client_finish);
        }
        2 => responder(&real.client_hello, input.rest()),
        3 => {
            let finish = mutate(&real.client_finish, &mut input);
            responder(&real.client_hello, &finish);
        }
        4 => initiator(input.rest()),
        5 => {
            let hello = mutate(&real.server_hello, &mut input);
            initiator(&hello);
        }
        6 => {
            let raw = input.byte() & 1 == 1;
            let chain = if raw {
                input.rest().to_vec()
            } else {
                mutate(&real.chain, &mut input)
            };
            for now in [NOW, NOT_BEFORE, NOT_AFTER, 0, u64::MAX] {
                if let Ok(v) =
                    verify_cert_chain(&chain, &trust_root(), server_static().public(), now)
                {
                    assert_eq!(&v.leaf.key, server_static().public(), "forged leaf");
                    assert!(
                        (NOT_BEFORE..=NOT_AFTER).contains(&now),
                        "expired chain accepted"
                    );
                }
            }
        }
        7 => {
            let len = usize::from(input.byte());
            let plaintext = input.take(len).to_vec();
            let mut guard = real
                .transports
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (client, server) = &mut *guard;
            let mut frame = Vec::new();
            client.encrypt(&plaintext, &mut frame).expect("encrypt");
            let sent = mutate(&frame, &mut input);
            let mut out = vec![0xAA];
            match server.decrypt(&sent, &mut out) {
                Ok(()) => {
                    assert_eq!(sent, frame, "a modified frame decrypted");
                    assert_eq!(&out[1..], &plaintext[..], "wrong plaintext");
                }
                Err(_) => {
                    assert_ne!(sent, frame, "the real frame failed");
                    assert_eq!(out, [0xAA], "output touched on failure");
                }
            }
            assert_eq!(client.send_counter(), server.recv_counter());
        }
        _ => {
            let frame = input.rest();
            // Fresh transports from fixed keys: `decrypt` and `decrypt_in_place` agree.
            let mut a = Transport::new(&[1; 32], &[2; 32]);
            let mut b = Transport::new(&[1; 32], &[2; 32]);
            let mut out = Vec::new();
            let mut buf = frame.to_vec();
            match (a.decrypt(frame, &mut out), b.decrypt_in_place(&mut buf)) {
                (Ok(()), Ok(n)) => assert_eq!(out, buf[..n]),
                (Err(_), Err(_)) => assert!(out.is_empty()),
                (x, y) => panic!("decrypt {x:?} vs in place {y:?}"),
            }
            // The shared server transport: garbage never decrypts; keep counters in step.
            let mut guard = real
                .transports
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (client, server) = &mut *guard;
            let mut dummy = Vec::new();
            client.encrypt(b"", &mut dummy).expect("encrypt");
            let mut out = Vec::new();
            if server.decrypt(frame, &mut out).is_ok() {
                assert_eq!(frame, &dummy[..], "garbage decrypted");
            }
        }
    }
});
