"""End to end through the `framing` CLI: train (the session fixture), evaluate, predict, resume."""
import json
from pathlib import Path

import pytest

from train.cli import main

from conftest import ROOT, tiny_overrides

EXAMPLES = ROOT / "data" / "examples"


def test_train_summary_points_at_outputs(trained_run):
    assert Path(trained_run["model_dir"], "model.safetensors").is_file()
    assert set(trained_run["sets"]) == {"dev", "test"}
    for name in ("dev", "test"):
        metrics = json.loads(Path(trained_run["reports_dir"], name, "metrics.json").read_text())
        assert 0.0 <= metrics["macro_f1"] <= 1.0


def test_evaluate_cli_writes_metrics(model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", str(model_dir), str(EXAMPLES / "test.jsonl"), "--out", str(out),
                 "--bootstrap", "50"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"macro_f1", "micro_f1", "per_label"} <= set(metrics)
    for label in ("martyrdom", "heroism", "triumph", "loss"):
        assert {"precision", "recall", "f1", "support"} <= set(metrics["per_label"][label])
    assert (out / "report.md").read_text().startswith("# Evaluation on `test`")
    assert "macro-F1" in capsys.readouterr().out


def test_predict_cli_jsonl(model_dir, tmp_path):
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(model_dir), "--input", str(EXAMPLES / "dev.jsonl"), "--output", str(out),
                 "--precision", "fp32"]) == 0
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(rows) == len((EXAMPLES / "dev.jsonl").read_text().splitlines())
    assert set(rows[0]["scores"]) == {"martyrdom", "heroism", "triumph", "loss"}
    assert isinstance(rows[0]["labels"], list)


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  epocs: 3\n")
    assert main(["train", str(bad)]) == 2
    assert "unknown key 'epocs'. Did you mean 'epochs'?" in capsys.readouterr().err


def test_existing_model_is_not_overwritten(trained_run, tiny_backbone, capsys):
    out = Path(trained_run["model_dir"]).parent
    args = ["train", str(ROOT / "configs" / "tiny.yaml")]
    for item in tiny_overrides(tiny_backbone, out):
        args += ["--set", item]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err


def test_resume_continues_from_last_checkpoint(tiny_backbone, tmp_path):
    """A run stopped after 2 of its steps (a checkpoint on disk, no model folder yet)
    continues from that checkpoint instead of starting over."""
    from train.config import load_config
    from train.pipeline import train

    steps = ["training.eval_every=steps", "training.eval_steps=2", "training.save_total_limit=5",
             "evaluation.baselines=false"]
    first = tiny_overrides(tiny_backbone, tmp_path, *steps)
    train(load_config(ROOT / "configs" / "tiny.yaml", first))
    checkpoints = tmp_path / "checkpoints"
    assert (checkpoints / "checkpoint-2").is_dir()
    import shutil
    shutil.rmtree(tmp_path / "model")  # as if killed before the model folder was written
    longer = first + ["training.max_steps=4"]
    with pytest.raises(Exception, match="holds no checkpoint"):
        train(load_config(ROOT / "configs" / "tiny.yaml", tiny_overrides(tiny_backbone, tmp_path / "fresh")),
              resume=True)
    summary = train(load_config(ROOT / "configs" / "tiny.yaml", longer), resume=True)
    state = json.loads((checkpoints / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == [1, 2, 3, 4]  # steps 1-2 come from the first run's state, not a retrain
    meta = json.loads(Path(summary["model_dir"], "framing.json").read_text())
    assert meta["provenance"]["training"]["steps"] == 4
