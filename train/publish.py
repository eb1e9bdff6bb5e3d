"""The model folder's one owner. Publishing tunes the thresholds on the trained model in memory,
evaluates it, and only then writes the folder, once: staged beside its place and swapped in whole."""
from __future__ import annotations

import datetime as _dt
import logging
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers

from infer import FramingClassifier, FramingMeta

from .backbone import Backbone, backbone_provenance
from .config import Config
from .data import LabelledSet, data_sha256, load_split
from .evaluate import evaluate_sets, set_names
from .fit import FitResult
from .scoring import fit_baselines
from .thresholds import tune_thresholds

log = logging.getLogger(__name__)


@dataclass
class Splits:
    train: LabelledSet
    dev: LabelledSet
    test: LabelledSet | None
    extra_train: list[LabelledSet] = field(default_factory=list)  # already inside train; kept for provenance

    def present(self) -> list[LabelledSet]:
        return [s for s in (self.train, self.dev, self.test) if s is not None]


def publish(cfg: Config, result: FitResult, backbone: Backbone, splits: Splits, folder: Path, reports_dir: Path,
            self_training: dict | None = None) -> dict[str, dict]:
    """Tune thresholds, write the dev, test and extra-set reports, then write the model folder
    with those figures in it. Returns the headline figures per set."""
    classifier = tuned_classifier(cfg, result, splits.dev)
    meta = classifier.meta
    meta.provenance = provenance(cfg, result, backbone, splits, folder)
    if self_training is not None:
        meta.provenance["self_training"] = self_training
    baselines = (fit_baselines(classifier, splits.train, splits.dev, cfg.training.threshold_min_positives)
                 if cfg.evaluation.baselines else None)
    figures = evaluate_sets(classifier, evaluation_sets(cfg, splits), reports_dir, by=cfg.evaluation.by,
                            baselines=baselines, bootstrap=cfg.evaluation.bootstrap, seed=cfg.training.seed)
    headlines = {name: headline(m) for name, m in figures.items()}
    meta.metrics.update(headlines)
    classifier.save_pretrained(folder, model_card=model_card(meta, backbone))
    return headlines


def tuned_classifier(cfg: Config, result: FitResult, dev: LabelledSet) -> FramingClassifier:
    """The trained model as the runtime runs it (fp32, on the training device), its thresholds
    tuned on dev. Nothing is reloaded from disk: the weights scored here are the ones published."""
    labels = list(cfg.data.labels)
    meta = FramingMeta(labels=labels, thresholds={l: 0.5 for l in labels}, max_length=cfg.model.max_length,
                       codebook_version=codebook_version(cfg.data.codebook),
                       metrics={"dev_during_training": result.best_dev})
    # score where training ran (the GPU when there was one); fp32 so the figures are exact
    classifier = FramingClassifier(result.trainer.model, result.tokenizer, meta, device=result.trainer.args.device,
                                   precision="fp32")
    meta.thresholds = tune_thresholds(dev.y, classifier.predict_proba(dev.texts), labels,
                                      cfg.training.threshold_min_positives)
    return classifier


def evaluation_sets(cfg: Config, splits: Splits) -> dict[str, tuple[LabelledSet, str]]:
    sets = {"dev": (splits.dev, cfg.data.dev)}
    if splits.test is not None:
        sets["test"] = (splits.test, cfg.data.test)
    present = [p for p in cfg.evaluation.extra_sets if Path(p).is_file()]
    for path in sorted(set(cfg.evaluation.extra_sets) - set(present)):
        log.warning("evaluation.extra_sets: %s not found, skipped (it is optional; the figures above stand)", path)
    # an extra file called test.jsonl must not overwrite the test report
    for name, path in zip(set_names(present, taken=list(sets)), present):
        sets[name] = (load_split(path, cfg.data, name), path)
    return sets


def headline(m: dict) -> dict:
    return {"n": m["n"], "macro_f1": round(m["macro_f1"], 4), "macro_f1_ci": [round(x, 4) for x in m["macro_f1_ci"]],
            "micro_f1": round(m["micro_f1"], 4),
            "per_label_f1": {l: round(v["f1"], 4) for l, v in m["per_label"].items()}}


def provenance(cfg: Config, result: FitResult, backbone: Backbone, splits: Splits, folder: Path) -> dict:
    return {
        "model_dir": str(folder.resolve()),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "backbone": backbone_provenance(backbone),
        "data": {"train": data_source(cfg.data.train), "dev": data_source(cfg.data.dev),
                 "test": data_source(cfg.data.test),
                 "text_field": cfg.data.text_field, "labels_field": cfg.data.labels_field,
                 "sha256": data_sha256(splits.present()), "n_train": len(splits.train), "n_dev": len(splits.dev),
                 "extra_train": [extra_source(path, s) for path, s in zip(cfg.data.extra_train, splits.extra_train)],
                 "extra_train_weight": cfg.data.extra_train_weight},
        "init_from": data_source(result.init_from),
        "training": {"epochs_run": result.epochs_run, "steps": result.steps, "precision": mixed_precision(result),
                     "config": cfg.to_dict()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def mixed_precision(result: FitResult) -> str:
    """What training ran in, "auto" resolved."""
    args = result.trainer.args
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"


def data_source(source: str | None) -> str | None:
    """A local file or folder is recorded by its absolute path, a hub id as given, so that
    `framing evaluate` can read it again to fit the baselines."""
    if source is None or not Path(source).exists():
        return source
    return str(Path(source).resolve())


def extra_source(path: str, rows: LabelledSet) -> dict:
    return {"path": data_source(path), "n": len(rows), "sha256": data_sha256([rows])}


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
