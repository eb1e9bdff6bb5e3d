"""Self-training: a teacher pseudo-labels unlabelled sentences, a student trains on gold + pseudo.

Guards against drift: only sentences on which the teacher is confident about
every label are used; additions are capped per label and in total, and split
between labels and none in the gold data's proportions; sentences that also
occur in train, dev or test never enter the pseudo-labelled set.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from infer import FramingClassifier, FramingInputError

from .adapt import corpus_sha256, read_unlabelled
from .backbone import Backbone
from .config import Config, SelfTrainingConfig
from .data import LabelledSet, normalise
from .fit import FitResult, fit
from .metrics import binarise, macro_f1
from .publish import Splits, tuned_classifier

log = logging.getLogger(__name__)


def exclude_known(pool: list[str], known: list[LabelledSet]) -> list[str]:
    seen = {normalise(t) for split in known for t in split.texts}
    return [t for t in pool if normalise(t) not in seen]


def select_pseudo_labels(probs: np.ndarray, gold_y: np.ndarray, st: SelfTrainingConfig,
                         seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to add and their multi-hot pseudo-labels. Deterministic for a seed."""
    c = st.min_confidence
    confident = ((probs >= c) | (probs <= 1 - c)).all(axis=1)
    positive = probs >= c
    budget = int(st.max_fraction * len(gold_y))
    gold_none = float((gold_y.sum(1) == 0).mean())
    n_negative = int(round(budget * gold_none))
    caps = label_caps(gold_y, budget - n_negative, st.max_per_label)
    counts = np.zeros(probs.shape[1], dtype=int)
    chosen: set[int] = set()
    for j in range(probs.shape[1]):
        rows = np.flatnonzero(confident & positive[:, j])
        for i in rows[np.argsort(-probs[rows, j], kind="stable")]:
            # a row carries all its confident labels: take it only if none of them is full
            if counts[j] >= caps[j]:
                break
            if i not in chosen and (counts[positive[i]] < caps[positive[i]]).all():
                chosen.add(int(i))
                counts[positive[i]] += 1
    negatives = np.flatnonzero(confident & ~positive.any(1))
    rng = np.random.default_rng(seed)
    picked = rng.choice(negatives, size=min(n_negative, len(negatives)), replace=False) if len(negatives) else []
    chosen.update(int(i) for i in picked)
    index = np.array(sorted(chosen), dtype=int)
    return index, positive[index].astype(np.float32)


def label_caps(gold_y: np.ndarray, positive_budget: int, max_per_label: int) -> np.ndarray:
    """Pseudo-positives allowed per label: the budget split in the gold label shares, at most max_per_label."""
    gold_pos = gold_y.sum(0)
    share = gold_pos / max(gold_pos.sum(), 1)
    return np.minimum(max_per_label, (positive_budget * share).astype(int))


def self_train(cfg: Config, backbone: Backbone, splits: Splits, teacher: FramingClassifier,
               run_dir: Path) -> tuple[FitResult, dict]:
    """Run the configured rounds; return the final student, still in memory, and a provenance
    record for its model folder. Each student teaches the next round from memory too."""
    st = cfg.self_training
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise FramingInputError("Self-training runs in one process; launch it without torchrun/accelerate.")
    if st.rounds < 1:
        raise FramingInputError(f"self_training.rounds must be >= 1 when self_training.unlabeled is set, found "
                                f"{st.rounds}. Set rounds: 1 or more, or unlabeled: null to train without it.")
    pool = read_unlabelled(st.unlabeled, st.text_field, st.max_unlabeled)
    pool = exclude_known(pool, splits.present())
    record = {"unlabeled": str(Path(st.unlabeled).resolve()), "unlabeled_sha256": corpus_sha256(pool),
              "pool_size": len(pool), "first_teacher": st.teacher or "the gold-only model of this run",
              "config": dataclasses.asdict(st), "rounds": []}
    for r in range(1, st.rounds + 1):
        probs = teacher.to("auto").predict_proba(pool, progress=True)  # the pool can be large: use a GPU if any
        index, y = select_pseudo_labels(probs, splits.train.y, st, cfg.training.seed + r)
        added = {l: int(y[:, j].sum()) for j, l in enumerate(teacher.labels)}
        added["none"] = int((y.sum(1) == 0).sum())
        log.info("self-training round %d: %d pseudo-labelled sentences added %s", r, len(index), added)
        train = LabelledSet("train+pseudo", splits.train.texts + [pool[i] for i in index],
                            np.vstack([splits.train.y, y]), splits.train.labels,
                            splits.train.meta + [{"pseudo_label_round": r}] * len(index))
        round_dir = run_dir / "self_training" / f"round-{r}"
        round_cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, dir=str(round_dir)))
        student = fit(round_cfg, backbone, train, splits.dev, resume=False)
        teacher = tuned_classifier(round_cfg, student, splits.dev)
        dev_f1 = macro_f1(splits.dev.y.astype(np.int8), binarise(teacher.predict_proba(splits.dev.texts),
                                                                  teacher.thresholds))
        log.info("self-training round %d: dev macro-F1 %.4f", r, dev_f1)
        record["rounds"].append({"round": r, "added": added, "n_added": int(len(index)), "dev_macro_f1": dev_f1})
    return student, record
