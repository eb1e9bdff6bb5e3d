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


def label_counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives per label."""
    tp, fp, fn = _row_counts(y_true, y_pred).sum(1)
    return tp, fp, fn


def label_f1(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return prf(*label_counts(y_true, y_pred))[2]


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(label_f1(y_true, y_pred).mean())


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, thresholds: Sequence[float],
                           labels: Sequence[str]) -> dict:
    """All point figures for one model on one set at the given thresholds."""
    y_true = y_true.astype(np.int8)
    y_pred = binarise(probs, thresholds)
    tp, fp, fn = label_counts(y_true, y_pred)
    precision, recall, f1 = prf(tp, fp, fn)
    present = tp + fn > 0
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
        # macro-F1 counts a label with no positives and no predictions as F1 = 0 (sklearn's
        # zero_division=0); these two figures say which labels that was and what it costs
        "macro_f1_present": float(f1[present].mean()) if present.any() else None,
        "f1_undefined_labels": [l for j, l in enumerate(labels) if tp[j] + fp[j] + fn[j] == 0],
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


def paired_comparison(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_resamples: int = 1000,
                      seed: int = 0, alpha: float = 0.05) -> dict:
    """Macro-F1 of A minus B on the same sentences: the difference, a paired-bootstrap CI, and a
    two-sided p from a paired permutation test (a bootstrap tail share cannot go below 1/n)."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    diffs = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = rng.integers(0, n, n)
        diffs[r] = macro_f1(y_true[idx], pred_a[idx]) - macro_f1(y_true[idx], pred_b[idx])
    return {
        "difference": macro_f1(y_true, pred_a) - macro_f1(y_true, pred_b),
        "ci": [float(np.percentile(diffs, 100 * alpha / 2)), float(np.percentile(diffs, 100 * (1 - alpha / 2)))],
        "p_value": permutation_p_value(y_true, pred_a, pred_b, n_resamples, seed),
        "n_resamples": n_resamples, "n_permutations": n_resamples, "seed": seed,
    }


def permutation_p_value(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_permutations: int = 1000,
                        seed: int = 0) -> float:
    """Two-sided paired permutation test of the macro-F1 difference.

    Under the null the two systems are exchangeable, so each permutation swaps A's and B's
    prediction rows for a random half of the sentences. p = (count + 1) / (n + 1), where count is
    the permutations whose |difference| reaches the observed one: never 0, and at least 1/(n+1).
    """
    rng = np.random.default_rng(seed)
    n, n_labels = y_true.shape
    counts_a, counts_b = _row_counts(y_true, pred_a), _row_counts(y_true, pred_b)
    total_a, total_b = counts_a.sum(1), counts_b.sum(1)          # (3, labels): tp, fp, fn
    # what swapping one sentence moves from B's counts to A's, flattened for one matrix product
    swing = (counts_b - counts_a).transpose(1, 0, 2).reshape(n, 3 * n_labels).astype(np.float64)
    observed = abs(_macro_from_counts(total_a[None]) - _macro_from_counts(total_b[None]))[0]
    chunk = max(1, 2_000_000 // max(n, 1))                       # bounds the (permutations x sentences) mask
    extreme = 0
    for start in range(0, n_permutations, chunk):
        swap = rng.random((min(chunk, n_permutations - start), n)) < 0.5
        moved = (swap @ swing).reshape(-1, 3, n_labels)
        diff = _macro_from_counts(total_a + moved) - _macro_from_counts(total_b - moved)
        extreme += int((np.abs(diff) >= observed - 1e-12).sum())
    return (extreme + 1) / (n_permutations + 1)


def _row_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per sentence and label: tp, fp, fn, stacked as (3, sentences, labels)."""
    y_true, y_pred = y_true.astype(np.int64), y_pred.astype(np.int64)
    return np.stack([y_true * y_pred, (1 - y_true) * y_pred, y_true * (1 - y_pred)])


def _macro_from_counts(counts: np.ndarray) -> np.ndarray:
    """Macro-F1 for each row of (rows, 3, labels) counts."""
    return prf(counts[:, 0], counts[:, 1], counts[:, 2])[2].mean(-1)
