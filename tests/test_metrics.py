import numpy as np
import pytest

from train.metrics import (bootstrap_f1, classification_metrics, expected_calibration_error, macro_f1,
                           paired_bootstrap)
from train.thresholds import best_f1_threshold, tune_thresholds

LABELS = ["a", "b"]
# gold and probabilities chosen so every figure can be worked out by hand
Y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=np.int8)
P = np.array([[0.9, 0.2], [0.4, 0.8], [0.6, 0.3], [0.1, 0.1]], dtype=np.float32)


def test_point_metrics_by_hand():
    m = classification_metrics(Y, P, [0.5, 0.5], LABELS)
    # label a: predicted rows 0, 2; gold rows 0, 1 -> tp 1, fp 1, fn 1
    assert m["per_label"]["a"]["precision"] == pytest.approx(0.5)
    assert m["per_label"]["a"]["recall"] == pytest.approx(0.5)
    assert m["per_label"]["a"]["f1"] == pytest.approx(0.5)
    # label b: predicted row 1; gold rows 1, 2 -> tp 1, fp 0, fn 1 -> F1 2/3
    assert m["per_label"]["b"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    # micro: tp 2, fp 1, fn 2 -> 4 / 7
    assert m["micro_f1"] == pytest.approx(4 / 7)
    # rows exactly right: row 0 and row 3 (none, predicted none)
    assert m["subset_accuracy"] == pytest.approx(0.5)
    # per-row F1: 1, 2/3, 0, and 1 for the empty-empty row
    assert m["samples_f1"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)
    # wrong cells: (1,a), (2,a), (2,b) of 8
    assert m["hamming_loss"] == pytest.approx(3 / 8)
    # none: gold none row 3; predicted none row 3 -> perfect
    assert m["none"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    # ROC-AUC of a: positives 0.9, 0.4 vs negatives 0.6, 0.1 -> 3 of 4 pairs ordered
    assert m["per_label"]["a"]["roc_auc"] == pytest.approx(0.75)


def test_auc_undefined_without_positives():
    y = np.zeros((3, 1), dtype=np.int8)
    m = classification_metrics(y, np.array([[0.1], [0.2], [0.3]]), [0.5], ["a"])
    assert m["per_label"]["a"]["roc_auc"] is None and m["per_label"]["a"]["f1"] == 0.0


def test_ece_by_hand():
    # ten bins, one score in each of four: |0.1-0|, |0.2-0|, |0.8-1|, |0.9-0|, each weighted 1/4
    ece = expected_calibration_error(np.array([0, 0, 1, 0]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert ece == pytest.approx((0.1 + 0.2 + 0.2 + 0.9) / 4)


def test_bootstrap_contains_point_and_is_deterministic():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (200, 3))
    pred = np.where(rng.random((200, 3)) < 0.8, y, 1 - y)
    a, b = bootstrap_f1(y, pred, 300, seed=7), bootstrap_f1(y, pred, 300, seed=7)
    assert a == b
    lo, hi = a["macro_f1"]
    assert lo <= macro_f1(y, pred) <= hi and hi - lo > 0
    assert bootstrap_f1(y, pred, 300, seed=8) != a


def test_paired_bootstrap_detects_a_better_model():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (300, 2))
    good = np.where(rng.random((300, 2)) < 0.95, y, 1 - y)
    bad = np.where(rng.random((300, 2)) < 0.6, y, 1 - y)
    out = paired_bootstrap(y, good, bad, 500, seed=0)
    assert out["difference"] > 0.2 and out["ci"][0] > 0 and out["p_value"] < 0.01
    same = paired_bootstrap(y, good, good, 200, seed=0)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def test_threshold_maximises_f1_between_scores():
    truth = np.array([1, 1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.7, 0.6, 0.35, 0.3, 0.1])
    # keeping the top 4 gives tp 3, fp 1 -> F1 6/7, the best; cut midway between 0.35 and 0.3
    assert best_f1_threshold(truth, scores) == pytest.approx(0.325)


def test_small_support_falls_back_to_half():
    y = np.array([[1, 1], [0, 1], [0, 1], [0, 0]])
    p = np.array([[0.2, 0.9], [0.1, 0.8], [0.1, 0.7], [0.05, 0.1]])
    out = tune_thresholds(y, p, ["rare", "common"], min_positives=3)
    assert out["rare"] == 0.5
    assert out["common"] == pytest.approx(0.4)


def test_tolerance_prefers_the_cut_nearest_half_on_a_plateau():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.999, 0.998, 0.997, 0.9, 0.6, 0.3, 0.2, 0.1])
    assert best_f1_threshold(truth, scores) == pytest.approx(0.9485)  # exact arg-max
    # keeping 4 or 5 costs F1 0.857 / 0.75; within 0.15 of the best, the cut nearest 0.5 wins
    assert best_f1_threshold(truth, scores, tolerance=0.15) == pytest.approx(0.75)
