"""Learning from real labels: extra labelled files added to train, and a cheap update from a trained model."""
import json
from pathlib import Path

import pytest

from infer import FramingClassifier, ModelFolderError, read_meta
from infer.readers import DataError
from train.cli import main
from train.config import ConfigError, load_config
from train.data import data_sha256, load_split
from train.pipeline import load_splits, train
from train.scoring import recorded_splits

from conftest import ROOT, tiny_overrides

TINY = ROOT / "configs" / "tiny.yaml"
# written for these tests: none of them is in data/examples
OWN_LABELS = [
    {"text": "The lighthouse keeper who rowed into the gale to reach the sinking ferry was decorated.",
     "labels": ["heroism"]},
    {"text": "The harvest in the northern valleys surpassed every earlier season.", "labels": ["triumph"]},
    {"text": "The market hall reopened on Tuesday with new opening hours.", "labels": []},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_extra_train_rows_are_added_weighted_and_recorded(tiny_backbone, model_dir, tmp_path):
    extra = write_jsonl(tmp_path / "own.jsonl", OWN_LABELS)
    cfg = load_config(TINY, tiny_overrides(tiny_backbone, tmp_path / "run", f"data.extra_train=[{extra}]",
                                           "data.extra_train_weight=2", "evaluation.baselines=false"))
    model = train(cfg)["model_dir"]
    data = read_meta(model).provenance["data"]
    base = read_meta(model_dir).provenance["data"]["n_train"]
    assert data["n_train"] == base + len(OWN_LABELS) * 2
    assert data["extra_train_weight"] == 2
    expected_sha = data_sha256([load_split(str(extra), cfg.data, "extra_train")])
    assert data["extra_train"] == [{"path": str(extra.resolve()), "n": len(OWN_LABELS), "sha256": expected_sha}]
    # `framing evaluate` refits its baselines on the same rows the model was trained on
    recorded_train, _ = recorded_splits(FramingClassifier.from_pretrained(model))
    assert len(recorded_train) == data["n_train"]


def test_an_extra_sentence_that_is_also_in_dev_is_refused(tmp_path):
    dev_record = json.loads((ROOT / "data" / "examples" / "dev.jsonl").read_text(encoding="utf-8").splitlines()[0])
    extra = write_jsonl(tmp_path / "own.jsonl", OWN_LABELS + [dev_record])
    cfg = load_config(TINY, [f"data.extra_train=[{extra}]"])
    with pytest.raises(DataError, match=r"1 sentence\(s\) of the dev split also appear in train\+extra_train"):
        load_splits(cfg)


def test_extra_train_resolves_against_the_yaml_file_and_weight_is_checked(tmp_path, monkeypatch):
    (tmp_path / "job.yaml").write_text(f"extends: {TINY}\ndata:\n  extra_train: [own.jsonl]\n", encoding="utf-8")
    monkeypatch.chdir(ROOT)
    assert load_config(tmp_path / "job.yaml").data.extra_train == [str(tmp_path / "own.jsonl")]
    with pytest.raises(ConfigError, match="data.extra_train_weight must be >= 1, found 0"):
        load_config(TINY, ["data.extra_train_weight=0"])


def test_init_from_continues_a_trained_model_and_records_it(tiny_backbone, model_dir, tmp_path, capsys):
    out = tmp_path / "update"
    argv = ["train", str(TINY), "--init-from", str(model_dir), "--set", "evaluation.baselines=false"]
    for item in tiny_overrides(tiny_backbone, out):
        argv += ["--set", item]
    assert main(argv) == 0
    provenance = read_meta(out / "model").provenance
    assert provenance["init_from"] == str(model_dir.resolve())
    assert provenance["training"]["steps"] == 2
    assert read_meta(model_dir).provenance["init_from"] is None  # a run from the backbone records none


def test_init_from_a_model_with_other_labels_is_refused(tiny_backbone, model_dir, tmp_path):
    cfg = load_config(TINY, tiny_overrides(tiny_backbone, tmp_path / "run",
                                           "data.labels=[heroism, martyrdom, triumph, loss]"))
    with pytest.raises(ModelFolderError, match=r"predicts labels \['martyrdom', 'heroism', 'triumph', 'loss'\], "
                                               r"but data.labels is \['heroism', 'martyrdom'"):
        train(cfg, init_from=str(model_dir))


def test_init_from_loads_the_model_folders_own_weights_and_tokenizer(model_dir):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from train.fit import load_init_model

    tokenizer, model = load_init_model(str(model_dir), read_meta(model_dir).labels)
    saved = load_file(str(model_dir / "model.safetensors"))
    assert (model.classifier.weight.detach() == saved["classifier.weight"]).all()
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(str(model_dir)).get_vocab()
