"""The model folder has one owner: written once, hashed, swapped in whole; baselines from data."""
import ast
import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import infer.model_folder
import train.publish
from infer import FramingClassifier, FramingInputError, FramingMeta, read_meta
from infer.model_folder import file_sha256
from train.baselines import TfidfBaseline
from train.config import load_config
from train.evaluate import evaluate
from train.scoring import recorded_setting

from conftest import ROOT, tiny_overrides

EXAMPLES = ROOT / "data" / "examples"


@pytest.fixture(scope="module")
def published(tiny_backbone, tmp_path_factory) -> dict:
    """One tiny run with a cut training set, its own seed and min-positives, and spies on
    every framing.json write and on the baselines' inputs."""
    from train.pipeline import train as run_training

    out = tmp_path_factory.mktemp("published")
    writes, baseline_inputs = [], []
    fit_baselines = train.publish.fit_baselines

    def spy_write(path, obj):
        writes.append(Path(path))
        return real_write(path, obj)

    def spy_baselines(classifier, train_set, dev, min_positives):
        baseline_inputs.append((len(train_set), len(dev), min_positives))
        return fit_baselines(classifier, train_set, dev, min_positives)

    real_write = infer.model_folder.atomic_write_json
    cfg = load_config(ROOT / "configs" / "tiny.yaml", tiny_overrides(
        tiny_backbone, out, "data.max_train_samples=10", "training.seed=7", "training.threshold_min_positives=3"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        mp.setattr(infer.model_folder, "atomic_write_json", spy_write)
        mp.setattr(train.publish, "fit_baselines", spy_baselines)
        summary = run_training(cfg)
    return {"summary": summary, "run": out, "writes": writes, "baseline_inputs": baseline_inputs}


def test_framing_json_is_written_once_with_the_weights_hash(published):
    model_dir = Path(published["summary"]["model_dir"])
    assert [p.name for p in published["writes"]] == ["framing.json"]
    meta = read_meta(model_dir)
    assert meta.weights_sha256 == file_sha256(model_dir / "model.safetensors")
    assert {"dev", "test", "dev_during_training"} <= set(meta.metrics)  # figures were in the one write
    assert meta.metrics["dev"]["macro_f1"] == published["summary"]["sets"]["dev"]["macro_f1"]
    assert sorted(p.name for p in published["run"].iterdir()) == ["checkpoints", "model", "reports"]


def test_thresholds_in_the_folder_reproduce_the_reported_figures(published):
    """Tuned in memory, then saved: the folder scores dev exactly as the report says."""
    model_dir = Path(published["summary"]["model_dir"])
    reports = Path(published["summary"]["reports_dir"])
    metrics = json.loads((reports / "dev" / "metrics.json").read_text())
    rows = [json.loads(l) for l in (reports / "dev" / "predictions.jsonl").read_text().splitlines()]
    clf = FramingClassifier.from_pretrained(model_dir, device="cpu", precision="fp32")
    assert clf.predict([r["text"] for r in rows]) == [r["predicted"] for r in rows]
    assert metrics["bootstrap"]["seed"] == 7


def test_training_baselines_use_the_loaded_splits(published):
    assert published["baseline_inputs"] == [(10, len((EXAMPLES / "dev.jsonl").read_text().splitlines()), 3)]


def test_standalone_evaluate_honours_the_recorded_config(published, tmp_path, monkeypatch):
    seen = []
    real_fit = TfidfBaseline.fit
    monkeypatch.setattr(TfidfBaseline, "fit", lambda self, t, d, m: seen.append((len(t), m)) or real_fit(self, t, d, m))
    evaluate(published["summary"]["model_dir"], [str(EXAMPLES / "test.jsonl")], tmp_path / "rep", bootstrap=20)
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert seen == [(10, 3)]  # max_train_samples and threshold_min_positives as trained
    assert metrics["bootstrap"]["seed"] == 7  # the training seed, so intervals reproduce
    assert "baselines_skipped" not in metrics


def test_unreadable_training_data_skips_baselines_visibly(model_dir, tmp_path, caplog):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    meta = json.loads((folder / "framing.json").read_text())
    meta["provenance"]["data"]["train"] = str(tmp_path / "gone.jsonl")
    (folder / "framing.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="train.scoring"):
        evaluate(folder, [str(EXAMPLES / "test.jsonl")], tmp_path / "rep", bootstrap=20)
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"lexicon"}
    assert metrics["baselines_skipped"].startswith("tfidf_lr, zero_shot: the training data recorded in framing.json")
    assert "gone.jsonl does not exist" in metrics["baselines_skipped"]
    assert any("baselines skipped: tfidf_lr, zero_shot" in r.getMessage() for r in caplog.records)


def test_seed_falls_back_to_42_without_a_recorded_config():
    bare = SimpleNamespace(meta=FramingMeta(labels=["a"], thresholds={"a": 0.5}, max_length=16))
    assert recorded_setting(bare, "training", "seed") == 42
    bare.meta.provenance = {"training": {"config": {"training": {"seed": 3}}}}
    assert recorded_setting(bare, "training", "seed") == 3


def test_save_pretrained_round_trip_predicts_identically(model_dir, tmp_path):
    clf = FramingClassifier.from_pretrained(model_dir, device="cpu", precision="fp32")
    texts = [json.loads(l)["text"] for l in (EXAMPLES / "dev.jsonl").read_text().splitlines()]
    target = tmp_path / "copy"
    target.mkdir()
    (target / "stale.txt").write_text("from an older model")
    assert clf.save_pretrained(target) == target
    again = FramingClassifier.from_pretrained(target, device="cpu", precision="fp32")
    assert np.array_equal(again.predict_proba(texts), clf.predict_proba(texts))
    assert again.predict(texts) == clf.predict(texts) and again.meta.thresholds == clf.meta.thresholds
    config = json.loads((target / "config.json").read_text())
    assert config["id2label"] == {str(i): l for i, l in enumerate(clf.labels)}
    assert config["label2id"] == {l: i for i, l in enumerate(clf.labels)}
    assert read_meta(target).weights_sha256 == file_sha256(target / "model.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]  # no copy.partial, no copy.old
    assert not (target / "stale.txt").exists()  # the folder was replaced whole


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_save_pretrained_refuses_reduced_precision(model_dir, tmp_path, precision):
    clf = FramingClassifier.from_pretrained(model_dir, device="cpu", precision=precision)
    with pytest.raises(FramingInputError, match=f"runs in {precision}.*Load it with precision='fp32' to save it"):
        clf.save_pretrained(tmp_path / "copy")
    assert not any(tmp_path.iterdir())


def train_imports(path: Path) -> set[str]:
    """Modules of train/ that ``path`` imports, at any depth of the file (lazy imports count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names.update([node.module] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("train."):
            names.add(node.module.split(".")[1])
    return names


def test_train_package_has_no_import_cycle():
    graph = {p.stem: train_imports(p) for p in (ROOT / "train").glob("*.py")}
    assert {"fit", "publish"} <= graph["self_training"]  # the parser sees the imports
    assert "pipeline" not in graph["self_training"]

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for name in graph.get(start, ()):
            if name == target or (name not in seen and reaches(name, target, seen | {name})):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert cycles == []
