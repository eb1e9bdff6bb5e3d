"""Per-label decision thresholds tuned on dev to maximise F1."""
from __future__ import annotations

from typing import Sequence

import numpy as np

DEFAULT_THRESHOLD = 0.5
# Thresholds whose dev F1 is within this of the best count as equally good; among them
# the one nearest 0.5 wins. A fine-tuned model often separates dev almost perfectly, so
# F1 is flat over a wide range and the arg-max is an accident of a few dev sentences
# (one run put loss at 0.98); the cut nearest the default is the one least fitted to dev.
F1_TOLERANCE = 0.01


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                    min_positives: int = 5, tolerance: float = F1_TOLERANCE) -> dict[str, float]:
    """One F1-maximising threshold per label; labels with fewer than ``min_positives``
    dev positives keep 0.5, because a cut-off fitted to two or three examples is noise."""
    out = {}
    for j, label in enumerate(labels):
        positives = int(y_true[:, j].sum())
        out[label] = (DEFAULT_THRESHOLD if positives < min_positives
                      else best_f1_threshold(y_true[:, j], probs[:, j], tolerance))
    return out


def best_f1_threshold(truth: np.ndarray, scores: np.ndarray, tolerance: float = 0.0) -> float:
    """The cut that maximises F1 (within ``tolerance``, preferring cuts near 0.5), placed
    midway between the last score kept and the first score dropped."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_truth = scores[order], truth[order]
    tp = np.cumsum(sorted_truth)
    k = np.arange(1, len(scores) + 1)
    f1 = 2 * tp / (k + sorted_truth.sum())
    # only cut between distinct scores: ties must fall on the same side
    distinct = np.append(sorted_scores[1:] < sorted_scores[:-1], True)
    f1 = np.where(distinct, f1, -1.0)
    lower = np.append(sorted_scores[1:], 0.0)
    cuts = np.clip((sorted_scores + lower) / 2.0, 0.01, 0.99)
    good = np.flatnonzero(f1 >= f1.max() - tolerance)
    return float(cuts[good[np.argmin(np.abs(cuts[good] - DEFAULT_THRESHOLD))]])
