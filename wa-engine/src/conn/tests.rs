//! Unit tests of the connection's pure helpers; the state machine is exercised end to end in
//! `tests/conn_flow.rs` against a hand-played server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::signal::xeddsa;
use crate::store::MemoryStore;

#[test]
fn signal_address_names_follow_whatsmeow() {
    let lid: Jid = "236395184570386:77@lid".parse().unwrap();
    let pn: Jid = "559984726662:77@s.whatsapp.net".parse().unwrap();
    assert_eq!(signal_address_name(&lid), "236395184570386_1");
    assert_eq!(signal_address_name(&pn), "559984726662");
}

#[test]
fn generated_credentials_sign_the_signed_prekey_and_are_unpaired() {
    let mut rng = StdRng::from_seed([3; 32]);
    let c = generate_credentials(&mut rng);
    let mut msg = vec![5];
    msg.extend_from_slice(&c.signed_prekey.key_pair.public);
    assert!(xeddsa::verify(
        &c.identity_key.public,
        &msg,
        &c.signed_prekey.signature
    ));
    assert_eq!(xeddsa::public_key(&c.noise_key.private), c.noise_key.public);
    assert!((1..=0x3fff).contains(&c.registration_id));
    assert_eq!(c.signed_prekey.id, 1);
    assert!(!c.is_paired());
}

#[test]
fn new_connection_stores_credentials_and_queues_the_header_with_client_hello() {
    let store = Arc::new(MemoryStore::new());
    let mut conn = Connection::new(Config::default(), store.clone(), Instant::now());
    assert!(
        store.credentials().unwrap().is_some(),
        "credentials persisted before connecting"
    );
    let first = conn.poll_transmit().expect("client hello");
    assert_eq!(&first[..4], b"WA\x06\x03");
    assert!(conn.poll_transmit().is_none());
    assert!(conn.poll_event().is_none());
    assert!(conn.poll_timeout().is_some(), "connect timeout armed");
    assert!(!conn.is_closed());
}

#[test]
fn handshake_times_out_as_handshake_failed() {
    let now = Instant::now();
    let mut conn = Connection::new(Config::default(), Arc::new(MemoryStore::new()), now);
    while conn.poll_transmit().is_some() {}
    let at = conn.poll_timeout().unwrap();
    assert_eq!(at - now, Duration::from_secs(20));
    conn.handle_timeout(at);
    assert_eq!(conn.close_reason(), Some(&CloseReason::HandshakeFailed));
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn requests_before_login_are_refused() {
    let mut conn = Connection::new(
        Config::default(),
        Arc::new(MemoryStore::new()),
        Instant::now(),
    );
    let now = Instant::now();
    assert_eq!(
        conn.send(now, Request::Iq(Node::new("iq"))),
        Err(SendError::NotConnected)
    );
    assert_eq!(
        conn.send(
            now,
            Request::PairingCode {
                phone: "15551234567".into()
            }
        ),
        Err(SendError::NotConnected)
    );
    assert!(conn.send(now, Request::Close).is_ok());
    assert_eq!(conn.close_reason(), Some(&CloseReason::LocalClose));
}
