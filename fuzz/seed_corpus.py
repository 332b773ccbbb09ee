#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ for every fuzz target from ../shared/vectors.

Usage (from the repository root or fuzz/): python3 fuzz/seed_corpus.py
Reads ../shared/vectors/ relative to the repository root; the corpus directories are
gitignored. Each target's input layout (mode bytes, control bytes) is described at the
top of its fuzz_targets/<target>.rs; the seeds below follow those layouts.
"""
import hashlib
import json
import pathlib
import struct

fuzz = pathlib.Path(__file__).resolve().parent
vectors = fuzz.parent.parent / "shared" / "vectors"
corpus = fuzz / "corpus"
SMALL = 64 * 1024  # keep the corpus fast: skip the megabyte blobs
counts = {}


def load(rel):
    path = vectors / rel
    if not path.exists():
        raise SystemExit(f"missing test vector {path}: shared/vectors must sit beside the repository")
    return json.loads(path.read_text(encoding="utf-8"))


def seed(target, data, name=None):
    if len(data) > SMALL:
        return
    out = corpus / target
    out.mkdir(parents=True, exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()
    (out / name).write_bytes(data)
    counts[target] = counts.get(target, 0) + 1


def h(s):
    return bytes.fromhex(s)


# --- binary_decode and stanza_parse: every encoded node we have --------------------------
frames = []
for name in ("binary_nodes.jsonl", "decode_only.jsonl"):
    for line in (vectors / "binary" / name).read_text(encoding="utf-8").split("\n"):
        if line.strip():
            v = json.loads(line)
            frames.append((v["id"], h(v["hex"])))
stanzas = load("stanzas/stanzas.json")
for s in stanzas["stanzas"]:
    frames.append(("stanza-" + s["id"], h(s["hex"])))
sessions = load("signal/sessions.json")
for sc in sessions["scenarios"]:
    for i, b in enumerate(sc["bundles"]):
        frames.append((f"bundle-{sc['name']}-{i}", h(b["iq_result_hex"])))
sender_keys = load("sender_keys/sender_keys.json")
for sc in sender_keys["scenarios"]:
    pe = sc["pairwise_example"]
    for k, v in pe.items():
        if isinstance(v, dict) and isinstance(v.get("hex"), str):
            frames.append((f"pairwise-{k}", h(v["hex"])))
pair_success = load("pairing/pair_success.json")
frames.append(("pair-success", h(pair_success["pair_success"]["hex"])))
for ident, frame in frames:
    seed("binary_decode", frame, ident)
    seed("stanza_parse", frame, ident)

# stanza_parse also reads the input as a wa::Message, a padded plaintext and as text.
for sc in sessions["scenarios"]:
    for m in sc["messages"]:
        seed("stanza_parse", h(m["plaintext"]))
for sc in sender_keys["scenarios"]:
    for m in sc["messages"]:
        seed("stanza_parse", h(m["plaintext"]))
        if m.get("skdm_pairwise_plaintext"):
            seed("stanza_parse", h(m["skdm_pairwise_plaintext"]))
qr = load("pairing/qr.json")
for v in qr["helper_7_0_0_rc14"]:
    seed("stanza_parse", v["qr"].encode())
seed("stanza_parse", qr["legacy_form_6_7_24"].encode())
code = load("pairing/pairing_code.json")
for v in code["crockford"]:
    seed("stanza_parse", v["code"].encode())

# --- frame_split: flags || n || n chunk sizes || stream ---------------------------------
noise = load("noise/baileys_handshake.json")
ref = noise["reference"]
c2s = h(ref["frames"]["c2s_1_client_hello"]) + h(ref["frames"]["c2s_2_client_finish"])
c2s += b"".join(h(f["frame_hex"]) for f in ref["transport"]["c2s"])
s2c = h(ref["frames"]["s2c_1_server_hello"]) + b"".join(h(f["frame_hex"]) for f in ref["transport"]["s2c"])
routed = h(noise["with_routing_info"]["c2s_1_client_hello"]) + h(noise["with_routing_info"]["c2s_2_client_finish"])
for sizes in (b"", b"\x00", b"\x02\x06\xff", b"\x10\x03"):
    ctl = bytes([len(sizes)]) + sizes
    seed("frame_split", bytes([1]) + ctl + c2s)  # server side
    seed("frame_split", bytes([1]) + ctl + routed)
    seed("frame_split", bytes([0]) + ctl + s2c)  # client side
    seed("frame_split", bytes([2 | (40 << 2)]) + ctl + s2c)  # client side, 41-byte limit

# --- noise_responder: mode || ... (see the target) --------------------------------------
parts = ref["parts"]
live = load("noise/whatsmeow_live_capture.json")
seed("noise_responder", bytes([0]) + h(parts["client_hello_proto"]))
seed("noise_responder", bytes([2]) + h(parts["client_finish_proto"]))
seed("noise_responder", bytes([4]) + h(parts["server_hello_proto"]))
seed("noise_responder", bytes([6, 1]) + h(parts["cert_chain_plain"]))
seed("noise_responder", bytes([6, 1]) + h(live["cert_chain"]))
for mode in (1, 3, 5, 6):
    seed("noise_responder", bytes([mode, 0]))  # the real message, unmodified
    seed("noise_responder", bytes([mode, 1, 0, 5, 0, 1]))  # one flipped byte
seed("noise_responder", bytes([7, 4]) + b"node" + bytes([0]))
seed("noise_responder", bytes([7, 4]) + b"node" + bytes([1, 0, 0, 0, 1]))
for f in ref["transport"]["c2s"] + ref["transport"]["s2c"]:
    seed("noise_responder", bytes([8]) + h(f["frame_hex"])[3:])

# --- signal_decrypt: mode || ... (see the target) ---------------------------------------
for sc in sessions["scenarios"]:
    for m in sc["messages"]:
        mode = 1 if m["type"] == "pkmsg" else 0
        seed("signal_decrypt", bytes([mode]) + h(m["ciphertext"]))
for sc in sender_keys["scenarios"]:
    for m in sc["messages"]:
        seed("signal_decrypt", bytes([2]) + h(m["skmsg"]))
        if m.get("skdm_returned"):
            seed("signal_decrypt", bytes([3]) + h(m["skdm_returned"]))
for mode in (4, 5, 6):
    for which in range(3):
        seed("signal_decrypt", bytes([mode, which, 0]))  # a real message, unmodified
        seed("signal_decrypt", bytes([mode, which, 1, 0, 9, 0, 1]))  # one flipped byte

# --- media_decrypt: mode || ... (see the target) ----------------------------------------
TYPES = ["image", "video", "audio", "document", "sticker"]
for name in TYPES:
    media = load(f"media/{name}.json")
    for c in media["cases"]:
        if c["plaintext_length"] > 4096:
            continue
        t = TYPES.index(c["media_type"]) if c["media_type"] in TYPES else 0
        key = h(c["media_key"])
        enc = h(c["enc_file"])
        expected = h(c["file_sha256"]) + h(c["file_enc_sha256"]) + struct.pack("<Q", c["file_length"])
        for flags, exp in ((0, b""), (7, expected)):
            for sizes in (b"", b"\x00\x0f\x40"):
                seed("media_decrypt", bytes([0, t, flags]) + key + exp + bytes([len(sizes)]) + sizes + enc)
for flags in (0, 7):
    seed("media_decrypt", bytes([1, 3, flags, 20]) + b"twenty bytes of text" + bytes([0, 0]))
    seed("media_decrypt", bytes([1, 0, flags, 33]) + bytes(range(33)) + bytes([0, 1, 0, 7, 0, 1]))
seed("media_decrypt", bytes([2]) + b'{"url":"https://mmg.whatsapp.net/x","direct_path":"/v/t62/x"}')

# --- appstate_patch: mode || ... (see the target) ---------------------------------------
app_state = load("app_state/app_state.json")
for m in app_state["mutations"]:
    seed("appstate_patch", bytes([0]) + h(m["single_patch"]["patch_server"]))
for c in app_state["collections"]:
    seed("appstate_patch", bytes([2]) + h(c["snapshot"]["snapshot_proto"]))
    seed("appstate_patch", bytes([3]) + h(c["iq_response_hex"])[1:])  # bare node, no flags byte
    for p in c["patches"]:
        seed("appstate_patch", bytes([0]) + h(p["patch_server"]))
    for b in c["bad_patches"]:
        seed("appstate_patch", bytes([0]) + h(b["patch_server"]))
seed("appstate_patch", bytes([1, 3, 0, 1, 3, 2, 4, 0x40, 0]))
seed("appstate_patch", bytes([1, 2, 2, 9, 2, 9, 1, 0, 0x10, 0, 0x55]))

# --- history_sync: mode || ... (see the target) -----------------------------------------
history = load("history_sync/history_sync.json")
for c in history["cases"]:
    proto = h(c["history_sync_proto"])
    seed("history_sync", bytes([0, 1]) + proto)
    seed("history_sync", bytes([0, 0]) + proto)
    seed("history_sync", bytes([1]) + struct.pack("<H", 4096) + h(c["compressed"]))
    seed("history_sync", bytes([2]) + struct.pack("<H", len(proto)) + proto + bytes([2, 7, 64, 0]))
    seed("history_sync", bytes([2]) + struct.pack("<H", len(proto)) + proto + bytes([1, 15, 1, 4, 0, 9, 0xff]))

for target, n in sorted(counts.items()):
    print(f"wrote {n} seeds to {corpus / target}")
