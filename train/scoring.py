"""Evaluation through the runtime (``infer.FramingClassifier``), so it scores exactly what users run."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from infer import FramingClassifier
from infer.readers import DataError

from .baselines import LexiconBaseline, TfidfBaseline, ZeroShotBaseline
from .config import Config, DataConfig
from .data import LabelledSet, load_split, with_extra_train
from .metrics import binarise, bootstrap_f1, classification_metrics, paired_comparison, reliability

log = logging.getLogger(__name__)


@dataclass
class Scored:
    """One system's probabilities and thresholds on one set."""

    name: str
    probs: np.ndarray
    thresholds: list[float]

    @property
    def predictions(self) -> np.ndarray:
        return binarise(self.probs, self.thresholds)


@dataclass
class SetReport:
    data: LabelledSet
    source: str
    model: Scored
    metrics: dict
    baselines: list[Scored] = field(default_factory=list)
    compared: Scored | None = None


def data_config_for(classifier: FramingClassifier, text_field: str = "text",
                    labels_field: str = "labels") -> DataConfig:
    return DataConfig(labels=classifier.labels, text_field=text_field, labels_field=labels_field)


@dataclass
class Baselines:
    """The baselines fitted for a report, and which could not be fitted and why (None: all were)."""

    fitted: list = field(default_factory=list)
    skipped: str | None = None


def fit_baselines(classifier: FramingClassifier, train: LabelledSet, dev: LabelledSet, min_positives: int) -> Baselines:
    """Fit the baselines on the model's own training split and tune their thresholds on its dev
    split with the model's own min-positives rule, so the comparison isolates what fine-tuning adds."""
    fitted = [TfidfBaseline().fit(train, dev, min_positives), LexiconBaseline(classifier.labels)]
    location = classifier.meta.provenance.get("backbone", {}).get("location")
    if not (location and Path(location).is_dir()):
        return Baselines(fitted, skipped_baselines("zero_shot", f"its backbone folder {location} is not here"))
    zero_shot = ZeroShotBaseline(location, classifier.labels, classifier.meta.max_length)
    return Baselines(fitted + [zero_shot.fit(train, dev, min_positives)])


def recorded_baselines(classifier: FramingClassifier) -> Baselines:
    """For a model evaluated on its own (no splits in memory): the baselines are fitted on the
    training data its framing.json records, cut and tuned as training did."""
    try:
        train, dev = recorded_splits(classifier)
    except DataError as exc:
        reason = f"the training data recorded in framing.json cannot be read here ({exc})"
        return Baselines([LexiconBaseline(classifier.labels)], skipped_baselines("tfidf_lr, zero_shot", reason))
    return fit_baselines(classifier, train, dev, recorded_setting(classifier, "training", "threshold_min_positives"))


def recorded_splits(classifier: FramingClassifier) -> tuple[LabelledSet, LabelledSet]:
    data = classifier.meta.provenance.get("data", {})
    if not (data.get("train") and data.get("dev")):
        raise DataError("its provenance names no train and dev data")
    cfg = DataConfig(labels=classifier.labels, **{key: recorded_setting(classifier, "data", key)
                                                  for key in ("text_field", "labels_field", "csv_separator")})
    train = load_split(data["train"], cfg, "train")
    limit = recorded_setting(classifier, "data", "max_train_samples")
    extras = [load_split(extra["path"], cfg, "extra_train") for extra in data.get("extra_train", [])]
    train = with_extra_train(train.head(limit) if limit else train, extras, data.get("extra_train_weight", 1))
    return train, load_split(data["dev"], cfg, "dev")


def recorded_setting(classifier: FramingClassifier, section: str, key: str):
    """A setting of the config the model was trained with, as framing.json records it, else its default."""
    recorded = classifier.meta.provenance.get("training", {}).get("config", {}).get(section, {})
    return recorded[key] if key in recorded else getattr(getattr(Config(), section), key)


def skipped_baselines(names: str, reason: str) -> str:
    log.warning("baselines skipped: %s, because %s", names, reason)
    return f"{names}: {reason}"


def score_set(classifier: FramingClassifier, data: LabelledSet, source: str, baselines=(),
              other: FramingClassifier | None = None, bootstrap: int = 1000, seed: int = 0,
              by: Sequence[str] = ()) -> SetReport:
    """All figures for one labelled set: the model, its baselines, an optional second model."""
    model = Scored("model", classifier.predict_proba(data.texts, progress=True), classifier.meta.threshold_vector())
    scored_baselines = [Scored(b.name, b.predict_proba(data.texts), list(b.thresholds)) for b in baselines]
    compared = (Scored("compared", other.predict_proba(data.texts), other.meta.threshold_vector())
                if other is not None else None)
    metrics = figures(data, model, scored_baselines, compared, bootstrap, seed, by)
    return SetReport(data, source, model, metrics, scored_baselines, compared)


def figures(data: LabelledSet, model: Scored, baselines: list[Scored], compared: Scored | None,
            bootstrap: int, seed: int, by: Sequence[str]) -> dict:
    y = data.y.astype(np.int8)
    metrics = classification_metrics(y, model.probs, model.thresholds, data.labels)
    ci = bootstrap_f1(y, model.predictions, bootstrap, seed)
    metrics["macro_f1_ci"] = ci["macro_f1"]
    for j, label in enumerate(data.labels):
        metrics["per_label"][label]["f1_ci"] = ci["per_label_f1"][j]
    metrics["at_0.5"] = classification_metrics(y, model.probs, [0.5] * len(data.labels), data.labels)
    metrics["calibration"] = {l: reliability(y[:, j], model.probs[:, j]) for j, l in enumerate(data.labels)}
    metrics["baselines"] = {b.name: baseline_figures(y, model, b, bootstrap, seed) for b in baselines}
    if compared is not None:
        metrics["compare"] = paired_comparison(y, model.predictions, compared.predictions, bootstrap, seed)
        metrics["compare"]["other_macro_f1"] = classification_metrics(
            y, compared.probs, compared.thresholds, data.labels)["macro_f1"]
    metrics["slices"] = {f: slice_figures(data, model, f) for f in by if has_field(data, f)}
    metrics["bootstrap"] = {"n_resamples": bootstrap, "seed": seed}
    return metrics


def baseline_figures(y: np.ndarray, model: Scored, baseline: Scored, bootstrap: int, seed: int) -> dict:
    point = classification_metrics(y, baseline.probs, baseline.thresholds, [str(j) for j in range(y.shape[1])])
    ci = bootstrap_f1(y, baseline.predictions, bootstrap, seed)
    return {
        "macro_f1": point["macro_f1"], "macro_f1_ci": ci["macro_f1"],
        "per_label_f1": [v["f1"] for v in point["per_label"].values()], "per_label_f1_ci": ci["per_label_f1"],
        "thresholds": baseline.thresholds,
        "model_gain": paired_comparison(y, model.predictions, baseline.predictions, bootstrap, seed),
    }


def has_field(data: LabelledSet, field_name: str) -> bool:
    present = any(field_name in m for m in data.meta)
    if not present:
        log.info("slices by %r skipped for %s: no record has that field", field_name, data.name)
    return present


def slice_figures(data: LabelledSet, model: Scored, field_name: str) -> dict:
    values = [str(m.get(field_name, "<missing>")) for m in data.meta]
    out = {}
    for value in sorted(set(values)):
        idx = np.array([i for i, v in enumerate(values) if v == value])
        sub = classification_metrics(data.y[idx].astype(np.int8), model.probs[idx], model.thresholds, data.labels)
        out[value] = {"n": len(idx), "macro_f1": sub["macro_f1"], "micro_f1": sub["micro_f1"],
                      "per_label_f1": {l: sub["per_label"][l]["f1"] for l in data.labels}}
    return out
