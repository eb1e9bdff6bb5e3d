"""Run configuration: one typed dataclass per concern, loaded from YAML and validated at load.

A config file may start with ``extends: other.yaml`` and then state only what
differs; an empty section changes nothing. ``--set section.key=value`` overrides any
key from the command line. Unknown keys are errors that suggest the nearest valid key.

A relative path in a YAML file is relative to that file's folder, so a config works
from any working directory; a ``--set`` value stays relative to the working directory.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from infer.errors import FramingInputError

DEFAULT_LABELS = ["martyrdom", "heroism", "triumph", "loss"]
# Fields that always name a local file or folder.
LOCAL_PATHS = {"data.codebook", "data.extra_train", "evaluation.extra_sets", "output.dir", "self_training.teacher",
               "adapt.output"}
# Fields that name a local path or a hub id: resolved only when the value looks like a path.
PATH_OR_HUB = {"data.train", "data.dev", "data.test", "model.backbone", "self_training.unlabeled", "adapt.corpus",
               "adapt.base"}
# A value with one of these endings is a local file even before it exists.
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt", ".md", ".yaml")


class ConfigError(FramingInputError):
    """A config file or override is invalid."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class DataConfig:
    train: str = _f("data/corpus/train.jsonl", "Training split: JSONL, CSV, Parquet, a save_to_disk folder or a hub id.")
    dev: str = _f("data/corpus/dev.jsonl", "Dev split: early stopping and threshold tuning.")
    test: str | None = _f("data/corpus/test.jsonl", "Held-out test split, evaluated once at the end (null to skip).")
    labels: list[str] = _f(DEFAULT_LABELS, "The label set, in column order. An empty list in the data means none.")
    text_field: str = _f("text", "Column holding the sentence.")
    labels_field: str = _f("labels", "Column holding the list of labels (';'-separated in CSV).")
    csv_separator: str = _f(";", "Separator of labels inside one CSV cell.")
    leakage: Literal["error", "warn"] = _f("error", "What to do when a sentence is in train and dev/test, in dev and "
                                                    "test, or twice in train with different labels.")
    max_train_samples: int | None = _f(None, "Use only the first N training rows (smoke tests).")
    extra_train: list[str] = _f([], "More labelled files in the splits' format (e.g. your own outlet's labels), "
                                    "added to train and leakage-checked against dev/test like it.")
    extra_train_weight: int = _f(1, "Each extra_train row is repeated this many times (1 = no up-sampling).")
    codebook: str = _f("data/codebook.md", "Codebook whose version is recorded in the model folder.")


@dataclass
class ModelConfig:
    backbone: str = _f("sentence-transformers/all-MiniLM-L6-v2",
                       "Packaged model name, local folder, or hub id (hub needs a network).")
    max_length: int = _f(128, "Tokens per window; longer sentences are scored in overlapping windows.")


@dataclass
class TrainingConfig:
    epochs: float = _f(8.0, "Maximum epochs; early stopping usually ends sooner.")
    batch_size: int = _f(16, "Training batch size per device.")
    eval_batch_size: int = _f(64, "Evaluation batch size per device.")
    learning_rate: float = _f(5e-5, "Peak AdamW learning rate.")
    weight_decay: float = _f(0.01, "AdamW weight decay.")
    warmup_ratio: float = _f(0.1, "Share of steps for linear warm-up.")
    gradient_accumulation_steps: int = _f(1, "Batches accumulated per optimizer step.")
    seed: int = _f(42, "Seed for initialisation, shuffling and dropout.")
    pos_weight: Literal["none", "auto"] = _f("auto", "Per-label BCE positive weight: 'auto' = sqrt(neg/pos), capped at 10.")
    group_by_length: bool = _f(False, "Batch sentences of similar length (shuffled in groups of 50 batches): "
                                      "far less padding, so each step costs less.")
    early_stopping_patience: int = _f(2, "Evaluations without dev macro-F1 gain before stopping (0 = off).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = _f(
        "fp32", "Mixed precision (fp32 master weights): bf16, fp16 (GPU), or auto = bf16 where the GPU or CPU "
                "computes it natively (AVX512-BF16/AMX), else fp32.")
    eval_every: Literal["epoch", "steps"] = _f("epoch", "When to evaluate on dev and save a checkpoint.")
    eval_steps: int = _f(200, "Steps between evaluations when eval_every is 'steps'.")
    save_total_limit: int = _f(2, "Checkpoints kept on disk (the best is always kept).")
    max_steps: int = _f(-1, "Stop after this many optimizer steps (-1 = use epochs).")
    logging_steps: int = _f(20, "Steps between loss log lines.")
    dataloader_workers: int = _f(0, "DataLoader worker processes (0 = load in the main process).")
    threshold_min_positives: int = _f(5, "Below this many dev positives a label keeps threshold 0.5.")
    use_cpu: bool = _f(False, "Force CPU even when a GPU is visible.")


@dataclass
class EvaluationConfig:
    extra_sets: list[str] = _f([], "Extra labelled files evaluated after training; missing files are skipped with a message.")
    bootstrap: int = _f(1000, "Bootstrap resamples for confidence intervals.")
    by: list[str] = _f([], "Metadata fields to slice metrics by, e.g. register.")
    baselines: bool = _f(True, "Fit and report the TF-IDF and lexicon baselines beside the model.")


@dataclass
class OutputConfig:
    dir: str = _f("runs/default", "Run folder: checkpoints/, model/ and reports/ go here.")
    overwrite: bool = _f(False, "Allow writing into a run folder that already holds a model.")


@dataclass
class SelfTrainingConfig:
    unlabeled: str | None = _f(None, "Unlabelled sentences (JSONL/CSV/Parquet/txt) to pseudo-label; null = off.")
    text_field: str = _f("text", "Column holding the sentence in the unlabelled file.")
    rounds: int = _f(1, "Teacher -> pseudo-labels -> student rounds.")
    teacher: str | None = _f(None, "Model folder to use as the first teacher (default: train one on the gold data).")
    min_confidence: float = _f(0.9, "A label is pseudo-positive above this probability, pseudo-negative below 1 - it.")
    max_per_label: int = _f(400, "At most this many pseudo-positives per label per round.")
    max_fraction: float = _f(0.5, "Pseudo-labelled rows at most this fraction of the gold training rows.")
    max_unlabeled: int | None = _f(None, "Score only the first N unlabelled sentences (time bound).")


@dataclass
class AdaptConfig:
    corpus: str | None = _f(None, "Unlabelled corpus for domain adaptation (JSONL with a text field, or .txt).")
    base: str | None = _f(None, "Backbone to adapt (default: model.backbone).")
    text_field: str = _f("text", "Column holding the sentence.")
    method: Literal["simcse", "mlm"] = _f("simcse", "simcse for sentence-embedding backbones, mlm for MLM-pretrained ones.")
    output: str = _f("runs/adapted/backbone", "Folder the adapted backbone is written to.")
    max_steps: int = _f(500, "Optimizer steps (the bound on compute).")
    max_sentences: int | None = _f(None, "Use only the first N sentences of the corpus.")
    batch_size: int = _f(32, "Sentences per batch (SimCSE: in-batch negatives, so bigger is better).")
    learning_rate: float = _f(2e-5, "Peak learning rate.")
    mlm_probability: float = _f(0.15, "Share of tokens masked (mlm only).")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (following ``extends:``), apply ``key=value`` overrides, validate."""
    raw = _read_yaml_chain(Path(path), seen=())
    for item in overrides or []:
        _apply_override(raw, item)
    return build_config(raw, source=str(path))


def build_config(raw: dict[str, Any], source: str = "<dict>") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, found {type(raw).__name__}.")
    _check_keys(raw, Config, source)
    sections = {}
    for f in dataclasses.fields(Config):
        section = raw.get(f.name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: section {f.name!r} must be a mapping, found {section!r}.")
        cls = f.default_factory
        _check_keys(section, cls, f"{source}: {f.name}")
        values = {k: _coerce(v, _hints(cls)[k], f"{f.name}.{k}", source) for k, v in section.items()}
        sections[f.name] = cls(**values)
    cfg = Config(**sections)
    _validate(cfg, source)
    return cfg


def _read_yaml_chain(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist. Configs live in configs/, e.g. configs/default.yaml.")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'extends' forms a cycle through {[str(p) for p in seen]}.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top, found {type(raw).__name__}.")
    parent = raw.pop("extends", None)
    _resolve_paths(raw, path.absolute().parent)
    if parent is None:
        return raw
    base = _read_yaml_chain(path.parent / parent, seen + (path.resolve(),))
    return _merge(base, raw)


def _resolve_paths(raw: dict[str, Any], folder: Path) -> None:
    """Rewrite one file's relative paths, in place, as absolute paths under that file's folder."""
    for dotted in sorted(LOCAL_PATHS | PATH_OR_HUB):
        section, key = dotted.split(".")
        values = raw.get(section)
        if not isinstance(values, dict) or not values.get(key):
            continue  # absent or empty; a wrong type is reported by build_config
        always = dotted in LOCAL_PATHS
        value = values[key]
        values[key] = ([_resolved(v, folder, always) for v in value] if isinstance(value, list)
                       else _resolved(value, folder, always))


def _resolved(value: Any, folder: Path, always: bool) -> Any:
    if not isinstance(value, str) or Path(value).expanduser().is_absolute():
        return value
    looks_local = (value in (".", "..") or value.startswith(("./", "../")) or (folder / value).exists()
                   or value.lower().endswith(DATA_SUFFIXES))
    return os.path.normpath(folder / value) if always or looks_local else value


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if value is None and isinstance(out.get(key), dict):
            continue  # `evaluation:` with nothing under it changes nothing, it does not reset the section
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _apply_override(raw: dict[str, Any], item: str) -> None:
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"Override {item!r} must look like section.key=value, e.g. training.epochs=2.")
    dotted, text = item.split("=", 1)
    section, key = dotted.split(".", 1)
    value = yaml.safe_load(text) if text != "" else ""
    if raw.get(section) is None:
        raw[section] = {}
    if not isinstance(raw[section], dict):
        raise ConfigError(f"Override {item!r}: {section!r} is not a section.")
    raw[section][key] = value


def _check_keys(mapping: dict[str, Any], cls: type, where: str) -> None:
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in mapping:
        if key not in valid:
            near = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{where}: unknown key {key!r}.{hint} Valid keys: {', '.join(valid)}.")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, name: str, source: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted where floats are expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name, source)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: {name} must be one of {list(args)}, found {value!r}.")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {name} must be a list, found {value!r}.")
        return [_coerce(v, args[0], f"{name}[{i}]", source) for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 5e-5 as a string
        except ValueError:
            pass
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {name} must be {hint.__name__}, found {value!r} ({type(value).__name__}).")
    return value


def _validate(cfg: Config, source: str) -> None:
    t = cfg.training
    positive = {"training.batch_size": t.batch_size, "training.eval_batch_size": t.eval_batch_size,
                "training.gradient_accumulation_steps": t.gradient_accumulation_steps,
                "training.logging_steps": t.logging_steps, "training.eval_steps": t.eval_steps,
                "evaluation.bootstrap": cfg.evaluation.bootstrap,
                "data.extra_train_weight": cfg.data.extra_train_weight}
    for name, value in positive.items():
        if value < 1:
            raise ConfigError(f"{source}: {name} must be >= 1, found {value}.")
    if t.epochs <= 0 and t.max_steps <= 0:
        raise ConfigError(f"{source}: training.epochs must be > 0 (or set training.max_steps), found {t.epochs}.")
    if not 0 < t.learning_rate < 1:
        raise ConfigError(f"{source}: training.learning_rate must be in (0, 1), found {t.learning_rate}.")
    if not 0 <= t.warmup_ratio < 1:
        raise ConfigError(f"{source}: training.warmup_ratio must be in [0, 1), found {t.warmup_ratio}.")
    if not 16 <= cfg.model.max_length <= 8192:
        raise ConfigError(f"{source}: model.max_length must be in [16, 8192], found {cfg.model.max_length}.")
    labels = cfg.data.labels
    if not labels or len(set(labels)) != len(labels) or "none" in labels:
        raise ConfigError(f"{source}: data.labels must be distinct, non-empty names and must not include 'none' "
                          f"(an empty label list means none); found {labels}.")
    if cfg.data.max_train_samples is not None and cfg.data.max_train_samples < 1:
        raise ConfigError(f"{source}: data.max_train_samples must be >= 1 or null, found {cfg.data.max_train_samples}.")
