"""Self-training: deterministic, capped pseudo-label selection that never touches dev or test."""
import json
from pathlib import Path

import numpy as np

import infer.model_folder
from train.config import SelfTrainingConfig, load_config
from train.data import LabelledSet
from train.self_training import exclude_known, label_caps, select_pseudo_labels

from conftest import ROOT


def fake_probs(n=400, labels=4, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.beta(0.3, 0.3, (n, labels)).astype(np.float32)  # mostly near 0 or 1
    probs[n // 2:] = rng.uniform(0.0, 0.05, (n - n // 2, labels))  # a pool of confident negatives
    return probs


def gold(n=100):
    y = np.zeros((n, 4), dtype=np.float32)
    y[:20, 0] = y[20:40, 1] = y[40:60, 2] = y[60:70, 3] = 1
    return y  # 30 of 100 rows are none


def test_selection_is_deterministic_and_respects_caps():
    probs = fake_probs()
    st = SelfTrainingConfig(unlabeled="x", min_confidence=0.9, max_per_label=7, max_fraction=0.5)
    a_idx, a_y = select_pseudo_labels(probs, gold(), st, seed=3)
    b_idx, b_y = select_pseudo_labels(probs, gold(), st, seed=3)
    assert np.array_equal(a_idx, b_idx) and np.array_equal(a_y, b_y)
    assert len(a_idx) == len(set(a_idx.tolist())) <= 50  # max_fraction of 100 gold rows
    chosen = probs[a_idx]
    assert (((chosen >= 0.9) | (chosen <= 0.1)).all())  # confident on every label
    assert np.array_equal(a_y, (chosen >= 0.9).astype(np.float32))
    # every label's positives stay within its cap, counting rows picked for another label
    caps = label_caps(gold(), 50 - round(50 * 0.3), 7)
    assert (a_y.sum(0) <= caps).all() and a_y.sum() > 0
    assert int((a_y.sum(1) == 0).sum()) == round(50 * 0.3)  # none keeps the gold share
    c_idx, _ = select_pseudo_labels(probs, gold(), st, seed=4)
    assert not np.array_equal(a_idx, c_idx)


def test_cap_per_label_binds():
    probs = np.zeros((50, 2), dtype=np.float32)
    probs[:, 0] = 0.99  # every row confidently positive for label 0 only
    st = SelfTrainingConfig(unlabeled="x", max_per_label=5, max_fraction=10.0)
    idx, y = select_pseudo_labels(probs, np.array([[1, 0], [0, 1]], dtype=np.float32), st, seed=0)
    assert len(idx) == 5 and y[:, 0].sum() == 5


def test_cap_counts_rows_chosen_for_another_label():
    probs = np.full((40, 2), 0.99, dtype=np.float32)  # every row positive for both labels,
    probs[:, 1] = np.linspace(0.91, 0.99, 40)            # label 1 most confident on the last rows
    st = SelfTrainingConfig(unlabeled="x", max_per_label=3, max_fraction=10.0)
    _, y = select_pseudo_labels(probs, np.array([[1, 0], [0, 1]], dtype=np.float32), st, seed=0)
    assert y.sum(0).tolist() == [3, 3]


def test_dev_and_test_sentences_never_enter_the_pool():
    split = lambda name, texts: LabelledSet(name, texts, np.zeros((len(texts), 4)), ["a", "b", "c", "d"])
    pool = ["A dev sentence.", "fresh one", "A  TEST sentence.", "another fresh"]
    kept = exclude_known(pool, [split("dev", ["a dev sentence."]), split("test", ["a test sentence."])])
    assert kept == ["fresh one", "another fresh"]


def test_self_training_end_to_end_records_provenance(tiny_backbone, tmp_path, monkeypatch):
    from train.pipeline import train

    pool = tmp_path / "pool.jsonl"
    dev_text = json.loads((ROOT / "data/examples/dev.jsonl").read_text().splitlines()[0])["text"]
    pool.write_text("".join(json.dumps({"text": t}) + "\n" for t in
                            [dev_text, "The dam was finished early.", "Mothers mourned the dead.",
                             "The talks ended.", "They fell for the motherland."] * 2))
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [
        f"model.backbone={tiny_backbone}", f"output.dir={tmp_path / 'run'}", "training.max_steps=2",
        "training.use_cpu=true", "evaluation.baselines=false", "evaluation.bootstrap=20",
        f"self_training.unlabeled={pool}", "self_training.min_confidence=0.5", "self_training.max_fraction=1.0"])
    writes = []
    real_write = infer.model_folder.atomic_write_json
    monkeypatch.setattr(infer.model_folder, "atomic_write_json", lambda p, o: writes.append(p) or real_write(p, o))
    summary = train(cfg)
    assert len(writes) == 1  # the student is published once, its record already in framing.json
    meta = json.loads(Path(summary["model_dir"], "framing.json").read_text())
    record = meta["provenance"]["self_training"]
    assert record["first_teacher"] == "the gold-only model of this run"
    assert record["pool_size"] == 4  # de-duplicated, and the dev sentence excluded
    assert record["rounds"][0]["round"] == 1 and "dev_macro_f1" in record["rounds"][0]
    assert set(record["rounds"][0]["added"]) == {"martyrdom", "heroism", "triumph", "loss", "none"}


def test_given_teacher_skips_the_gold_only_model(tiny_backbone, model_dir, tmp_path):
    from train.pipeline import train

    pool = tmp_path / "pool.txt"
    pool.write_text("The dam was finished early.\nMothers mourned the dead.\nThe talks ended.\n")
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [
        f"model.backbone={tiny_backbone}", f"output.dir={tmp_path / 'run'}", "training.max_steps=2",
        "training.use_cpu=true", "evaluation.baselines=false", "evaluation.bootstrap=20",
        f"self_training.unlabeled={pool}", f"self_training.teacher={model_dir}",
        "self_training.min_confidence=0.5"])
    summary = train(cfg)
    meta = json.loads(Path(summary["model_dir"], "framing.json").read_text())
    assert meta["provenance"]["self_training"]["first_teacher"] == str(model_dir)
    assert not (tmp_path / "run" / "checkpoints").exists()  # no gold-only fit ran
