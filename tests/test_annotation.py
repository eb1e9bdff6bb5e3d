"""The round trip through annotation tools: select -> export -> an annotator edits the file the
way the tool would -> import-labels -> exactly the annotator's records. Plus the error cases."""
from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from infer.errors import FramingInputError
from train.annotation import frame_definitions, import_labels
from train.cli import main

LABELS = ["martyrdom", "heroism", "triumph", "loss"]
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
N = 6


def annotator_choice(k: int) -> list[str]:
    """What the simulated annotator decides for the k-th task: no frame, one frame, or two."""
    return [[], ["heroism"], ["martyrdom", "loss"]][k % 3]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    rows = [{"id": f"art1:{i}", "text": json.loads(line)["text"]}
            for i, line in enumerate((EXAMPLES / "train.jsonl").read_text(encoding="utf-8").splitlines())]
    path = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_select(model_dir: Path, pool: Path, out: Path, fmt: str) -> None:
    assert main(["select", str(model_dir), "--pool", str(pool), "--n", str(N), "--out", str(out),
                 "--format", fmt]) == 0


def run_import(export: Path, tmp_path: Path, *extra: str) -> list[dict]:
    out = tmp_path / "labelled.jsonl"
    assert main(["import-labels", str(export), "--out", str(out), *extra]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def label_studio_annotation(choices: list[str], user, cancelled: bool = False) -> dict:
    result = [{"id": "r1", "from_name": "frames", "to_name": "text", "type": "choices",
               "value": {"choices": choices}, "origin": "manual"}] if choices else []
    return {"id": 100, "completed_by": user, "result": result, "was_cancelled": cancelled, "ground_truth": False,
            "lead_time": 3.2, "task": 1}


def label_studio_export(tasks_file: Path, annotate) -> list[dict]:
    """What Label Studio's JSON export holds after the import file was labelled: ids assigned,
    data kept, predictions kept, and each task's annotations."""
    return [{"id": k + 1, "data": task["data"], "predictions": task["predictions"], "annotations": annotate(k),
             "project": 3, "created_at": "2026-01-01T00:00:00Z"}
            for k, task in enumerate(read_json(tasks_file))]


def test_label_studio_round_trip(model_dir, pool, tmp_path):
    tasks_file = tmp_path / "tasks.json"
    run_select(model_dir, pool, tasks_file, "label-studio")
    tasks = read_json(tasks_file)
    for task in tasks:
        (prediction,) = task["predictions"]
        assert 0.0 <= prediction["score"] <= 1.0 and set(task["data"]["scores"]) == set(LABELS)
        for region in prediction["result"]:
            assert (region["from_name"], region["to_name"], region["type"]) == ("frames", "text", "choices")
    export = label_studio_export(tasks_file, lambda k: [label_studio_annotation(annotator_choice(k), 7)])
    records = run_import(write_json(tmp_path / "export.json", export), tmp_path)
    assert records == [{"text": t["data"]["text"], "labels": annotator_choice(k), "annotator": "7",
                        "source_id": t["data"]["source_id"]} for k, t in enumerate(tasks)]


def test_label_studio_config_matches_the_tasks_and_carries_the_codebook_hints(model_dir, pool, tmp_path):
    run_select(model_dir, pool, tmp_path / "tasks.json", "label-studio")
    view = ET.fromstring((tmp_path / "tasks.label_config.xml").read_text(encoding="utf-8"))
    assert view.find("Text").attrib == {"name": "text", "value": "$text"}
    choices = view.find("Choices")
    assert (choices.get("name"), choices.get("toName"), choices.get("choice")) == ("frames", "text", "multiple")
    hints = {c.get("value"): c.get("hint") for c in choices.findall("Choice")}
    assert hints == frame_definitions(LABELS) and hints["martyrdom"] == "death given meaning as sacrifice"


def test_argilla_round_trip_nested_and_flattened(model_dir, pool, tmp_path):
    records_file = tmp_path / "records.json"
    run_select(model_dir, pool, records_file, "argilla")
    settings = read_json(tmp_path / "records.argilla_settings.json")
    (question,) = settings["questions"]
    assert question["name"] == "frames" and question["settings"]["type"] == "multi_label_selection"
    assert [o["value"] for o in question["settings"]["options"]] == [*LABELS, "none"]
    exported = read_json(records_file)
    for k, record in enumerate(exported):
        suggestion = record["suggestions"]["frames"]
        assert len(suggestion["value"]) == len(suggestion["score"]) and record["fields"]["text"]
        # Argilla's records.to_json after the annotator submitted
        record["responses"] = {"frames": [{"value": annotator_choice(k) or ["none"], "user_id": "u-1"}]}
        record["status"] = "completed"
    expected = [{"text": r["fields"]["text"], "labels": annotator_choice(k), "annotator": "u-1",
                 "source_id": r["metadata"]["source_id"]} for k, r in enumerate(exported)]
    assert run_import(write_json(tmp_path / "nested.json", exported), tmp_path) == expected
    flat = [{"id": r["id"], "text": r["fields"]["text"], **r["metadata"],
             "frames.responses": [r["responses"]["frames"][0]["value"]], "frames.responses.users": ["u-1"],
             "frames.responses.status": ["submitted"]} for r in exported]
    assert run_import(write_json(tmp_path / "flat.json", flat), tmp_path) == expected


def test_csv_round_trip(model_dir, pool, tmp_path):
    sheet = tmp_path / "picks.csv"
    run_select(model_dir, pool, sheet, "csv")
    with open(sheet, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(row["labels"] == "" and row["pre_labels"] for row in rows)
    for k, row in enumerate(rows):
        row["labels"], row["annotator"] = ";".join(annotator_choice(k)) or "none", "ana"
    with open(sheet, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert run_import(sheet, tmp_path) == [{"text": r["text"], "labels": annotator_choice(k), "annotator": "ana",
                                            "source_id": r["id"]} for k, r in enumerate(rows)]


def task(k: int, text: str, annotations: list[dict]) -> dict:
    return {"id": k, "data": {"text": text, "source_id": f"s{k}"}, "annotations": annotations}


def test_unknown_labels_name_the_task_the_label_and_the_valid_labels(tmp_path):
    export = write_json(tmp_path / "export.json", [task(4, "A sentence.", [label_studio_annotation(["heroes"], 1)])])
    with pytest.raises(FramingInputError, match=r"task 4: unknown label\(s\) \['heroes'\]; valid labels are "
                                                r"\['martyrdom', 'heroism', 'triumph', 'loss'\]"):
        import_labels(export, tmp_path / "out.jsonl")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,text,labels\na,A sentence.,none;loss\n", encoding="utf-8")
    with pytest.raises(FramingInputError, match=r"sheet.csv:2: 'none' chosen together with \['loss'\]"):
        import_labels(sheet, tmp_path / "out.jsonl")


def test_unanswered_and_cancelled_tasks_are_counted_and_left_out(tmp_path, capsys):
    export = write_json(tmp_path / "export.json", [
        task(1, "Kept sentence.", [label_studio_annotation(["loss"], 1)]),
        task(2, "Nobody looked.", []),
        task(3, "Skipped one.", [label_studio_annotation([], 1, cancelled=True)])])
    summary = import_labels(export, tmp_path / "out.jsonl")
    assert (summary.records, summary.empty, summary.skipped) == (1, 1, 1)
    assert read_lines(tmp_path / "out.jsonl") == [{"text": "Kept sentence.", "labels": ["loss"], "annotator": "1",
                                                   "source_id": "s1"}]
    assert main(["import-labels", str(export), "--out", str(tmp_path / "cli.jsonl")]) == 0
    assert "left out 1 unanswered, 1 skipped, 0 in conflict" in capsys.readouterr().out
    only_empty = write_json(tmp_path / "empty.json", [task(2, "Nobody looked.", [])])
    with pytest.raises(FramingInputError, match=r"holds no labelled sentence \(1 unanswered, 0 skipped"):
        import_labels(only_empty, tmp_path / "none.jsonl")
    assert not (tmp_path / "none.jsonl").exists()


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_conflicting_annotations_are_refused_or_skipped_never_merged(tmp_path):
    export = write_json(tmp_path / "export.json", [
        task(1, "Agreed sentence.", [label_studio_annotation(["triumph"], 1), label_studio_annotation(["triumph"], 2)]),
        task(2, "Disputed sentence.", [label_studio_annotation(["heroism"], 1), label_studio_annotation([], 2)]),
        task(3, "disputed   SENTENCE.", [label_studio_annotation(["loss"], 3)])])
    with pytest.raises(FramingInputError, match=r"1 sentence\(s\) of .*export.json were labelled differently by "
                                                r"several annotators: task 2 \(1: \['heroism'\]\), "
                                                r"task 2 \(2: \[\]\), task 3 \(3: \['loss'\]\)\. .*--on-conflict skip"):
        import_labels(export, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    summary = import_labels(export, tmp_path / "out.jsonl", on_conflict="skip")
    assert summary.conflicts and read_lines(tmp_path / "out.jsonl") == [
        {"text": "Agreed sentence.", "labels": ["triumph"], "annotator": "1;2", "source_id": "s1"}]


def test_exports_that_are_not_what_a_tool_writes_are_refused_clearly(tmp_path):
    unknown = write_json(tmp_path / "other.json", [{"sentence": "x"}])
    with pytest.raises(FramingInputError, match=r"cannot tell which tool wrote it.*pass --format"):
        import_labels(unknown, tmp_path / "out.jsonl")
    minimal = write_json(tmp_path / "min.json", {"text": "x", "frames": ["loss"]})
    with pytest.raises(FramingInputError, match=r"expected a JSON list of tasks or records, found dict.*JSON_MIN"):
        import_labels(minimal, tmp_path / "out.jsonl", fmt="label-studio")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,text\na,A sentence.\n", encoding="utf-8")
    with pytest.raises(FramingInputError, match=r"sheet.csv: no \['labels'\] column"):
        import_labels(sheet, tmp_path / "out.jsonl")
    renamed = write_json(tmp_path / "renamed.json", [task(1, "x", [{
        "completed_by": 1, "result": [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                       "value": {"choices": ["loss"]}}]}])])
    with pytest.raises(FramingInputError, match=r"task 1: a choices answer from control 'sentiment'"):
        import_labels(renamed, tmp_path / "out.jsonl")
