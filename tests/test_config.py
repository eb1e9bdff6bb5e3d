from pathlib import Path

import pytest

from train.config import ConfigError, build_config, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads(path):
    cfg = load_config(path)
    assert cfg.data.labels == ["martyrdom", "heroism", "triumph", "loss"]
    assert cfg.model.max_length >= 16


def test_child_config_states_only_what_differs():
    gpu = load_config(CONFIGS[0].parent / "gpu.yaml")
    default = load_config(CONFIGS[0].parent / "default.yaml")
    assert gpu.training.precision == "bf16" and default.training.precision == "fp32"
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
    with pytest.raises(ConfigError, match=r"training\.precision must be one of \['fp32', 'bf16', 'fp16'\], found 'fp8'"):
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
