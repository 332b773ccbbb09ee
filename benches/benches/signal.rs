//! Signal layer costs (issue 4), through the store-level API the engine uses (each call
//! reads, computes and commits its record to a `MemoryStore`):
//! - `encrypt_msg` / `decrypt_msg`: one message on an established session (`msg`, ~40-byte
//!   padded plaintext);
//! - `x3dh_initiator`: processing a prekey bundle (signature check, X3DH, first chain) and
//!   `x3dh_responder`: decrypting the first `pkmsg` (X3DH + ratchet step + decrypt);
//! - `group_encrypt` / `group_decrypt`: one sender-key message.
//!
//! Run: `cargo bench -p wa-benches --bench signal`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use wa_engine::signal::{
    self, KeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord, TrustPolicy,
};
use wa_engine::store::{Credentials, ProtocolAddress, SenderKeyName, StoreBatch};
use wa_engine::{MemoryStore, Store};

/// A Message{conversation: "hello, this is a benchmark message"} padded: 40 bytes.
const PLAINTEXT: &[u8] = b"\x0a\x22hello, this is a benchmark message\x04\x04\x04\x04";

struct Party {
    store: MemoryStore,
    identity: KeyPair,
    spk: SignedPreKeyRecord,
    registration_id: u32,
}

impl Party {
    fn new(rng: &mut StdRng, registration_id: u32) -> Self {
        let identity = KeyPair::generate(rng);
        let spk = SignedPreKeyRecord::generate(1, &identity.private, rng);
        let store = MemoryStore::new();
        let creds = Credentials::new(
            wa_engine::store::KeyPair::new([1; 32], [2; 32]),
            (&identity).into(),
            registration_id,
            (&spk).into(),
            [3; 32],
        );
        let mut batch = StoreBatch::new();
        batch.put_credentials(&creds);
        store.apply(batch).expect("store");
        Self {
            store,
            identity,
            spk,
            registration_id,
        }
    }

    fn bundle(&self, prekey: Option<&PreKeyRecord>) -> PreKeyBundle {
        PreKeyBundle {
            registration_id: self.registration_id,
            identity_key: self.identity.public,
            signed_prekey_id: self.spk.id,
            signed_prekey: self.spk.key_pair.public,
            signed_prekey_signature: self.spk.signature,
            prekey: prekey.map(|p| (p.id, p.key_pair.public)),
        }
    }
}

fn bench_signal(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(4);
    let alice = Party::new(&mut rng, 1111);
    let bob = Party::new(&mut rng, 2222);
    let a_addr = ProtocolAddress::new("15550001111", 0);
    let b_addr = ProtocolAddress::new("15550002222", 0);

    // Establish: Alice -> Bob pkmsg, Bob -> Alice msg, Alice -> Bob msg.
    signal::process_prekey_bundle(
        &alice.store,
        &b_addr,
        &bob.bundle(None),
        TrustPolicy::AutoTrust,
        &mut rng,
    )
    .expect("bundle");
    let (_, pkmsg) = signal::encrypt(&alice.store, &b_addr, PLAINTEXT).expect("encrypt");
    signal::decrypt_pkmsg(
        &bob.store,
        &a_addr,
        &pkmsg,
        TrustPolicy::AutoTrust,
        &mut rng,
    )
    .expect("pkmsg");
    let (_, reply) = signal::encrypt(&bob.store, &a_addr, PLAINTEXT).expect("encrypt");
    signal::decrypt_msg(&alice.store, &b_addr, &reply, &mut rng).expect("reply");

    let mut group = c.benchmark_group("signal");
    group.bench_function("encrypt_msg", |b| {
        b.iter(|| signal::encrypt(&alice.store, &b_addr, black_box(PLAINTEXT)).expect("encrypt"));
    });
    // The other direction (Bob -> Alice), so that counters stay in step: each iteration
    // decrypts the message encrypted just before it.
    let mut rng2 = StdRng::seed_from_u64(5);
    group.bench_function("decrypt_msg", |b| {
        b.iter_batched(
            || {
                signal::encrypt(&bob.store, &a_addr, PLAINTEXT)
                    .expect("encrypt")
                    .1
            },
            |ct| {
                signal::decrypt_msg(&alice.store, &b_addr, black_box(&ct), &mut rng2)
                    .expect("decrypt")
            },
            BatchSize::SmallInput,
        );
    });

    // X3DH, initiator: a fresh bundle with a one-time prekey each time.
    let carol = Party::new(&mut rng, 3333);
    let c_addr = ProtocolAddress::new("15550003333", 0);
    let opk = PreKeyRecord::generate(9, &mut rng);
    let carol_bundle = carol.bundle(Some(&opk));
    group.bench_function("x3dh_initiator", |b| {
        b.iter(|| {
            signal::process_prekey_bundle(
                &alice.store,
                &c_addr,
                black_box(&carol_bundle),
                TrustPolicy::AutoTrust,
                &mut rng,
            )
            .expect("bundle")
        });
    });
    // X3DH, responder: the first pkmsg of a new session (no one-time prekey, so the same
    // store can answer every iteration).
    let dave = Party::new(&mut rng, 4444);
    let d_addr = ProtocolAddress::new("15550004444", 0);
    group.bench_function("x3dh_responder_first_pkmsg", |b| {
        b.iter_batched(
            || {
                signal::process_prekey_bundle(
                    &dave.store,
                    &b_addr,
                    &bob.bundle(None),
                    TrustPolicy::AutoTrust,
                    &mut rng,
                )
                .expect("bundle");
                signal::encrypt(&dave.store, &b_addr, PLAINTEXT)
                    .expect("encrypt")
                    .1
            },
            |ct| {
                signal::decrypt_pkmsg(
                    &bob.store,
                    &d_addr,
                    black_box(&ct),
                    TrustPolicy::AutoTrust,
                    &mut rng2,
                )
                .expect("pkmsg")
            },
            BatchSize::SmallInput,
        );
    });

    // Sender keys.
    let name = SenderKeyName::new("120363000000000001@g.us", a_addr.clone());
    let skdm = signal::sender_key_distribution(&alice.store, &name, &mut rng).expect("skdm");
    signal::process_sender_key_distribution(&bob.store, &name, skdm.serialized()).expect("process");
    group.bench_function("group_encrypt", |b| {
        b.iter(|| {
            signal::encrypt_group(&alice.store, &name, black_box(PLAINTEXT), &mut rng)
                .expect("encrypt")
        });
    });
    // A second group whose sender key only advances in the setup, one message at a time.
    let name2 = SenderKeyName::new("120363000000000002@g.us", a_addr.clone());
    let skdm2 = signal::sender_key_distribution(&alice.store, &name2, &mut rng).expect("skdm");
    signal::process_sender_key_distribution(&bob.store, &name2, skdm2.serialized())
        .expect("process");
    group.bench_function("group_decrypt", |b| {
        b.iter_batched(
            || signal::encrypt_group(&alice.store, &name2, PLAINTEXT, &mut rng).expect("encrypt"),
            |ct| signal::decrypt_group(&bob.store, &name2, black_box(&ct)).expect("decrypt"),
            BatchSize::SmallInput,
        );
    });
    group.finish();

    // The primitives X3DH is made of, for scale (4-5 agreements + 2 key generations + one
    // signature verification per setup).
    let mut prim = c.benchmark_group("curve25519");
    let other = KeyPair::generate(&mut rng);
    prim.bench_function("x25519_agree", |b| {
        b.iter(|| {
            signal::kdf::root_step(&[7; 32], black_box(&alice.identity.private), &other.public)
        });
    });
    prim.bench_function("keypair_generate", |b| {
        b.iter(|| KeyPair::generate(&mut rng))
    });
    let msg = bob.spk.key_pair.public.serialize();
    prim.bench_function("xeddsa_verify", |b| {
        b.iter(|| {
            bob.identity
                .public
                .verify_signature(black_box(&msg), &bob.spk.signature)
        });
    });
    prim.finish();
}

criterion_group!(benches, bench_signal);
criterion_main!(benches);
