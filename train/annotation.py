"""The round trip through annotation tools: export picks with pre-labels, import the labels back.

Formats (docs/active-learning.md pins the schema versions followed):
- ``label-studio``: a tasks JSON import file with ``predictions`` as pre-annotations, and the
  labelling config beside it; read back from Label Studio's JSON export;
- ``argilla``: records for a multi-label dataset (Argilla 2.x ``records.to_json`` shape), and the
  dataset settings beside them; read back from ``records.to_json`` or a flattened export;
- ``csv``: a plain sheet with an empty ``labels`` column to fill in;
- ``jsonl``: the picks as they are, for a notebook (export only).

Every annotation is checked: an unknown label is an error naming the task, and sentences that
several annotators labelled differently are never merged silently.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence
from xml.sax.saxutils import quoteattr

from infer.atomic import atomic_write_json, atomic_write_jsonl, atomic_write_text
from infer.errors import FramingInputError
from infer.readers import iter_csv

from .config import DEFAULT_LABELS
from .data import normalise
from .select import Pick

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("label-studio", "argilla", "csv", "jsonl")
IMPORT_FORMATS = ("auto", "label-studio", "argilla", "csv")
CODEBOOK = Path(__file__).resolve().parents[1] / "data" / "codebook.md"
# the names tying Label Studio's labelling config to the tasks' pre-annotations and exports
TEXT, FRAMES = "text", "frames"
# Argilla cannot submit an empty multi-label answer, so "no frame" is an explicit choice there;
# the CSV uses it too, so that an empty cell means "not labelled yet" and not "no frame"
NONE = "none"
LABEL_SEPARATORS = r"[;,]"


@dataclass
class Vote:
    """One annotator's answer for one task, as read from an export."""

    task: str  # where a person finds it: "task 12", "record s-1a2b", "export.csv:7"
    text: str
    source_id: str
    annotator: str | None = None
    labels: list[str] | None = None  # None: skipped, cancelled or discarded
    empty: bool = False  # the task reached the tool but nobody answered it


@dataclass
class ImportSummary:
    records: int
    empty: int
    skipped: int
    conflicts: list[str] = field(default_factory=list)
    out: str = ""


# ---------------------------------------------------------------- export


def export_picks(picks: Sequence[Pick], out: str | Path, fmt: str, labels: Sequence[str],
                 model_version: str = "framing") -> list[Path]:
    """Write the picks for an annotation tool; returns the files written (a config beside some)."""
    out = Path(out)
    if fmt == "label-studio":
        config = out.with_name(out.stem + ".label_config.xml")
        atomic_write_json(out, [label_studio_task(p, model_version) for p in picks])
        atomic_write_text(config, label_studio_config(labels, frame_definitions(labels)))
        return [out, config]
    if fmt == "argilla":
        settings = out.with_name(out.stem + ".argilla_settings.json")
        atomic_write_json(out, [argilla_record(p, model_version) for p in picks])
        atomic_write_json(settings, argilla_settings(labels, frame_definitions(labels)))
        return [out, settings]
    if fmt == "csv":
        atomic_write_text(out, picks_csv(picks, labels))
        return [out]
    if fmt == "jsonl":
        atomic_write_jsonl(out, [asdict(p) for p in picks])
        return [out]
    raise FramingInputError(f"Unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}.")


def frame_definitions(labels: Sequence[str], codebook: Path = CODEBOOK) -> dict[str, str]:
    """Each label's one-line definition, from the codebook's '### label: definition' headings."""
    text = codebook.read_text(encoding="utf-8") if codebook.is_file() else ""
    found = dict(re.findall(r"^###\s+(\S+):\s*(.+?)\s*$", text, flags=re.M))
    return {label: found[label] for label in labels if label in found}


def label_studio_task(pick: Pick, model_version: str) -> dict[str, Any]:
    """A task whose prediction pre-selects the model's labels; its score is the model's confidence,
    so sorting by prediction score in Label Studio puts the hardest sentences first."""
    result = [{"from_name": FRAMES, "to_name": TEXT, "type": "choices", "value": {"choices": pick.pre_labels}}]
    return {"data": {TEXT: pick.text, "source_id": pick.source_id, "scores": _rounded(pick.scores)},
            "predictions": [{"model_version": model_version, "score": round(1.0 - pick.uncertainty, 4),
                             "result": result if pick.pre_labels else []}]}


def label_studio_config(labels: Sequence[str], definitions: dict[str, str]) -> str:
    choices = "\n".join(f"    <Choice value={quoteattr(label)}"
                        + (f" hint={quoteattr(definitions[label])}" if label in definitions else "") + "/>"
                        for label in labels)
    return (f"<View>\n"
            f"  <Header value=\"Which frames does this sentence carry? Submit with none selected for no frame.\"/>\n"
            f"  <Text name=\"{TEXT}\" value=\"${TEXT}\"/>\n"
            f"  <Choices name=\"{FRAMES}\" toName=\"{TEXT}\" choice=\"multiple\" showInline=\"true\">\n"
            f"{choices}\n  </Choices>\n</View>\n")


def argilla_record(pick: Pick, model_version: str) -> dict[str, Any]:
    """A record in the shape Argilla 2.x's ``dataset.records.to_json`` writes and ``from_json`` reads."""
    suggested = pick.pre_labels or [NONE]
    scores = [pick.scores[l] for l in pick.pre_labels] or [1.0 - max(pick.scores.values(), default=0.0)]
    return {"id": "s-" + hashlib.sha1(normalise(pick.text).encode("utf-8")).hexdigest()[:16],
            "fields": {TEXT: pick.text},
            "metadata": {"source_id": pick.source_id, "uncertainty": round(pick.uncertainty, 4)},
            "suggestions": {FRAMES: {"value": suggested, "score": [round(s, 4) for s in scores],
                                     "agent": model_version}},
            "responses": {}, "vectors": {}, "status": "pending", "_server_id": None}


def argilla_settings(labels: Sequence[str], definitions: dict[str, str]) -> dict[str, Any]:
    """Dataset settings in the shape ``rg.Settings.to_json`` writes: load with ``rg.Settings.from_json``."""
    options = [{"value": label, "text": label} for label in [*labels, NONE]]
    described = "\n".join(f"- **{label}**: {definitions.get(label, label)}" for label in labels)
    question = {"name": FRAMES, "title": "Which frames does the sentence carry?", "required": True,
                "description": f"{described}\n- **{NONE}**: no frame (choose it alone).",
                "type": "multi_label_selection",
                "settings": {"type": "multi_label_selection", "options": options,
                             "visible_options": len(options), "options_order": "natural"}}
    return {"guidelines": "Label the sentence by itself under data/codebook.md; each frame is decided on its own.",
            "fields": [{"name": TEXT, "title": "Sentence", "required": True, "type": "text",
                        "settings": {"type": "text", "use_markdown": False}}],
            "questions": [question],
            "metadata": [_argilla_metadata("source_id", {"type": "terms", "values": None}),
                         _argilla_metadata("uncertainty", {"type": "float", "min": None, "max": None})],
            "vectors": [], "allow_extra_metadata": False,
            "distribution": {"strategy": "overlap", "min_submitted": 1}, "mapping": None}


def _argilla_metadata(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "title": name, "visible_for_annotators": False,
            "settings": {**settings, "visible_for_annotators": False}}


def picks_csv(picks: Sequence[Pick], labels: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "pre_labels", *[f"score_{l}" for l in labels], "uncertainty", "labels",
                     "annotator"])
    for p in picks:
        writer.writerow([p.source_id, p.text, ";".join(p.pre_labels) or NONE,
                         *[f"{p.scores[l]:.4f}" for l in labels], f"{p.uncertainty:.4f}", "", ""])
    return buffer.getvalue()


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {label: round(p, 4) for label, p in scores.items()}


# ---------------------------------------------------------------- import


def import_labels(export: str | Path, out: str | Path, fmt: str = "auto", on_conflict: str = "error",
                  labels: Sequence[str] = tuple(DEFAULT_LABELS)) -> ImportSummary:
    """Read an annotation tool's export into training records (text, labels, annotator, source_id)."""
    export = Path(export)
    if on_conflict not in ("error", "skip"):
        raise FramingInputError(f"on_conflict must be 'error' or 'skip', got {on_conflict!r}.")
    votes = list(read_votes(export, fmt))
    empty = sum(v.empty for v in votes)
    skipped = sum(v.labels is None and not v.empty for v in votes)
    for vote in votes:
        if vote.labels is not None:
            vote.labels = checked_labels(vote, labels)
    records, conflicts = agreed_records(votes)
    if conflicts and on_conflict == "error":
        raise FramingInputError(
            f"{len(conflicts)} sentence(s) of {export} were labelled differently by several annotators: "
            f"{'; '.join(conflicts[:10])}{' ...' if len(conflicts) > 10 else ''}. Resolve them in the tool and "
            "export again, or pass --on-conflict skip to leave them out.")
    for line in conflicts:
        log.warning("left out a conflicting sentence: %s", line)
    if empty or skipped:
        log.warning("left out %d task(s) nobody answered and %d skipped/cancelled/discarded answer(s)", empty, skipped)
    if not records:
        raise FramingInputError(f"{export} holds no labelled sentence ({empty} unanswered, {skipped} skipped, "
                                f"{len(conflicts)} in conflict). Label some tasks, then export again.")
    atomic_write_jsonl(out, records)
    return ImportSummary(len(records), empty, skipped, conflicts, str(out))


def read_votes(export: Path, fmt: str = "auto") -> Iterator[Vote]:
    if not export.is_file():
        raise FramingInputError(f"Export file {export} does not exist.")
    if fmt == "auto":
        fmt = "csv" if export.suffix.lower() == ".csv" else _json_format(_load_json(export), export)
    if fmt == "csv":
        yield from _csv_votes(export)
    elif fmt == "label-studio":
        yield from _label_studio_votes(_json_list(export))
    elif fmt == "argilla":
        yield from _argilla_votes(_json_list(export))
    else:
        raise FramingInputError(f"Unknown import format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}.")


def checked_labels(vote: Vote, labels: Sequence[str]) -> list[str]:
    """The vote's labels in the label order; 'none' alone means no frame."""
    unknown = sorted({l for l in vote.labels if l not in labels and l != NONE})
    if unknown:
        raise FramingInputError(f"{vote.task}: unknown label(s) {unknown}; valid labels are {list(labels)} "
                                f"(or '{NONE}' alone for no frame). Fix the labelling config or the answer.")
    if NONE in vote.labels and len(set(vote.labels)) > 1:
        raise FramingInputError(f"{vote.task}: '{NONE}' chosen together with {sorted(set(vote.labels) - {NONE})}; "
                                f"'{NONE}' means no frame and must be chosen alone.")
    return [label for label in labels if label in vote.labels]


def agreed_records(votes: Sequence[Vote]) -> tuple[list[dict[str, Any]], list[str]]:
    """One record per sentence whose answers all agree; each disagreement as a line naming its tasks."""
    by_sentence: dict[str, list[Vote]] = defaultdict(list)
    for vote in votes:
        if vote.labels is not None:
            by_sentence[normalise(vote.text)].append(vote)
    records, conflicts = [], []
    for group in by_sentence.values():
        if len({tuple(v.labels) for v in group}) > 1:
            conflicts.append(", ".join(f"{v.task} ({v.annotator}: {v.labels})" for v in group))
            continue
        annotators = list(dict.fromkeys(v.annotator for v in group if v.annotator))
        records.append({"text": group[0].text, "labels": group[0].labels,
                        "annotator": ";".join(annotators) or None, "source_id": group[0].source_id})
    return records, conflicts


def _label_studio_votes(tasks: list[dict[str, Any]]) -> Iterator[Vote]:
    for task in tasks:
        where = f"task {task.get('id', '?')}"
        data = task.get("data") or {}
        text = _required_text(data.get(TEXT), where, "data.text")
        source = str(data.get("source_id") or where)
        answers = task.get("annotations") or []
        if not answers:
            yield Vote(where, text, source, empty=True)
        for answer in answers:
            annotator = _label_studio_user(answer.get("completed_by"))
            if answer.get("was_cancelled"):
                yield Vote(where, text, source, annotator)
                continue
            yield Vote(where, text, source, annotator, _label_studio_choices(answer.get("result") or [], where))


def _label_studio_choices(result: list[dict[str, Any]], where: str) -> list[str]:
    chosen = []
    for region in result:
        if region.get("type") != "choices":
            continue
        if region.get("from_name") != FRAMES:
            raise FramingInputError(f"{where}: a choices answer from control {region.get('from_name')!r}; expected "
                                    f"{FRAMES!r}, as in the labelling config `framing select` wrote.")
        chosen += (region.get("value") or {}).get("choices") or []
    return chosen


def _label_studio_user(completed_by: Any) -> str | None:
    if isinstance(completed_by, dict):  # some exports expand the user: {"id": 1, "email": ...}
        completed_by = completed_by.get("email") or completed_by.get("id")
    return None if completed_by is None else str(completed_by)


def _argilla_votes(records: list[dict[str, Any]]) -> Iterator[Vote]:
    for record in records:
        where = f"record {record.get('id', '?')}"
        flat = "fields" not in record  # to_list(flatten=True) and Hub exports spread questions into columns
        text = _required_text(record.get(TEXT) if flat else (record.get("fields") or {}).get(TEXT), where, TEXT)
        metadata = record if flat else (record.get("metadata") or {})
        source = str(metadata.get("source_id") or record.get("id") or where)
        answers = list(_argilla_answers(record, flat))
        if not answers:
            yield Vote(where, text, source, empty=True)
        for user, value, status in answers:
            submitted = value is not None and status in (None, "submitted")
            yield Vote(where, text, source, user, _as_list(value, where) if submitted else None)


def _argilla_answers(record: dict[str, Any], flat: bool) -> Iterator[tuple[str | None, Any, str | None]]:
    if not flat:
        for answer in (record.get("responses") or {}).get(FRAMES) or []:
            yield answer.get("user_id"), answer.get("value"), answer.get("status")
        return
    values = record.get(f"{FRAMES}.responses") or []
    users = record.get(f"{FRAMES}.responses.users") or [None] * len(values)
    statuses = record.get(f"{FRAMES}.responses.status") or [None] * len(values)
    yield from zip(users, values, statuses)


def _csv_votes(export: Path) -> Iterator[Vote]:
    # the shared reader: a sheet saved by Excel starts with a BOM, and a wrong encoding is named by line
    for where, row in iter_csv(export):
        missing = [c for c in ("text", "labels") if c not in row]
        if missing:
            raise FramingInputError(f"{export}: no {missing} column(s); found {sorted(row)}. The sheet "
                                    "`framing select --format csv` writes has text and labels columns.")
        text = _required_text(row["text"], where, "text")
        source = row.get("id") or where
        cell = (row["labels"] or "").strip()
        if not cell:
            yield Vote(where, text, source, empty=True)
            continue
        yield Vote(where, text, source, (row.get("annotator") or "").strip() or None,
                   [part.strip() for part in re.split(LABEL_SEPARATORS, cell) if part.strip()])


def _json_format(data: Any, export: Path) -> str:
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    if "annotations" in first or "data" in first:
        return "label-studio"
    if "fields" in first or "responses" in first or any(k.startswith(f"{FRAMES}.") for k in first):
        return "argilla"
    raise FramingInputError(f"{export}: cannot tell which tool wrote it. Expected a JSON list of Label Studio "
                            f"tasks (with 'data' and 'annotations') or of Argilla records (with 'fields' and "
                            f"'responses'); pass --format to say which.")


def _json_list(export: Path) -> list[dict[str, Any]]:
    data = _load_json(export)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise FramingInputError(f"{export}: expected a JSON list of tasks or records, found {type(data).__name__}. "
                                "Export as JSON (Label Studio: 'JSON', not 'JSON_MIN'; Argilla: records.to_json).")
    return data


def _load_json(export: Path) -> Any:
    try:
        return json.loads(export.read_text(encoding="utf-8-sig"))  # tolerate a BOM, as the readers do
    except json.JSONDecodeError as exc:
        raise FramingInputError(f"{export}: not valid JSON ({exc.msg} at line {exc.lineno}).") from exc


def _required_text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FramingInputError(f"{where}: {name} is missing or empty; every task must carry its sentence.")
    return value


def _as_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FramingInputError(f"{where}: expected a list of label names as the answer, found {value!r}.")
    return value
