"""The figures: per-label and aggregate metrics, bootstrap intervals, calibration, paired tests."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

N_BINS = 10


def binarise(probs: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    return (probs >= np.asarray(thresholds, dtype=np.float32)[None, :]).astype(np.int8)


def prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 from counts; 0 where undefined (sklearn's zero_division=0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return precision, recall, f1


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    tp = (y_true * y_pred).sum(0)
    fp = ((1 - y_true) * y_pred).sum(0)
    fn = (y_true * (1 - y_pred)).sum(0)
    return float(prf(tp, fp, fn)[2].mean())


def label_f1(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    tp = (y_true * y_pred).sum(0)
    fp = ((1 - y_true) * y_pred).sum(0)
    fn = (y_true * (1 - y_pred)).sum(0)
    return prf(tp, fp, fn)[2]


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, thresholds: Sequence[float],
                           labels: Sequence[str]) -> dict:
    """All point figures for one model on one set at the given thresholds."""
    y_true = y_true.astype(np.int8)
    y_pred = binarise(probs, thresholds)
    tp = (y_true & y_pred).sum(0)
    fp = ((1 - y_true) & y_pred).sum(0)
    fn = (y_true & (1 - y_pred)).sum(0)
    precision, recall, f1 = prf(tp, fp, fn)
    per_label = {}
    for j, label in enumerate(labels):
        per_label[label] = {
            "precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
            "support": int(y_true[:, j].sum()), "predicted": int(y_pred[:, j].sum()),
            "threshold": float(thresholds[j]),
            "roc_auc": _safe(roc_auc_score, y_true[:, j], probs[:, j]),
            "average_precision": _safe(average_precision_score, y_true[:, j], probs[:, j]),
            "ece": expected_calibration_error(y_true[:, j], probs[:, j]),
        }
    none_true, none_pred = ~y_true.any(1), ~y_pred.astype(bool).any(1)
    n_p, n_r, n_f = prf(np.array([(none_true & none_pred).sum()]), np.array([(~none_true & none_pred).sum()]),
                        np.array([(none_true & ~none_pred).sum()]))
    return {
        "n": int(len(y_true)),
        "macro_f1": float(f1.mean()),
        "micro_f1": float(prf(tp.sum(), fp.sum(), fn.sum())[2]),
        "samples_f1": samples_f1(y_true, y_pred),
        "subset_accuracy": float((y_true == y_pred).all(1).mean()),
        "hamming_loss": float((y_true != y_pred).mean()),
        "none": {"precision": float(n_p[0]), "recall": float(n_r[0]), "f1": float(n_f[0]),
                 "support": int(none_true.sum())},
        "per_label": per_label,
    }


def samples_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-sentence F1; a sentence with no gold and no predicted frame scores 1 (it is right)."""
    tp = (y_true & y_pred).sum(1)
    size = y_true.sum(1) + y_pred.sum(1)
    return float(np.where(size > 0, 2 * tp / np.maximum(size, 1), 1.0).mean())


def _safe(fn: Callable, truth: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC-AUC and AP are undefined when a label has no positives (or no negatives)."""
    if truth.min() == truth.max():
        return None
    return float(fn(truth, scores))


def reliability(truth: np.ndarray, scores: np.ndarray, n_bins: int = N_BINS) -> list[dict]:
    """Equal-width bins of predicted probability: mean confidence, observed rate, count."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = index == b
        if mask.any():
            bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(mask.sum()),
                         "confidence": float(scores[mask].mean()), "observed": float(truth[mask].mean())})
    return bins


def expected_calibration_error(truth: np.ndarray, scores: np.ndarray, n_bins: int = N_BINS) -> float:
    n = len(scores)
    return float(sum(b["count"] / n * abs(b["confidence"] - b["observed"]) for b in reliability(truth, scores, n_bins)))


def bootstrap_f1(y_true: np.ndarray, y_pred: np.ndarray, n_resamples: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> dict:
    """Percentile CIs for macro-F1 and each label's F1, resampling sentences with replacement."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    per_label = np.empty((n_resamples, y_true.shape[1]))
    for r in range(n_resamples):
        idx = rng.integers(0, n, n)
        per_label[r] = label_f1(y_true[idx], y_pred[idx])
    macro = per_label.mean(1)
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    return {
        "macro_f1": [float(np.percentile(macro, lo)), float(np.percentile(macro, hi))],
        "per_label_f1": [[float(np.percentile(per_label[:, j], lo)), float(np.percentile(per_label[:, j], hi))]
                         for j in range(y_true.shape[1])],
        "n_resamples": n_resamples, "seed": seed,
    }


def paired_bootstrap(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_resamples: int = 1000,
                     seed: int = 0, alpha: float = 0.05) -> dict:
    """Macro-F1 of A minus B on the same resampled sentences: the difference, its CI and a two-sided p."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    diffs = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = rng.integers(0, n, n)
        diffs[r] = macro_f1(y_true[idx], pred_a[idx]) - macro_f1(y_true[idx], pred_b[idx])
    point = macro_f1(y_true, pred_a) - macro_f1(y_true, pred_b)
    # share of resamples on the other side of zero, doubled for two sides (floored at 1/n)
    tail = min((diffs <= 0).mean(), (diffs >= 0).mean())
    return {
        "difference": float(point),
        "ci": [float(np.percentile(diffs, 100 * alpha / 2)), float(np.percentile(diffs, 100 * (1 - alpha / 2)))],
        "p_value": float(min(1.0, max(2 * tail, 1.0 / n_resamples))),
        "n_resamples": n_resamples, "seed": seed,
    }
