"""`evaluate(model_dir, data, out_dir) -> figures`: score sets and write their reports."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from infer import FramingClassifier, FramingInputError

from .data import LabelledSet, load_split
from .scoring import Baselines, data_config_for, recorded_baselines, recorded_setting, score_set
from .report import write_set_report

log = logging.getLogger(__name__)


def evaluate(model_dir: str | Path, data: Sequence[str], out_dir: str | Path, by: Sequence[str] = (),
             compare: str | Path | None = None, baselines: bool = True, bootstrap: int = 1000,
             seed: int | None = None) -> dict[str, dict]:
    """Score a model folder on labelled files and write a report for each.

    Args:
        model_dir: a folder written by ``train`` (``FramingClassifier.from_pretrained`` loads it).
        data: labelled JSONL, CSV or Parquet files with the model's labels.
        out_dir: one file writes ``metrics.json``, ``predictions.jsonl``, ``report.md`` and plots
            here; several write one sub-folder each, named by file stem (``a-test``, ``b-test``
            when two files share a stem).
        by: metadata fields to slice the figures by, e.g. ``["register"]``.
        compare: a second model folder for a paired comparison (bootstrap CI, permutation p).
        baselines: also refit the TF-IDF, lexicon and zero-shot baselines on the training data
            the folder records, and report the model's gain over each.
        bootstrap: resamples for the CIs, and permutations for the p-values.
        seed: defaults to the training seed the folder records.

    Returns:
        The figures per set name, as written to each ``metrics.json``.

    Example::

        >>> figures = evaluate("runs/dev-real/model", ["data/corpus/test.jsonl"], "runs/eval")
        >>> lo, hi = figures["test"]["macro_f1_ci"]      # the full report: runs/eval/report.md
    """
    classifier = FramingClassifier.from_pretrained(model_dir, precision="fp32")
    cfg = data_config_for(classifier)
    sets = {}
    for name, path in zip(set_names(data), data):  # distinct names: a/test.jsonl and b/test.jsonl keep a report each
        sets[name] = (load_split(str(path), cfg, name), str(path))
    for field_name in by:
        if not any(field_name in m for split, _ in sets.values() for m in split.meta):
            fields = sorted({k for split, _ in sets.values() for m in split.meta for k in m})
            raise FramingInputError(f"--by {field_name}: no record in {list(sets)} has a {field_name!r} field; "
                                    f"fields present: {fields}.")
    return evaluate_sets(classifier, sets, Path(out_dir), by=by, compare=compare,
                         baselines=recorded_baselines(classifier) if baselines else None,
                         bootstrap=bootstrap, seed=seed, nest=len(sets) > 1)


def set_names(paths: Sequence[str | Path], taken: Sequence[str] = ()) -> list[str]:
    """One distinct name per file, also its report sub-folder: the file stem; where stems clash
    (with each other or with ``taken``), the parent folder and the stem (a/test.jsonl -> a-test);
    where that still clashes, a number."""
    files = [Path(p).absolute() for p in paths]
    stems = [f.stem for f in files] + list(taken)
    wanted = [f"{f.parent.name}-{f.stem}" if stems.count(f.stem) > 1 and f.parent.name else f.stem for f in files]
    names: list[str] = list(taken)
    for name in wanted:
        candidate, k = name, 1
        while candidate in names:
            k += 1
            candidate = f"{name}-{k}"
        names.append(candidate)
    return names[len(taken):]


def evaluate_sets(classifier: FramingClassifier, sets: dict[str, tuple[LabelledSet, str]], out_dir: Path,
                  by: Sequence[str] = (), compare: str | Path | None = None, baselines: Baselines | None = None,
                  bootstrap: int = 1000, seed: int | None = None, nest: bool = True) -> dict[str, dict]:
    other = _load_other(classifier, compare)
    # one seed for the intervals of training's reports and of a later `framing evaluate`
    seed = recorded_setting(classifier, "training", "seed") if seed is None else seed
    fitted = baselines.fitted if baselines else []
    context = {"model_dir": str(classifier.meta.provenance.get("model_dir", "")),
               "codebook_version": classifier.meta.codebook_version,
               "compared_with": str(compare) if compare else None}
    if baselines and baselines.skipped:
        context["baselines_skipped"] = baselines.skipped  # in metrics.json, so a missing row is explained
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
