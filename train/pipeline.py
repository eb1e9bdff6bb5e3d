"""`train(cfg) -> figures`: the whole job as a recipe, one log line per stage."""
from __future__ import annotations

import datetime as _dt
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers

from infer import FramingClassifier, FramingMeta, write_meta
from infer.atomic import atomic_write_text
from infer.errors import FramingInputError

from .backbone import Backbone, backbone_provenance, resolve_backbone
from .config import Config
from .data import LabelledSet, check_leakage, data_sha256, load_split
from .fit import FitResult, fit, save_weights
from .evaluate import evaluate_sets
from .self_training import adopt_student, self_train
from .thresholds import tune_thresholds

log = logging.getLogger(__name__)


@dataclass
class Splits:
    train: LabelledSet
    dev: LabelledSet
    test: LabelledSet | None


def train(cfg: Config, resume: bool = False) -> dict:
    run_dir = prepare_run_dir(cfg, resume)
    log.info("stage 1/5 data: reading %s, %s, %s", cfg.data.train, cfg.data.dev, cfg.data.test)
    splits = load_splits(cfg)
    log.info("stage 2/5 backbone: resolving %s", cfg.model.backbone)
    backbone = resolve_backbone(cfg.model.backbone)
    log.info("backbone: %s", backbone.describe())
    model_dir = build_model(cfg, backbone, splits, run_dir, resume)
    if model_dir is None:  # a non-zero rank of a distributed run: rank 0 writes and evaluates
        return {}
    log.info("stage 5/5 evaluate: dev, test and extra sets")
    figures = evaluate_after_training(cfg, model_dir, splits, run_dir / "reports")
    summary = {"model_dir": str(model_dir), "reports_dir": str(run_dir / "reports"),
               "sets": {name: _headline(m) for name, m in figures.items()}}
    log.info("done: model folder %s, reports in %s", model_dir, run_dir / "reports")
    return summary


def build_model(cfg: Config, backbone: Backbone, splits: "Splits", run_dir: Path, resume: bool) -> Path | None:
    """Stages 3-4: fine-tune (and self-train if configured); return the finished model folder."""
    model_dir = run_dir / "model"
    st = cfg.self_training
    if st.unlabeled and st.teacher:
        log.info("stages 3-4/5 self-training from teacher %s (no gold-only model is trained)", st.teacher)
        adopt_student(*self_train(cfg, backbone, splits, Path(st.teacher), run_dir), model_dir)
        return model_dir
    log.info("stage 3/5 fit: %d train / %d dev sentences, up to %s epochs", len(splits.train), len(splits.dev),
             cfg.training.epochs)
    result = fit(cfg, backbone, splits.train, splits.dev, resume)
    is_main = result.trainer.is_world_process_zero()
    leave_process_group()
    if not is_main:
        return None
    log.info("stage 4/5 model folder: weights, tokenizer, thresholds tuned on dev")
    write_model_folder(cfg, result, backbone, splits, model_dir)
    if st.unlabeled:
        log.info("stage 4b self-training: %d round(s) on %s", st.rounds, st.unlabeled)
        adopt_student(*self_train(cfg, backbone, splits, model_dir, run_dir), model_dir)
    return model_dir


def leave_process_group() -> None:
    """After a distributed fit, everything left runs on rank 0 alone. Each rank closes its
    process group here: a rank that exits with gloo's threads still running can abort
    ("terminate called without an active exception") and fail the whole torchrun job."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def prepare_run_dir(cfg: Config, resume: bool) -> Path:
    run_dir = Path(cfg.output.dir)
    if (run_dir / "model").exists() and not (resume or cfg.output.overwrite):
        raise FramingInputError(f"{run_dir / 'model'} already exists. Choose another --output, or set "
                                "--set output.overwrite=true to replace it.")
    if cfg.output.overwrite and not resume and (run_dir / "checkpoints").exists():
        shutil.rmtree(run_dir / "checkpoints")  # stale checkpoints would be resumed or mixed in
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def load_splits(cfg: Config) -> Splits:
    train = load_split(cfg.data.train, cfg.data, "train")
    if cfg.data.max_train_samples:
        train = train.head(cfg.data.max_train_samples)
    dev = load_split(cfg.data.dev, cfg.data, "dev")
    test = load_split(cfg.data.test, cfg.data, "test") if cfg.data.test else None
    check_leakage(train, [s for s in (dev, test) if s is not None], cfg.data.leakage)
    return Splits(train, dev, test)


def write_model_folder(cfg: Config, result: FitResult, backbone: Backbone, splits: Splits, folder: Path) -> Path:
    """Weights first into a side folder; thresholds are tuned through the runtime itself;
    the finished folder then replaces any old one in a single rename."""
    partial = folder.with_name(folder.name + ".partial")
    save_weights(result, partial)
    meta = FramingMeta(labels=list(cfg.data.labels), thresholds={l: 0.5 for l in cfg.data.labels},
                       max_length=cfg.model.max_length, codebook_version=codebook_version(cfg.data.codebook),
                       provenance=provenance(cfg, result, backbone, splits, folder))
    write_meta(partial, meta)
    classifier = FramingClassifier.from_pretrained(partial, device="cpu", precision="fp32")
    meta.thresholds = tune_thresholds(splits.dev.y, classifier.predict_proba(splits.dev.texts), meta.labels,
                                      cfg.training.threshold_min_positives)
    meta.metrics = {"dev_during_training": result.best_dev}
    write_meta(partial, meta)
    atomic_write_text(partial / "README.md", model_card(meta, backbone))
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    return folder


def evaluate_after_training(cfg: Config, model_dir: Path, splits: Splits, reports_dir: Path) -> dict:
    classifier = FramingClassifier.from_pretrained(model_dir, precision="fp32")
    sets = {"dev": (splits.dev, cfg.data.dev)}
    if splits.test is not None:
        sets["test"] = (splits.test, cfg.data.test)
    for path in cfg.evaluation.extra_sets:
        if not Path(path).is_file():
            log.warning("evaluation.extra_sets: %s not found, skipped (it is optional; the figures above stand)", path)
            continue
        sets[Path(path).stem] = (load_split(path, cfg.data, Path(path).stem), path)
    figures = evaluate_sets(classifier, sets, reports_dir, by=cfg.evaluation.by, baselines=cfg.evaluation.baselines,
                            bootstrap=cfg.evaluation.bootstrap, seed=cfg.training.seed)
    meta = classifier.meta
    meta.metrics.update({name: _headline(m) for name, m in figures.items()})
    write_meta(model_dir, meta)
    return figures


def _headline(m: dict) -> dict:
    return {"n": m["n"], "macro_f1": round(m["macro_f1"], 4), "macro_f1_ci": [round(x, 4) for x in m["macro_f1_ci"]],
            "micro_f1": round(m["micro_f1"], 4),
            "per_label_f1": {l: round(v["f1"], 4) for l, v in m["per_label"].items()}}


def provenance(cfg: Config, result: FitResult, backbone: Backbone, splits: Splits, folder: Path) -> dict:
    return {
        "model_dir": str(folder.resolve()),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "backbone": backbone_provenance(backbone),
        "data": {"train": str(Path(cfg.data.train).resolve()), "dev": str(Path(cfg.data.dev).resolve()),
                 "test": str(Path(cfg.data.test).resolve()) if cfg.data.test else None,
                 "text_field": cfg.data.text_field, "labels_field": cfg.data.labels_field,
                 "sha256": data_sha256([s for s in (splits.train, splits.dev, splits.test) if s is not None]),
                 "n_train": len(splits.train), "n_dev": len(splits.dev)},
        "training": {"epochs_run": result.epochs_run, "steps": result.steps, "config": cfg.to_dict()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def codebook_version(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        return "unknown"
    match = re.search(r"version\s+([0-9]+(?:\.[0-9]+)*)", file.read_text(encoding="utf-8")[:2000], re.I)
    return match.group(1) if match else "unknown"


def git_commit() -> str | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def model_card(meta: FramingMeta, backbone: Backbone) -> str:
    dev = meta.metrics.get("dev_during_training", {})
    thresholds = ", ".join(f"{l} {t:.2f}" for l, t in meta.thresholds.items())
    return (
        "# state-media-framing model\n\n"
        f"Multi-label sentence classifier for the frames {', '.join(meta.labels)} "
        f"(codebook version {meta.codebook_version}). Fine-tuned from `{backbone.name}` ({backbone.source}).\n\n"
        "```python\nfrom infer import FramingClassifier\nclf = FramingClassifier.from_pretrained(\"PATH\")\n"
        "clf.predict(\"The nation mourned the heroes who gave their lives.\")\n```\n\n"
        f"- max length: {meta.max_length} tokens (longer sentences are scored in overlapping windows)\n"
        f"- thresholds tuned on dev: {thresholds}\n"
        f"- dev macro-F1 at 0.5 during training: {dev.get('macro_f1_at_0.5', float('nan')):.3f}\n"
        f"- training data sha256: {meta.provenance.get('data', {}).get('sha256')}\n"
        f"- git commit: {meta.provenance.get('git_commit')}\n\n"
        "Evaluation figures are in `framing.json` and in the run's `reports/` folder. The weights are "
        "safetensors; plain `transformers.AutoModelForSequenceClassification` loads this folder, but only "
        "`FramingClassifier` applies the tuned thresholds and the long-sentence windows.\n"
    )
