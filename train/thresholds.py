"""Per-label decision thresholds tuned on dev to maximise F1."""
from __future__ import annotations

from typing import Sequence

import numpy as np

DEFAULT_THRESHOLD = 0.5


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                    min_positives: int = 5) -> dict[str, float]:
    """One F1-maximising threshold per label; labels with fewer than ``min_positives``
    dev positives keep 0.5, because a cut-off fitted to two or three examples is noise."""
    out = {}
    for j, label in enumerate(labels):
        positives = int(y_true[:, j].sum())
        out[label] = (DEFAULT_THRESHOLD if positives < min_positives
                      else best_f1_threshold(y_true[:, j], probs[:, j]))
    return out


def best_f1_threshold(truth: np.ndarray, scores: np.ndarray) -> float:
    """The cut that maximises F1, placed midway between the last score kept and the
    first score dropped, so it does not sit on a training point."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_truth = scores[order], truth[order]
    tp = np.cumsum(sorted_truth)
    k = np.arange(1, len(scores) + 1)
    f1 = 2 * tp / (k + sorted_truth.sum())
    # only cut between distinct scores: ties must fall on the same side
    distinct = np.append(sorted_scores[1:] < sorted_scores[:-1], True)
    f1 = np.where(distinct, f1, -1.0)
    best = int(np.argmax(f1))
    upper = sorted_scores[best]
    lower = sorted_scores[best + 1] if best + 1 < len(scores) else 0.0
    return float(np.clip((upper + lower) / 2.0, 0.01, 0.99))
