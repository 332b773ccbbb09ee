#!/usr/bin/env python3
"""Seeds fuzz/corpus/binary_decode/ with every frame of the binary-node vectors.

Usage (from the repository root or fuzz/): python3 fuzz/seed_corpus.py
Reads ../shared/vectors/binary/*.jsonl relative to the repository root; the
corpus directory is gitignored.
"""
import json
import pathlib

fuzz = pathlib.Path(__file__).resolve().parent
vectors = fuzz.parent.parent / "shared" / "vectors" / "binary"
out = fuzz / "corpus" / "binary_decode"
out.mkdir(parents=True, exist_ok=True)
count = 0
for name in ("binary_nodes.jsonl", "decode_only.jsonl"):
    for line in (vectors / name).read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        v = json.loads(line)
        frame = bytes.fromhex(v["hex"])
        if len(frame) > 64 * 1024:  # keep the corpus fast: skip the megabyte blobs
            continue
        (out / v["id"]).write_bytes(frame)
        count += 1
print(f"wrote {count} seeds to {out}")
