"""Print the datasheet tables for data/corpus: composition, and length and phrasing
compared with the real-text measurement set (aggregates only; no sentence is copied).

Usage: python scripts/corpus_stats.py [--real ../shared/framing/dev_real.jsonl]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_batch import HEADLINE, LABELS, REGISTERS, TOPICS  # noqa: E402

SPLITS = ("train", "dev", "test")
PHRASING = {
    "attribution (said / noted / stressed / added)": r"\b(said|noted|stressed|added|pointed out|declared)\b",
    "leader titles (leader / President / Marshal / General)": r"\b(leader|President|Marshal|General Secretary)\b",
    "names the Kims": r"\bKim (Il Sung|Jong Il|Jong Un)\b",
    "quoted words": r"[\"“]|(?:^|\s)'\w",
    "4+ commas (appositive chains)": None,
    "dates (January ... December)": r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b",
}


def load(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


def words(text: str) -> int:
    return len(text.split())


def length_row(name: str, rows: list[dict]) -> str:
    n = [words(r["text"]) for r in rows]
    return (f"| {name} | {len(rows)} | {statistics.mean(n):.1f} | {statistics.median(n):.0f} | "
            f"{sum(x >= 40 for x in n) / len(n):.1%} | {sum(x >= 55 for x in n) / len(n):.1%} |")


def phrasing_row(name: str, rows: list[dict]) -> str:
    cells = []
    for pattern in PHRASING.values():
        if pattern is None:
            hits = sum(r["text"].count(",") >= 4 for r in rows)
        else:
            hits = sum(bool(re.search(pattern, r["text"])) for r in rows)
        cells.append(f"{hits / len(rows):.0%}")
    return f"| {name} | " + " | ".join(cells) + " |"


def composition(splits: dict[str, list[dict]]) -> None:
    every = [r for rows in splits.values() for r in rows]
    print("| | " + " | ".join(SPLITS) + " | all |\n|---|" + "---|" * (len(SPLITS) + 1))
    def row(name, pred):
        counts = [sum(pred(r) for r in splits[s]) for s in SPLITS]
        print(f"| {name} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    row("sentences", lambda r: True)
    for label in LABELS:
        row(label, lambda r, l=label: l in r["labels"])
    row("none", lambda r: not r["labels"])
    row("hard negatives", lambda r: bool(r.get("hard_negative")))
    row("multi-label", lambda r: len(r["labels"]) > 1)
    for reg in REGISTERS:
        row(f"register: {reg}", lambda r, g=reg: r["register"] == g)
    for topic in TOPICS:
        row(f"topic: {topic}", lambda r, t=topic: r["topic"] == t)
    print()
    pos = [(l, r["text"]) for r in every for l in r["labels"]]
    free = sum(not HEADLINE[l].search(t) for l, t in pos)
    print(f"Positives without the frame's headline word: {free}/{len(pos)} = {free / len(pos):.1%}")
    kinds = Counter(r["hard_negative"] for r in every if r.get("hard_negative"))
    print("Hard-negative kinds: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    print()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--real", default="../shared/framing/dev_real.jsonl")
    args = parser.parse_args()
    splits = {s: load(Path(args.corpus) / f"{s}.jsonl") for s in SPLITS}
    every = [r for rows in splits.values() for r in rows]
    composition(splits)
    sets = [("corpus, all", every), ("corpus, kcna register", [r for r in every if r["register"] == "kcna"])]
    if Path(args.real).is_file():
        sets.append(("dev_real (real KCNA)", load(Path(args.real))))
    print("| set | sentences | mean words | median | >= 40 words | >= 55 words |\n|---|---|---|---|---|---|")
    for name, rows in sets:
        print(length_row(name, rows))
    print("\n| set | " + " | ".join(PHRASING) + " |\n|---|" + "---|" * len(PHRASING))
    for name, rows in sets:
        print(phrasing_row(name, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
