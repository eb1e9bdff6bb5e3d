"""`evaluate(model_dir, data, out_dir) -> figures`: score sets and write their reports."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from infer import FramingClassifier, FramingInputError

from .data import LabelledSet
from .scoring import data_config_for, fit_baselines, load_eval_set, score_set
from .report import write_set_report

log = logging.getLogger(__name__)


def evaluate(model_dir: str | Path, data: Sequence[str], out_dir: str | Path, by: Sequence[str] = (),
             compare: str | Path | None = None, baselines: bool = True, bootstrap: int = 1000,
             seed: int = 0) -> dict[str, dict]:
    """Evaluate a model folder on labelled files. One file writes its report in ``out_dir``;
    several write one sub-folder each. Returns the figures per set."""
    classifier = FramingClassifier.from_pretrained(model_dir, precision="fp32")
    cfg = data_config_for(classifier)
    sets = {}
    for path in data:
        split = load_eval_set(str(path), cfg)
        sets[split.name] = (split, str(path))
    for field_name in by:
        if not any(field_name in m for split, _ in sets.values() for m in split.meta):
            fields = sorted({k for split, _ in sets.values() for m in split.meta for k in m})
            raise FramingInputError(f"--by {field_name}: no record in {list(sets)} has a {field_name!r} field; "
                                    f"fields present: {fields}.")
    return evaluate_sets(classifier, sets, Path(out_dir), by=by, compare=compare, baselines=baselines,
                         bootstrap=bootstrap, seed=seed, nest=len(sets) > 1)


def evaluate_sets(classifier: FramingClassifier, sets: dict[str, tuple[LabelledSet, str]], out_dir: Path,
                  by: Sequence[str] = (), compare: str | Path | None = None, baselines: bool = True,
                  bootstrap: int = 1000, seed: int = 0, nest: bool = True) -> dict[str, dict]:
    other = _load_other(classifier, compare)
    fitted = fit_baselines(classifier) if baselines else []
    context = {"model_dir": str(classifier.meta.provenance.get("model_dir", "")),
               "codebook_version": classifier.meta.codebook_version,
               "compared_with": str(compare) if compare else None}
    figures = {}
    for name, (split, source) in sets.items():
        log.info("evaluate: %s (%d sentences)", name, len(split))
        report = score_set(classifier, split, source, fitted, other, bootstrap, seed, by)
        target = out_dir / name if nest else out_dir
        paths = write_set_report(report, target, context)
        log.info("evaluate: %s macro-F1 %.3f [%.3f, %.3f] -> %s", name, report.metrics["macro_f1"],
                 *report.metrics["macro_f1_ci"], paths["report"])
        figures[name] = report.metrics
    return figures


def _load_other(classifier: FramingClassifier, compare: str | Path | None) -> FramingClassifier | None:
    if compare is None:
        return None
    other = FramingClassifier.from_pretrained(compare, precision="fp32")
    if other.labels != classifier.labels:
        raise FramingInputError(f"--compare needs the same labels in the same order: {classifier.labels} "
                                f"vs {other.labels} in {compare}.")
    return other
