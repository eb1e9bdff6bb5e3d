"""Write an evaluation: metrics.json, predictions.jsonl, report.md and PNG plots."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from infer.atomic import atomic_path, atomic_write_json, atomic_write_jsonl, atomic_write_text

from .scoring import SetReport

log = logging.getLogger(__name__)

N_ERRORS = 15


def write_set_report(report: SetReport, out_dir: Path, context: dict[str, Any]) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"set": report.data.name, "source": report.source, **context, **report.metrics}
    if metrics["f1_undefined_labels"]:
        log.warning("%s: %s", report.data.name, undefined_f1_note(metrics))
    atomic_write_json(out_dir / "metrics.json", metrics)
    atomic_write_jsonl(out_dir / "predictions.jsonl", prediction_rows(report))
    plots = write_plots(report, out_dir)
    atomic_write_text(out_dir / "report.md", markdown(report, metrics, plots))
    return {"metrics": str(out_dir / "metrics.json"), "report": str(out_dir / "report.md")}


def prediction_rows(report: SetReport):
    data, model = report.data, report.model
    predicted = model.predictions
    for i, text in enumerate(data.texts):
        yield {"text": text, "gold": [l for j, l in enumerate(data.labels) if data.y[i, j]],
               "predicted": [l for j, l in enumerate(data.labels) if predicted[i, j]],
               "scores": {l: round(float(model.probs[i, j]), 5) for j, l in enumerate(data.labels)},
               **{k: v for k, v in data.meta[i].items() if isinstance(v, (str, int, float))}}


def markdown(report: SetReport, m: dict, plots: dict[str, str]) -> str:
    labels, n = report.data.labels, m["bootstrap"]["n_resamples"]
    parts = [
        f"# Evaluation on `{report.data.name}`\n",
        f"- data: `{report.source}` ({m['n']} sentences)\n- model: `{m.get('model_dir', '')}`\n"
        f"- codebook version: {m.get('codebook_version', 'unknown')}\n"
        f"- 95% CIs: percentile bootstrap over sentences, {n} resamples, seed {m['bootstrap']['seed']} "
        f"(paired for differences)\n"
        f"- p-values: two-sided paired permutation test of the macro-F1 difference, {n} permutations, "
        f"so p is never below 1/{n + 1}\n",
        "## Headline\n", headline_table(m),
        "## Per label (tuned thresholds)\n", per_label_table(m, labels),
    ]
    if m["baselines"]:
        parts += ["## Baselines (same data, same metrics)\n", baseline_table(m, labels)]
    if "compare" in m:
        c = m["compare"]
        parts += ["## Paired comparison with the other model\n",
                  f"Macro-F1 of this model minus the other: {gain(c, bold=True)} "
                  f"(other model's macro-F1 {c['other_macro_f1']:.3f}).\n"]
    for field_name, table in m["slices"].items():
        parts += [f"## By `{field_name}`\n", slice_table(table, labels)]
    parts += ["## Label co-occurrence (rows: gold, columns: predicted)\n", cooccurrence_table(report)]
    parts += ["## Plots\n"] + [f"![{name}]({path})\n" for name, path in plots.items()]
    parts += ["## Most confident errors\n", error_examples(report)]
    return "\n".join(parts)


def _ci(ci: list[float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def gain(g: dict, bold: bool = False) -> str:
    """A paired difference as 'difference [CI], p'."""
    difference = f"**{g['difference']:+.3f}**" if bold else f"{g['difference']:+.3f}"
    return f"{difference} [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}], {format_p(g['p_value'], g['n_permutations'])}"


def format_p(p: float, n_permutations: int) -> str:
    """A permutation p of (count + 1) / (n + 1) at its floor is only an upper bound, so it reads
    'p ≤ bound' (the bound rounded up); above the floor it never shows 0 or more digits than exist."""
    floor = 1 / (n_permutations + 1)
    if p <= floor * (1 + 1e-9):
        digits = 1 - math.floor(math.log10(floor))           # two significant figures
        return f"p ≤ {math.ceil(floor * 10 ** digits) / 10 ** digits:g}"
    return f"p = {p:.3f}" if p >= 0.01 else f"p = {p:.2g}"


def undefined_f1_note(m: dict) -> str:
    return (f"label(s) {', '.join(m['f1_undefined_labels'])} have no positives and no predictions in this set; "
            f"macro-F1 counts them as F1 = 0 (scikit-learn's zero_division=0). Macro-F1 over the labels present: "
            f"{_num(m['macro_f1_present'])}.")


def headline_table(m: dict) -> str:
    at05 = m["at_0.5"]
    rows = ["| metric | tuned thresholds | at 0.5 |", "|---|---|---|",
            f"| macro-F1 | **{m['macro_f1']:.3f}** {_ci(m['macro_f1_ci'])} | {at05['macro_f1']:.3f} |",
            f"| macro-F1, labels with positives only | {_num(m['macro_f1_present'])} | "
            f"{_num(at05['macro_f1_present'])} |"]
    for key in ("micro_f1", "samples_f1", "subset_accuracy", "hamming_loss"):
        rows.append(f"| {key.replace('_', '-')} | {m[key]:.3f} | {at05[key]:.3f} |")
    rows.append(f"| none: precision / recall | {m['none']['precision']:.3f} / {m['none']['recall']:.3f} | "
                f"{at05['none']['precision']:.3f} / {at05['none']['recall']:.3f} |")
    note = f"\nNote: {undefined_f1_note(m)}\n" if m["f1_undefined_labels"] else ""
    return "\n".join(rows) + "\n" + note


def per_label_table(m: dict, labels: list[str]) -> str:
    rows = ["| label | precision | recall | F1 [95% CI] | F1 at 0.5 | support | ROC-AUC | AP | ECE | threshold |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for label in labels:
        p, q = m["per_label"][label], m["at_0.5"]["per_label"][label]
        rows.append(f"| {label} | {p['precision']:.3f} | {p['recall']:.3f} | {p['f1']:.3f} {_ci(p['f1_ci'])} | "
                    f"{q['f1']:.3f} | {p['support']} | {_num(p['roc_auc'])} | {_num(p['average_precision'])} | "
                    f"{p['ece']:.3f} | {p['threshold']:.2f} |")
    return "\n".join(rows) + "\n"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def baseline_table(m: dict, labels: list[str]) -> str:
    head = "| system | macro-F1 [95% CI] | " + " | ".join(labels) + " | model's gain [95% CI], p |"
    rows = [head, "|" + "---|" * (len(labels) + 3)]
    model_f1 = " | ".join(f"{m['per_label'][l]['f1']:.3f}" for l in labels)
    rows.append(f"| **fine-tuned model** | **{m['macro_f1']:.3f}** {_ci(m['macro_f1_ci'])} | {model_f1} | |")
    for name, b in m["baselines"].items():
        per = " | ".join(f"{f:.3f}" for f in b["per_label_f1"])
        rows.append(f"| {name} | {b['macro_f1']:.3f} {_ci(b['macro_f1_ci'])} | {per} | {gain(b['model_gain'])} |")
    return "\n".join(rows) + "\n"


def slice_table(table: dict, labels: list[str]) -> str:
    rows = ["| value | n | macro-F1 | micro-F1 | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 4)]
    for value, s in table.items():
        per = " | ".join(f"{s['per_label_f1'][l]:.3f}" for l in labels)
        rows.append(f"| {value} | {s['n']} | {s['macro_f1']:.3f} | {s['micro_f1']:.3f} | {per} |")
    return "\n".join(rows) + "\n"


def cooccurrence_table(report: SetReport) -> str:
    labels = report.data.labels + ["none"]
    gold = _with_none(report.data.y.astype(bool))
    pred = _with_none(report.model.predictions.astype(bool))
    counts = gold.T.astype(int) @ pred.astype(int)
    rows = ["| gold \\ predicted | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 1)]
    rows += [f"| {g} | " + " | ".join(str(c) for c in counts[i]) + " |" for i, g in enumerate(labels)]
    return "\n".join(rows) + "\n"


def _with_none(y: np.ndarray) -> np.ndarray:
    return np.concatenate([y, ~y.any(1, keepdims=True)], axis=1)


def error_examples(report: SetReport, n: int = N_ERRORS) -> str:
    data, probs, pred = report.data, report.model.probs, report.model.predictions
    parts = []
    for j, label in enumerate(data.labels):
        fp = [i for i in np.argsort(-probs[:, j]) if pred[i, j] and not data.y[i, j]][:n]
        fn = [i for i in np.argsort(probs[:, j]) if not pred[i, j] and data.y[i, j]][:n]
        parts.append(f"### {label}\n\nFalse positives (most confident first):\n")
        parts += [f"- {probs[i, j]:.2f} — {_quote(data.texts[i])}" for i in fp] or ["- none"]
        parts.append("\nFalse negatives (lowest score first):\n")
        parts += [f"- {probs[i, j]:.2f} — {_quote(data.texts[i])}" for i in fn] or ["- none"]
        parts.append("")
    return "\n".join(parts)


def _quote(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_plots(report: SetReport, out_dir: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {"precision-recall curves": ("pr_curves.png", _pr_curves),
             "reliability diagrams": ("reliability.png", _reliability),
             "F1 with 95% CIs, model vs baselines": ("f1_ci.png", _f1_bars)}
    for name, draw in plots.values():
        fig = draw(report, plt)
        with atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
    return {title: name for title, (name, _) in plots.items()}


def _grid(plt, n: int):
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    return fig, axes.ravel()


def _pr_curves(report: SetReport, plt):
    from sklearn.metrics import precision_recall_curve

    data = report.data
    fig, axes = _grid(plt, len(data.labels))
    for j, (label, ax) in enumerate(zip(data.labels, axes)):
        for scored, style in [(report.model, "-")] + [(b, "--") for b in report.baselines if b.name != "lexicon"]:
            if data.y[:, j].any():
                p, r, _ = precision_recall_curve(data.y[:, j], scored.probs[:, j])
                ax.plot(r, p, style, label=scored.name)
        ax.set(title=label, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Precision-recall on {data.name}")
    return fig


def _reliability(report: SetReport, plt):
    data = report.data
    fig, axes = _grid(plt, len(data.labels))
    for label, ax in zip(data.labels, axes):
        bins = report.metrics["calibration"][label]
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.plot([b["confidence"] for b in bins], [b["observed"] for b in bins], "o-")
        ax.set(title=f"{label} (ECE {report.metrics['per_label'][label]['ece']:.3f})",
               xlabel="predicted probability", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1))
    fig.suptitle(f"Reliability on {data.name}")
    return fig


def _f1_bars(report: SetReport, plt):
    m, labels = report.metrics, report.data.labels
    systems = [("model", [m["per_label"][l]["f1"] for l in labels], [m["per_label"][l]["f1_ci"] for l in labels])]
    systems += [(name, b["per_label_f1"], b["per_label_f1_ci"]) for name, b in m["baselines"].items()]
    fig, ax = plt.subplots(figsize=(1.6 * len(labels) + 3, 3.6))
    width = 0.8 / len(systems)
    x = np.arange(len(labels))
    for k, (name, f1, ci) in enumerate(systems):
        err = np.array([[f - lo for f, (lo, hi) in zip(f1, ci)], [hi - f for f, (lo, hi) in zip(f1, ci)]]).clip(0)
        ax.bar(x + k * width, f1, width, yerr=err, capsize=2, label=name)
    ax.set_xticks(x + width * (len(systems) - 1) / 2, labels)
    ax.set(ylabel="F1", ylim=(0, 1), title=f"F1 per label on {report.data.name}")
    ax.legend(fontsize=7)
    return fig
