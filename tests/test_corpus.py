"""The shipped corpus meets its specification (data/README.md)."""
import json
import sys
from collections import Counter
from itertools import combinations

import pytest

from train.config import DataConfig
from train.data import load_split, normalise

from conftest import ROOT, SHARED

sys.path.insert(0, str(ROOT / "scripts"))
from check_batch import HEADLINE, REGISTERS, TOPICS  # noqa: E402  (the same spec the writers checked against)
from dedup import near_duplicate_pairs  # noqa: E402

CORPUS = ROOT / "data" / "corpus"
SPLITS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def splits():
    return {s: [json.loads(l) for l in (CORPUS / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
            for s in SPLITS}


@pytest.fixture(scope="module")
def rows(splits):
    return [r for s in SPLITS for r in splits[s]]


def test_every_split_loads_with_the_codebook_labels():
    for split in SPLITS:
        assert len(load_split(str(CORPUS / f"{split}.jsonl"), DataConfig(), split)) > 0


def test_records_have_the_documented_fields(rows):
    for r in rows:
        assert {"text", "labels", "register", "topic", "batch"} <= set(r) <= {
            "text", "labels", "register", "topic", "batch", "hard_negative"}
        assert r["register"] in REGISTERS and r["topic"] in TOPICS
        assert not (r.get("hard_negative") and r["labels"])


def test_composition_minimums(rows):
    per_label = Counter(l for r in rows for l in r["labels"])
    assert len(rows) >= 4000
    assert min(per_label[l] for l in HEADLINE) >= 700, per_label
    assert sum(not r["labels"] for r in rows) >= 1600
    assert sum(bool(r.get("hard_negative")) for r in rows) >= 500
    assert sum(len(r["labels"]) > 1 for r in rows) >= 400


def test_positives_without_the_headline_word(rows):
    pos = [(l, r["text"]) for r in rows for l in r["labels"]]
    free = sum(not HEADLINE[l].search(t) for l, t in pos)
    assert free / len(pos) >= 0.30


def test_registers_and_topics(rows):
    registers = Counter(r["register"] for r in rows)
    assert set(registers) == set(REGISTERS)
    assert min(registers.values()) / len(rows) >= 0.08, registers
    assert set(Counter(r["topic"] for r in rows)) == set(TOPICS)


def test_length_matches_real_state_media(rows):
    words = [len(r["text"].split()) for r in rows]
    assert sum(words) / len(words) >= 28
    assert sum(w >= 40 for w in words) / len(words) >= 0.20
    assert sum(w >= 55 for w in words) / len(words) >= 0.06


def test_splits_go_by_batch_and_have_the_right_size(splits, rows):
    batches = {s: {r["batch"] for r in splits[s]} for s in SPLITS}
    for a, b in combinations(SPLITS, 2):
        assert not batches[a] & batches[b], (a, b)
    for s in ("dev", "test"):
        assert 0.12 <= len(splits[s]) / len(rows) <= 0.15


def test_no_exact_duplicates(rows):
    counts = Counter(normalise(r["text"]) for r in rows)
    assert [t for t, c in counts.items() if c > 1] == []


def test_near_duplicates(splits, rows):
    texts = [r["text"] for r in rows]
    split_of = [s for s in SPLITS for _ in splits[s]]
    pairs = near_duplicate_pairs(texts, threshold=0.8)
    across = [(texts[i], texts[j]) for i, j, _ in pairs if split_of[i] != split_of[j]]
    assert across == []
    for s in SPLITS:
        n = len(splits[s])
        within = sum(split_of[i] == s for i, j, _ in pairs)
        assert within < 0.01 * n * (n - 1) / 2
        assert within <= 0.01 * n  # far stricter than 1% of pairs: under 1 per 100 sentences


def test_near_duplicate_detector_finds_edits():
    base = "The workers of the steel complex overfulfilled the annual plan ahead of schedule, the paper said."
    edited = base.replace("annual", "yearly")
    assert [(i, j) for i, j, _ in near_duplicate_pairs([base, edited, "Something else entirely."])] == [(0, 1)]


@pytest.mark.skipif(not (SHARED / "framing").is_dir(), reason="../shared/framing is absent")
def test_no_sentence_is_copied_from_shared(rows):
    """The same 60-character-prefix check the before-stop hook runs."""
    needles = set()
    for path in (SHARED / "framing").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = " ".join(json.loads(line).get("text", "").split()).lower()
            if len(text) >= 60:
                needles.add(text[:60])
    assert len(needles) > 1000  # the check really had something to compare against
    ours = " ".join(" ".join(r["text"].split()).lower() for r in rows)
    starts = [0] + [i + 1 for i, ch in enumerate(ours) if ch in " \"'[("]
    assert not ({ours[i:i + 60] for i in starts} & needles)
