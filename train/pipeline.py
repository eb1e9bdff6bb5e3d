"""`train(cfg) -> figures`: the whole job as a recipe, one log line per stage."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from infer import FramingClassifier
from infer.errors import FramingInputError

from .backbone import Backbone, resolve_backbone
from .config import Config
from .data import check_leakage, load_split, with_extra_train
from .fit import FitResult, fit
from .publish import Splits, publish, tuned_classifier
from .self_training import self_train

log = logging.getLogger(__name__)


def train(cfg: Config, resume: bool = False, init_from: str | None = None) -> dict:
    """Fine-tune a backbone on labelled sentences, tune its thresholds on dev, evaluate, and
    write the run folder ``cfg.output.dir``: ``model/`` (what ``FramingClassifier`` loads) and
    ``reports/`` (one report per set).

    Args:
        cfg: the whole job, usually from ``load_config("configs/default.yaml", overrides)``.
        resume: continue from the last checkpoint in the run folder instead of starting over.
        init_from: a model folder whose weights and tokenizer training starts from instead of the
            backbone's: a cheap update with new labels (e.g. ``training.epochs=1``).

    Returns:
        ``{"model_dir": str, "reports_dir": str, "sets": {name: {n, macro_f1, macro_f1_ci,
        micro_f1, per_label_f1}}}`` for dev, test and each extra set; ``{}`` on a non-zero rank of a
        distributed run, since rank 0 writes everything.

    Example::

        >>> from train.config import load_config
        >>> summary = train(load_config("configs/tiny.yaml", ["training.max_steps=2"]))
        >>> sorted(summary["sets"]), summary["model_dir"]
        (['dev', 'test'], '.../runs/tiny/model')
    """
    if init_from and cfg.self_training.unlabeled:
        raise FramingInputError("--init-from continues one model and does not combine with self-training; set "
                                "self_training.unlabeled: null, or use self_training.teacher to start from a model.")
    run_dir = prepare_run_dir(cfg, resume)
    log.info("stage 1/5 data: reading %s, %s, %s", cfg.data.train, cfg.data.dev, cfg.data.test)
    splits = load_splits(cfg)
    log.info("stage 2/5 backbone: resolving %s", cfg.model.backbone)
    backbone = resolve_backbone(cfg.model.backbone, cfg.model.max_length)
    log.info("backbone: %s", backbone.describe())
    trained = build_model(cfg, backbone, splits, run_dir, resume, init_from)
    if trained is None:  # a non-zero rank of a distributed run: rank 0 evaluates and publishes
        return {}
    result, self_training = trained
    model_dir, reports_dir = run_dir / "model", run_dir / "reports"
    log.info("stage 5/5 publish: thresholds tuned on dev, dev/test/extra sets evaluated, then %s written", model_dir)
    sets = publish(cfg, result, backbone, splits, model_dir, reports_dir, self_training)
    log.info("done: model folder %s, reports in %s", model_dir, reports_dir)
    return {"model_dir": str(model_dir), "reports_dir": str(reports_dir), "sets": sets}


def build_model(cfg: Config, backbone: Backbone, splits: Splits, run_dir: Path, resume: bool,
                init_from: str | None = None) -> tuple[FitResult, dict | None] | None:
    """Stages 3-4: fine-tune, then self-train if configured. Returns the model to publish and
    its self-training record (None without self-training); None on a non-zero rank."""
    st = cfg.self_training
    if st.unlabeled and st.teacher:
        log.info("stages 3-4/5 self-training from teacher %s (no gold-only model is trained)", st.teacher)
        return self_train(cfg, backbone, splits, FramingClassifier.from_pretrained(st.teacher, precision="fp32"),
                          run_dir)
    log.info("stage 3/5 fit: %d train / %d dev sentences, up to %s epochs", len(splits.train), len(splits.dev),
             cfg.training.epochs)
    result = fit(cfg, backbone, splits.train, splits.dev, resume, init_from)
    is_main = result.trainer.is_world_process_zero()
    leave_process_group()
    if not is_main:
        return None
    if not st.unlabeled:
        return result, None
    log.info("stage 4/5 self-training: %d round(s) on %s, the gold-only model as first teacher", st.rounds,
             st.unlabeled)
    return self_train(cfg, backbone, splits, tuned_classifier(cfg, result, splits.dev), run_dir)


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
    extras = [load_split(path, cfg.data, "extra_train") for path in cfg.data.extra_train]
    dev = load_split(cfg.data.dev, cfg.data, "dev")
    test = load_split(cfg.data.test, cfg.data, "test") if cfg.data.test else None
    # checked with each extra row once, so up-sampled copies are not reported as repeats
    check_leakage(with_extra_train(train, extras, 1), [s for s in (dev, test) if s is not None], cfg.data.leakage)
    train = with_extra_train(train, extras, cfg.data.extra_train_weight)
    if extras:
        log.info("data: %d extra_train row(s) x %d -> %d train rows", sum(map(len, extras)),
                 cfg.data.extra_train_weight, len(train))
    return Splits(train, dev, test, extras)
