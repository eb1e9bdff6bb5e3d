import json
import os
from pathlib import Path

import pytest

from train.backbone import Backbone, check_max_length, resolve_backbone
from train.config import ConfigError, build_config, load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads(path):
    cfg = load_config(path)
    assert cfg.data.labels == ["martyrdom", "heroism", "triumph", "loss"]
    assert cfg.model.max_length >= 16


def test_child_config_states_only_what_differs():
    gpu = load_config(CONFIGS[0].parent / "gpu.yaml")
    default = load_config(CONFIGS[0].parent / "default.yaml")
    assert gpu.training.precision == "bf16" and default.training.precision == "auto"
    assert gpu.training.seed == default.training.seed


def test_override_sets_any_key():
    cfg = load_config(CONFIGS[0].parent / "default.yaml", ["training.epochs=2", "data.labels=[a, b]"])
    assert cfg.training.epochs == 2.0 and isinstance(cfg.training.epochs, float)
    assert cfg.data.labels == ["a", "b"]


def test_unknown_key_suggests_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rat'\. Did you mean 'learning_rate'\?"):
        build_config({"training": {"learning_rat": 1e-4}})


def test_unknown_section_suggests_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'trainig'\. Did you mean 'training'\?"):
        build_config({"trainig": {}})


def test_bad_choice_names_field_and_allowed_values():
    expected = r"training\.precision must be one of \['auto', 'fp32', 'bf16', 'fp16'\], found 'fp8'"
    with pytest.raises(ConfigError, match=expected):
        build_config({"training": {"precision": "fp8"}})


def test_bad_type_names_field():
    with pytest.raises(ConfigError, match=r"training\.batch_size must be int, found 'big'"):
        build_config({"training": {"batch_size": "big"}})


def test_out_of_range_value():
    with pytest.raises(ConfigError, match=r"training\.batch_size must be >= 1, found 0"):
        build_config({"training": {"batch_size": 0}})


def test_none_is_not_a_label():
    with pytest.raises(ConfigError, match="must not include 'none'"):
        build_config({"data": {"labels": ["loss", "none"]}})


def test_malformed_override():
    with pytest.raises(ConfigError, match=r"must look like section\.key=value"):
        load_config(CONFIGS[0].parent / "default.yaml", ["epochs=2"])


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_shipped_config_paths_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "configs" / "dev-real.yaml")
    resolved = lambda value: Path(os.path.normpath(Path(value).absolute()))  # ../shared may be a symlink
    assert resolved(cfg.data.train) == ROOT / "data" / "corpus" / "train.jsonl"
    assert Path(cfg.data.train).is_file() and Path(cfg.data.codebook).is_file()
    assert resolved(cfg.output.dir) == ROOT / "runs" / "dev-real"  # where `make run` and `make figures` look
    assert [resolved(p) for p in cfg.evaluation.extra_sets] == [ROOT.parent / "shared" / "framing" / "dev_real.jsonl"]
    assert cfg.model.backbone == "sentence-transformers/all-MiniLM-L6-v2"  # a hub id is not a path


def test_each_file_in_a_chain_resolves_its_own_paths(tmp_path, monkeypatch):
    (tmp_path / "base" / "local_bert").mkdir(parents=True)
    (tmp_path / "exp").mkdir()
    (tmp_path / "base" / "base.yaml").write_text(
        "data:\n  train: corpus/train.jsonl\n  dev: org/dataset\n  codebook: ../codebook.md\n"
        "model:\n  backbone: local_bert\nadapt:\n  base: sentence-transformers/all-MiniLM-L6-v2\n"
        "output:\n  dir: runs/base\n")
    (tmp_path / "exp" / "child.yaml").write_text(
        "extends: ../base/base.yaml\ndata:\n  test: ./held_out.jsonl\n"
        "self_training:\n  teacher: ../runs/base/model\n  unlabeled: org/pool\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = load_config("../exp/child.yaml", ["output.dir=mine", "adapt.corpus=pool.jsonl"])
    assert cfg.data.train == str(tmp_path / "base" / "corpus" / "train.jsonl")
    assert cfg.data.codebook == str(tmp_path / "codebook.md")
    assert cfg.model.backbone == str(tmp_path / "base" / "local_bert")  # exists beside the file that names it
    assert cfg.data.test == str(tmp_path / "exp" / "held_out.jsonl")
    assert cfg.self_training.teacher == str(tmp_path / "runs" / "base" / "model")
    assert (cfg.data.dev, cfg.self_training.unlabeled) == ("org/dataset", "org/pool")  # hub ids
    assert cfg.adapt.base == "sentence-transformers/all-MiniLM-L6-v2"
    assert (cfg.output.dir, cfg.adapt.corpus) == ("mine", "pool.jsonl")  # --set: relative to the working directory


def test_an_empty_section_in_a_child_changes_nothing(tmp_path):
    (tmp_path / "base.yaml").write_text("evaluation:\n  bootstrap: 77\n  by: [register]\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nevaluation:\ntraining: {}\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.evaluation.bootstrap == 77 and cfg.evaluation.by == ["register"]
    cfg = load_config(tmp_path / "child.yaml", ["evaluation.baselines=false"])
    assert cfg.evaluation.bootstrap == 77 and cfg.evaluation.baselines is False


def test_override_into_an_empty_section(tmp_path):
    (tmp_path / "solo.yaml").write_text("evaluation:\n")
    assert load_config(tmp_path / "solo.yaml", ["evaluation.bootstrap=5"]).evaluation.bootstrap == 5


def test_max_length_beyond_the_backbone_is_a_config_error(tiny_backbone):
    with pytest.raises(ConfigError, match=r"model\.max_length is 1024, but the backbone .* takes at most 256 tokens"):
        resolve_backbone(str(tiny_backbone), max_length=1024)
    assert resolve_backbone(str(tiny_backbone), max_length=256).source == "local"


def test_max_length_limit_subtracts_the_position_offset(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mpnet", "max_position_embeddings": 514}))
    mpnet = Backbone("mpnet", str(tmp_path), "local")
    check_max_length(mpnet, 512)
    with pytest.raises(ConfigError, match=r"takes at most 512 tokens .*--set model\.max_length=128"):
        check_max_length(mpnet, 513)
