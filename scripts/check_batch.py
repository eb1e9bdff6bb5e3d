"""Check hand-written corpus batch files against the corpus spec and print their statistics.

Usage: python scripts/check_batch.py data/corpus/batches/*.jsonl

It only reads and counts; it never writes or edits a sentence.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from dedup import near_duplicate_pairs  # scripts/ is on sys.path when a script runs

LABELS = ("martyrdom", "heroism", "triumph", "loss")
REGISTERS = ("kcna", "russia", "china", "iran", "other_state", "western")
TOPICS = ("war", "economy", "agriculture", "science", "sport", "disaster",
          "diplomacy", "memorial", "leader_visit")
HARD_NEGATIVE_KINDS = ("other_sense", "flat_war", "passing_death", "call_or_plan",
                       "ritual_praise", "protocol", "denied_victims")
FIELDS = {"text", "labels", "register", "topic", "batch"}
OPTIONAL = {"hard_negative"}
# The headline word of each frame: a positive "without the keyword" has none of these.
HEADLINE = {
    "martyrdom": re.compile(r"\bmartyr|\bsacrific", re.I),
    "heroism": re.compile(r"\bhero", re.I),
    "triumph": re.compile(r"\bvictor|\btriumph|\bsuccess", re.I),
    "loss": re.compile(r"\bloss\b|\blosses\b|\bgrie[fv]|\bkilled\b", re.I),
}


def check_record(rec: dict, where: str) -> list[str]:
    errors = []
    missing = FIELDS - rec.keys()
    extra = rec.keys() - FIELDS - OPTIONAL
    if missing:
        errors.append(f"{where}: missing fields {sorted(missing)}")
    if extra:
        errors.append(f"{where}: unknown fields {sorted(extra)}")
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        errors.append(f"{where}: text must be a non-empty string")
    labels = rec.get("labels")
    if not isinstance(labels, list) or any(l not in LABELS for l in labels) or len(set(labels)) != len(labels or []):
        errors.append(f"{where}: labels must be a list of distinct items from {LABELS}, got {labels!r}")
    if rec.get("register") not in REGISTERS:
        errors.append(f"{where}: register must be one of {REGISTERS}, got {rec.get('register')!r}")
    if rec.get("topic") not in TOPICS:
        errors.append(f"{where}: topic must be one of {TOPICS}, got {rec.get('topic')!r}")
    hard = rec.get("hard_negative")
    if hard is not None:
        if hard not in HARD_NEGATIVE_KINDS:
            errors.append(f"{where}: hard_negative must be one of {HARD_NEGATIVE_KINDS}, got {hard!r}")
        if labels:
            errors.append(f"{where}: hard_negative is only for sentences with no labels")
    return errors


def read(paths: list[Path]) -> tuple[list[dict], list[str]]:
    records, errors = [], []
    for path in paths:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: not valid JSON ({exc})")
                continue
            errors.extend(check_record(rec, where))
            records.append(rec)
    return records, errors


def summarise(records: list[dict]) -> None:
    n = len(records)
    words = [len(r["text"].split()) for r in records]
    per_label = Counter(l for r in records for l in r["labels"])
    none = sum(not r["labels"] for r in records)
    hard = sum(bool(r.get("hard_negative")) for r in records)
    multi = sum(len(r["labels"]) > 1 for r in records)
    print(f"sentences {n}  none {none}  hard negatives {hard}  multi-label {multi}")
    print("positives per frame: " + ", ".join(f"{l} {per_label[l]}" for l in LABELS))
    print(f"words: mean {sum(words) / n:.1f}, >=40: {sum(w >= 40 for w in words) / n:.1%}, "
          f">=55: {sum(w >= 55 for w in words) / n:.1%}")
    pos = [(l, r["text"]) for r in records for l in r["labels"]]
    free = sum(not HEADLINE[l].search(t) for l, t in pos)
    print(f"positives without the frame's headline word: {free / max(len(pos), 1):.1%}")
    for label in LABELS:
        texts = [r["text"] for r in records if label in r["labels"]]
        k = sum(not HEADLINE[label].search(t) for t in texts)
        print(f"  {label}: {k}/{len(texts)} without keyword")
    print("registers:", dict(Counter(r["register"] for r in records)))
    print("topics:", dict(Counter(r["topic"] for r in records)))
    dupes = [t for t, c in Counter(r["text"].strip().lower() for r in records).items() if c > 1]
    if dupes:
        print(f"DUPLICATES: {len(dupes)}, e.g. {dupes[0][:80]!r}")
    near = near_duplicate_pairs([r["text"] for r in records])
    if near:
        i, j, score = near[0]
        print(f"NEAR-DUPLICATES (5-gram Jaccard >= 0.8): {len(near)} pair(s), e.g. {records[i]['text'][:60]!r} "
              f"~ {records[j]['text'][:60]!r} ({score:.2f})")


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv]
    records, errors = read(paths)
    for e in errors:
        print("ERROR", e)
    if records:
        summarise(records)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
