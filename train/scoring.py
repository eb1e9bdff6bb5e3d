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
from .config import DataConfig
from .data import LabelledSet, load_split
from .metrics import binarise, bootstrap_f1, classification_metrics, paired_bootstrap, reliability

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


def load_eval_set(path: str, cfg: DataConfig) -> LabelledSet:
    return load_split(path, cfg, name=Path(path).stem)


def fit_baselines(classifier: FramingClassifier, names: Sequence[str] = ("tfidf_lr", "lexicon", "zero_shot")):
    """Fit the baselines on the model's own training split, as recorded in framing.json."""
    data = classifier.meta.provenance.get("data", {})
    cfg = data_config_for(classifier, data.get("text_field", "text"), data.get("labels_field", "labels"))
    try:
        train = load_split(data["train"], cfg, "train")
        dev = load_split(data["dev"], cfg, "dev")
    except (KeyError, DataError) as exc:
        log.warning("baselines skipped: the training data recorded in framing.json is not readable here (%s)", exc)
        return []
    out = []
    if "tfidf_lr" in names:
        out.append(TfidfBaseline().fit(train, dev))
    if "lexicon" in names:
        out.append(LexiconBaseline(classifier.labels))
    location = classifier.meta.provenance.get("backbone", {}).get("location")
    if "zero_shot" in names and location and Path(location).is_dir():
        out.append(ZeroShotBaseline(location, classifier.labels, classifier.meta.max_length).fit(train, dev))
    return out


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
        metrics["compare"] = paired_bootstrap(y, model.predictions, compared.predictions, bootstrap, seed)
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
        "model_gain": paired_bootstrap(y, model.predictions, baseline.predictions, bootstrap, seed),
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
