"""The evaluation harness on tiny data: files, JSON schema, slices, paired comparison, errors."""
import json
import shutil

import pytest

from infer import FramingInputError
from infer.readers import DataError
from train.evaluate import evaluate, set_names

ROWS = [
    {"text": "The veterans laid wreaths for the fallen.", "labels": ["martyrdom"], "register": "kcna"},
    {"text": "The brave crews routed the enemy.", "labels": ["heroism", "triumph"], "register": "kcna"},
    {"text": "Floods destroyed many houses.", "labels": ["loss"], "register": "china"},
    {"text": "The minister received the envoy.", "labels": [], "register": "china"},
    {"text": "The plant was completed ahead of schedule.", "labels": ["triumph"], "register": "russia"},
    {"text": "Workers must raise output.", "labels": [], "register": "russia"},
]


@pytest.fixture
def eval_file(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_report_files_and_json_round_trip(model_dir, eval_file, tmp_path):
    out = tmp_path / "rep"
    figures = evaluate(model_dir, [str(eval_file)], out, by=["register"], bootstrap=50)
    for name in ("metrics.json", "predictions.jsonl", "report.md", "pr_curves.png", "reliability.png", "f1_ci.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["macro_f1"] == pytest.approx(figures["small"]["macro_f1"])
    assert metrics["n"] == len(ROWS)
    lo, hi = metrics["macro_f1_ci"]
    assert lo <= metrics["macro_f1"] <= hi
    assert set(metrics["at_0.5"]["per_label"]) == {"martyrdom", "heroism", "triumph", "loss"}
    assert set(metrics["baselines"]) == {"tfidf_lr", "lexicon", "zero_shot"}
    gain = metrics["baselines"]["lexicon"]["model_gain"]
    assert gain["ci"][0] <= gain["difference"] <= gain["ci"][1]
    assert set(metrics["slices"]["register"]) == {"kcna", "china", "russia"}
    assert sum(s["n"] for s in metrics["slices"]["register"].values()) == len(ROWS)
    rows = [json.loads(l) for l in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == [r["text"] for r in ROWS]
    assert rows[1]["gold"] == ["heroism", "triumph"] and set(rows[1]["scores"]) == set(metrics["per_label"])
    report = (out / "report.md").read_text()
    for heading in ("## Headline", "## Per label", "## Baselines", "## By `register`", "## Label co-occurrence",
                    "## Most confident errors", "![precision-recall curves](pr_curves.png)"):
        assert heading in report


def test_compare_identical_models_shows_no_difference(model_dir, eval_file, tmp_path):
    other = shutil.copytree(model_dir, tmp_path / "other")
    figures = evaluate(model_dir, [str(eval_file)], tmp_path / "cmp", compare=other, baselines=False, bootstrap=50)
    compare = figures["small"]["compare"]
    assert compare["difference"] == 0.0 and compare["p_value"] == 1.0
    assert "Paired comparison" in (tmp_path / "cmp" / "report.md").read_text()


def test_several_sets_get_one_folder_each(model_dir, eval_file, tmp_path):
    second = tmp_path / "second.jsonl"
    shutil.copy(eval_file, second)
    evaluate(model_dir, [str(eval_file), str(second)], tmp_path / "multi", baselines=False, bootstrap=20)
    assert (tmp_path / "multi" / "small" / "metrics.json").is_file()
    assert (tmp_path / "multi" / "second" / "metrics.json").is_file()


def test_files_with_the_same_name_keep_a_report_each(model_dir, eval_file, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(eval_file, tmp_path / folder / "test.jsonl")
    paths = [str(tmp_path / "a" / "test.jsonl"), str(tmp_path / "b" / "test.jsonl")]
    figures = evaluate(model_dir, paths, tmp_path / "multi", baselines=False, bootstrap=20)
    assert set(figures) == {"a-test", "b-test"}
    for name, path in zip(("a-test", "b-test"), paths):
        metrics = json.loads((tmp_path / "multi" / name / "metrics.json").read_text())
        assert (metrics["set"], metrics["source"]) == (name, path)


def test_set_names_are_stems_made_distinct():
    assert set_names(["x/dev.jsonl", "y/test.csv"]) == ["dev", "test"]
    assert set_names(["a/test.jsonl", "b/test.jsonl", "dev.jsonl"]) == ["a-test", "b-test", "dev"]
    assert set_names(["a/test.jsonl", "a/test.jsonl"]) == ["a-test", "a-test-2"]
    # after training, an extra set named like a split must not overwrite that split's report
    assert set_names(["real/test.jsonl", "real/pool.jsonl"], taken=["dev", "test"]) == ["real-test", "pool"]


def test_empty_dataset_is_a_clear_error(model_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="has no records"):
        evaluate(model_dir, [str(empty)], tmp_path / "x")


def test_labels_outside_the_model_are_a_clear_error(model_dir, tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"text": "x", "labels": ["propaganda"]}) + "\n")
    with pytest.raises(DataError, match=r"unknown label\(s\) \['propaganda'\]; allowed labels are"):
        evaluate(model_dir, [str(path)], tmp_path / "x")


def test_by_a_field_nobody_has(model_dir, eval_file, tmp_path):
    with pytest.raises(FramingInputError, match="--by year: no record .* has a 'year' field"):
        evaluate(model_dir, [str(eval_file)], tmp_path / "x", by=["year"])
