"""Active learning: choose the pool sentences whose labels would teach the model most.

Four strategies (docs/active-learning.md says what each follows):
- ``uncertainty``: the sentences nearest a tuned per-label threshold, over all labels;
- ``diversity``: k-center greedy over the model's own [CLS] embeddings (core-set);
- ``hybrid`` (default): the most uncertain 10*N, boosted for labels rare in what is already
  labelled, then spread with k-center greedy (cluster-margin and BADGE in spirit);
- ``random``: the baseline every other strategy has to beat.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infer.classifier import replace_lone_surrogates
from infer.readers import DataError, iter_records

from .config import DataConfig
from .data import label_list, normalise

log = logging.getLogger(__name__)

STRATEGIES = ("hybrid", "uncertainty", "diversity", "random")
# hybrid spreads its N picks over the 10*N most uncertain: wide enough that 200 picks need not
# be 200 copies of one ritual formula, narrow enough that every pick is still near a threshold
HYBRID_CANDIDATES_PER_PICK = 10
# a label absent from the labelled files counts up to (1 + boost) times as much as the commonest
RARE_LABEL_BOOST = 1.0


@dataclass
class Pool:
    """The sentences a selection may pick from, with the id each came with."""

    ids: list[str]
    texts: list[str]


@dataclass
class Pick:
    """One selected sentence with the model's pre-labels, so an annotator corrects instead of starting blank."""

    source_id: str
    text: str
    pre_labels: list[str]
    scores: dict[str, float]
    uncertainty: float  # 1 = exactly at some label's threshold, 0 = as far from every threshold as can be


def select(classifier, pool_path: str | Path, n: int, strategy: str = "hybrid",
           exclude: Sequence[str | Path] = (), seed: int = 0, text_field: str = "text",
           id_field: str = "id") -> list[Pick]:
    """Pick ``n`` sentences of the pool (fewer if it is smaller), best first; deterministic for a seed."""
    if strategy not in STRATEGIES:
        raise DataError(f"Unknown selection strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    if n < 1:
        raise DataError(f"--n must be at least 1, got {n}.")
    seen, label_counts = read_labelled(exclude, classifier.labels)
    pool = read_pool(pool_path, seen, text_field, id_field)
    chosen = choose(classifier, pool.texts, n, strategy, np.random.default_rng(seed), label_counts)
    texts = [pool.texts[i] for i in chosen]
    probs = classifier.predict_proba(texts) if texts else np.zeros((0, len(classifier.labels)))
    closeness = threshold_closeness(probs, classifier.thresholds).max(axis=1, initial=0.0)
    pre_labels = classifier.labels_from_proba(probs)
    log.info("selected %d of %d pool sentences with the %s strategy", len(texts), len(pool.texts), strategy)
    return [Pick(pool.ids[i], pool.texts[i], pre_labels[k], dict(zip(classifier.labels, map(float, probs[k]))),
                 float(closeness[k])) for k, i in enumerate(chosen)]


def choose(classifier, texts: list[str], n: int, strategy: str, rng: np.random.Generator,
           label_counts: np.ndarray) -> np.ndarray:
    """Indices into ``texts`` of the picks, in the order they were chosen."""
    n = min(n, len(texts))
    if n == 0:
        return np.zeros(0, dtype=int)
    if strategy == "random":
        return rng.choice(len(texts), size=n, replace=False)
    if strategy == "diversity":
        return k_center_greedy(classifier.embed(texts), n, first=int(rng.integers(len(texts))))
    closeness = threshold_closeness(classifier.predict_proba(texts), classifier.thresholds)
    if strategy == "uncertainty":
        return np.argsort(-closeness.max(axis=1), kind="stable")[:n]
    boosted = (closeness * rare_label_weights(label_counts)).max(axis=1)
    candidates = np.argsort(-boosted, kind="stable")[:HYBRID_CANDIDATES_PER_PICK * n]
    # start from the most uncertain candidate, then keep taking the one farthest from all taken
    return candidates[k_center_greedy(classifier.embed([texts[i] for i in candidates]), n, first=0)]


def threshold_closeness(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per sentence and label, 1 - |p - t| as a share of the room on that side of the threshold t,
    so that labels tuned at 0.1 and at 0.6 are compared fairly; 1 means exactly at t."""
    room = np.where(probs < thresholds, thresholds, 1.0 - thresholds)
    return 1.0 - np.abs(probs - thresholds) / np.clip(room, 1e-6, None)


def rare_label_weights(label_counts: np.ndarray) -> np.ndarray:
    """1 for the label most often labelled already, up to 1 + RARE_LABEL_BOOST for one never labelled."""
    if label_counts.sum() == 0:
        return np.ones_like(label_counts, dtype=np.float64)
    return 1.0 + RARE_LABEL_BOOST * (1.0 - label_counts / label_counts.max())


def k_center_greedy(embeddings: np.ndarray, n: int, first: int) -> np.ndarray:
    """Greedy k-center (Sener & Savarese 2018) over cosine geometry: each next pick is the sentence
    farthest from every pick so far. A picked sentence is never picked again, so exact duplicates
    come only after every distinct sentence."""
    x = embeddings / np.clip(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12, None)
    picked = [first]
    distance = np.linalg.norm(x - x[first], axis=1)
    distance[first] = -np.inf
    for _ in range(min(n, len(x)) - 1):
        nxt = int(np.argmax(distance))
        picked.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(x - x[nxt], axis=1))
        distance[picked] = -np.inf
    return np.asarray(picked)


def read_pool(path: str | Path, seen: set[str], text_field: str = "text", id_field: str = "id") -> Pool:
    """Read the pool; empty texts are skipped and counted, excluded and repeated sentences dropped."""
    ids, texts, kept = [], [], set(seen)
    empty = excluded = repeated = 0
    for where, record in iter_records(path):
        if text_field not in record:
            raise DataError(f"{where}: no {text_field!r} column; found {sorted(record)}. "
                            "Name the text column with --text-field.")
        text = clean_text(record[text_field])
        key = normalise(text)
        if not key:
            empty += 1
        elif key in kept:
            excluded += key in seen
            repeated += key not in seen
        else:
            kept.add(key)
            texts.append(text)
            ids.append(str(record[id_field]) if record.get(id_field) is not None else _location(where))
    log.info("pool %s: %d sentences kept; skipped %d empty, %d excluded, %d repeated",
             path, len(texts), empty, excluded, repeated)
    if not texts:
        raise DataError(f"The pool {path} has no sentence left to pick ({empty} empty, {excluded} excluded, "
                        f"{repeated} repeated). Give a pool with unlabelled sentences.")
    return Pool(ids, texts)


def read_labelled(paths: Sequence[str | Path], labels: Sequence[str]) -> tuple[set[str], np.ndarray]:
    """The normalised sentences of the --exclude files, and how often each label occurs in those that
    carry labels (files without a labels column only exclude)."""
    seen: set[str] = set()
    counts = np.zeros(len(labels), dtype=np.float64)
    index = {label: j for j, label in enumerate(labels)}
    for path in paths:
        for where, record in iter_records(path):
            text = record.get("text")
            if isinstance(text, str) and text.strip():
                seen.add(normalise(clean_text(text)))
            if record.get("labels") is not None:
                for label in label_list(where, record["labels"], DataConfig()):
                    if label in index:
                        counts[index[label]] += 1
    return seen, counts


def clean_text(value: Any) -> str:
    """A pool cell as text a tokenizer and a UTF-8 file accept: None and non-strings become empty,
    and lone surrogates (left by broken JSON escapes) become U+FFFD instead of crashing later."""
    if not isinstance(value, str):
        return ""
    return replace_lone_surrogates(value).strip()


def _location(where: str) -> str:
    """'pool.jsonl:12' from '/long/path/pool.jsonl:12': the id of a record that brought none."""
    path, _, line = where.rpartition(":")
    return f"{Path(path).name}:{line}"
