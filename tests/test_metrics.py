import json
import logging

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support)

from train.data import LabelledSet
from train.metrics import (binarise, bootstrap_f1, classification_metrics, expected_calibration_error, label_f1,
                           macro_f1, paired_comparison, permutation_p_value)
from train.report import format_p, write_set_report
from train.scoring import Scored, SetReport, figures
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


def test_paired_comparison_detects_a_better_model():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (300, 2))
    good = np.where(rng.random((300, 2)) < 0.95, y, 1 - y)
    bad = np.where(rng.random((300, 2)) < 0.6, y, 1 - y)
    out = paired_comparison(y, good, bad, 500, seed=0)
    assert out["difference"] > 0.2 and out["ci"][0] > 0
    assert out["p_value"] == pytest.approx(1 / 501)  # no permutation reaches it: the floor, never 0
    same = paired_comparison(y, good, good, 200, seed=0)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def _naive_permutation_p(y, a, b, n, seed):
    """The test spelled out: swap whole prediction rows, recompute both macro-F1s."""
    rng = np.random.default_rng(seed)
    observed = abs(macro_f1(y, a) - macro_f1(y, b))
    count = 0
    for _ in range(n):
        swap = (rng.random(len(y)) < 0.5)[:, None]
        count += abs(macro_f1(y, np.where(swap, b, a)) - macro_f1(y, np.where(swap, a, b))) >= observed - 1e-12
    return (count + 1) / (n + 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permutation_p_matches_the_test_spelled_out(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (120, 3))
    a = np.where(rng.random((120, 3)) < 0.8, y, 1 - y)
    b = np.where(rng.random((120, 3)) < 0.75, y, 1 - y)
    p = permutation_p_value(y, a, b, 300, seed)
    assert p == pytest.approx(_naive_permutation_p(y, a, b, 300, seed))
    assert 1 / 301 < p < 1  # a real p here, neither floor nor ceiling


def test_p_is_printed_as_a_bound_at_its_floor():
    assert format_p(1 / 1001, 1000) == "p ≤ 0.001"
    assert format_p(1 / 301, 300) == "p ≤ 0.0034"  # rounded up: 0.00332 is below it
    assert format_p(2 / 1001, 1000) == "p = 0.002"
    assert format_p(3 / 10001, 10000) == "p = 0.0003"
    assert format_p(0.5495, 1000) == "p = 0.549"


LABELS5 = ["a", "b", "c", "d", "e"]


def _random_multilabel(seed):
    """Random gold and scores, with the awkward columns: b has no positives, c is never predicted,
    d has neither (its F1 is undefined)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 200))
    y = (rng.random((n, 5)) < rng.uniform(0.05, 0.6, 5)).astype(np.int8)
    probs = rng.random((n, 5)).astype(np.float32)
    thresholds = rng.uniform(0.2, 0.8, 5).round(3)
    y[:, 1] = 0
    probs[:, 2] = 0.0
    y[:, 3], probs[:, 3] = 0, 0.0
    return y, probs, thresholds


@pytest.mark.parametrize("seed", range(6))
def test_hand_written_metrics_match_scikit_learn(seed):
    y, probs, thresholds = _random_multilabel(seed)
    pred = (probs >= thresholds).astype(np.int8)
    m = classification_metrics(y, probs, thresholds, LABELS5)
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    for j, label in enumerate(LABELS5):
        got = m["per_label"][label]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((precision[j], recall[j], f1[j]))
        assert got["support"] == support[j]
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    # an empty gold row predicted empty is right: sklearn's zero_division=1 for samples
    assert m["samples_f1"] == pytest.approx(f1_score(y, pred, average="samples", zero_division=1))
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(y, pred))
    assert macro_f1(y, binarise(probs, thresholds)) == pytest.approx(m["macro_f1"])
    assert label_f1(y, pred) == pytest.approx(f1)
    present = y.sum(0) > 0
    assert m["macro_f1_present"] == pytest.approx(f1_score(y[:, present], pred[:, present], average="macro",
                                                           zero_division=0))
    assert pred[:, 1].any()  # b's false positives make its F1 of 0 a real one, unlike d's
    assert m["f1_undefined_labels"] == ["d"]


def test_undefined_f1_is_warned_and_reported(tmp_path, caplog):
    y, probs, thresholds = _random_multilabel(0)
    data = LabelledSet("tiny", [f"sentence {i}" for i in range(len(y))], y, LABELS5, [{} for _ in y])
    model = Scored("model", probs, list(thresholds))
    report = SetReport(data, "tiny.jsonl", model, figures(data, model, [], None, 20, 0, ()))
    with caplog.at_level(logging.WARNING, logger="train.report"):
        write_set_report(report, tmp_path, {})
    assert "label(s) d have no positives and no predictions" in caplog.text
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["f1_undefined_labels"] == ["d"]
    assert metrics["macro_f1_present"] > metrics["macro_f1"]
    text = (tmp_path / "report.md").read_text()
    assert "Note: label(s) d have no positives and no predictions" in text
    assert f"| macro-F1, labels with positives only | {metrics['macro_f1_present']:.3f}" in text


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
