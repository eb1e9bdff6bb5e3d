"""Near-duplicate detection: character 5-gram Jaccard, found with MinHash and LSH banding.

Exact all-pairs Jaccard over a few thousand sentences is millions of set
comparisons; MinHash signatures with 16 bands of 4 rows make every pair with
Jaccard >= 0.8 a candidate with probability > 0.999, and candidates are then
checked exactly, so reported pairs are never false positives.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from itertools import combinations
from typing import Sequence

import numpy as np

SHINGLE = 5
N_PERM = 64
BANDS = 16
_PRIME = (1 << 61) - 1


def shingles(text: str, k: int = SHINGLE) -> set[int]:
    t = " ".join(text.lower().split())
    grams = {t[i:i + k] for i in range(max(len(t) - k + 1, 1))}
    return {int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest(), "little") for g in grams}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate_pairs(texts: Sequence[str], threshold: float = 0.8, seed: int = 0) -> list[tuple[int, int, float]]:
    """All index pairs (i < j) whose 5-gram Jaccard is >= threshold."""
    sets = [shingles(t) for t in texts]
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _PRIME, N_PERM, dtype=np.uint64)
    b = rng.integers(0, _PRIME, N_PERM, dtype=np.uint64)
    rows = N_PERM // BANDS
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        values = np.fromiter(s, dtype=np.uint64, count=len(s)) % np.uint64(_PRIME)
        # (a*x + b) with uint64 wrap-around is a fine hash family for this purpose
        signature = (values[None, :] * a[:, None] + b[:, None]).min(axis=1)
        for band in range(BANDS):
            buckets[(band, signature[band * rows:(band + 1) * rows].tobytes())].append(i)
    candidates = {pair for members in buckets.values() if len(members) > 1 for pair in combinations(members, 2)}
    out = []
    for i, j in sorted(candidates):
        score = jaccard(sets[i], sets[j])
        if score >= threshold:
            out.append((i, j, score))
    return out
