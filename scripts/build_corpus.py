"""Assemble the hand-written batch drafts into data/corpus/{train,dev,test}.jsonl.

Splits go by batch, so one writer's phrasing never straddles train and test.
The dev and test batches are fixed below: one per non-KCNA register, two of the
first eighteen KCNA batches each (from different writers' sets), and one each of
the two leader-ritual top-up batches, so both splits also measure that register.

Usage: python scripts/build_corpus.py [BATCH_DIR]
It copies records; it never writes or edits a sentence.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_batch import read  # noqa: E402

DEV = {"kcna-05", "kcna-16", "kcna-25", "ru-05", "cn-05", "ir-05", "os-05", "wr-05"}
TEST = {"kcna-11", "kcna-18", "kcna-26", "ru-06", "cn-06", "ir-06", "os-06", "wr-06"}
FIELDS = ("text", "labels", "register", "topic", "batch", "hard_negative")


def main(batch_dir: str = "data/corpus/batches", out_dir: str = "data/corpus") -> int:
    paths = sorted(Path(batch_dir).glob("*.jsonl"))
    records, errors = read(paths)
    if errors:
        print("\n".join(errors[:20]))
        return 1
    splits = {"train": [], "dev": [], "test": []}
    for rec in records:
        split = "dev" if rec["batch"] in DEV else "test" if rec["batch"] in TEST else "train"
        splits[split].append({k: rec[k] for k in FIELDS if k in rec})
    for name, rows in splits.items():
        path = Path(out_dir) / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{name}: {len(rows)} sentences -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
