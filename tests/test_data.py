import json

import numpy as np
import pytest

from infer.readers import DataError
from train.config import DataConfig
from train.data import check_leakage, data_sha256, load_split

CFG = DataConfig()


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_reads_jsonl_into_multi_hot(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "labels": ["loss", "martyrdom"], "register": "kcna"},
                                              {"text": "y", "labels": []}])
    split = load_split(str(path), CFG, "train")
    assert split.y.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0]]
    assert split.label_lists() == [["martyrdom", "loss"], []]
    assert split.meta[0] == {"register": "kcna"}


def test_malformed_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"text": "ok", "labels": []}, '{"text": "broken", "labels": [}'])
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid JSON"):
        load_split(str(path), CFG, "train")


def test_unknown_label_lists_allowed(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "labels": ["glory"]}])
    with pytest.raises(DataError, match=r"a\.jsonl:1: unknown label\(s\) \['glory'\]; allowed labels are "
                                        r"\['martyrdom', 'heroism', 'triumph', 'loss'\]"):
        load_split(str(path), CFG, "train")


def test_none_label_gets_a_hint(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "labels": ["none"]}])
    with pytest.raises(DataError, match="An empty list means no frame"):
        load_split(str(path), CFG, "train")


@pytest.mark.parametrize("text,message", [("  ", "is empty"), (7, "must be a string, found int"),
                                          (None, "must be a string, found NoneType")])
def test_bad_text(tmp_path, text, message):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "fine", "labels": []}, {"text": text, "labels": []}])
    with pytest.raises(DataError, match=rf"a\.jsonl:2: 'text' {message}"):
        load_split(str(path), CFG, "train")


def test_missing_column(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"sentence": "x", "labels": []}])
    with pytest.raises(DataError, match=r"missing column 'text'; found columns \['labels', 'sentence'\]"):
        load_split(str(path), CFG, "train")


def test_column_mapping(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"sentence": "x", "frames": ["heroism"]}])
    split = load_split(str(path), DataConfig(text_field="sentence", labels_field="frames"), "train")
    assert split.label_lists() == [["heroism"]]


def test_empty_split(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [])
    with pytest.raises(DataError, match="The dev split .* has no records"):
        load_split(str(path), CFG, "dev")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_split(str(tmp_path / "nope.jsonl"), CFG, "train")


def test_csv_with_semicolon_labels(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('text,labels\n"They fell, bravely",martyrdom;heroism\nplain,\n', encoding="utf-8")
    split = load_split(str(path), CFG, "train")
    assert split.label_lists() == [["martyrdom", "heroism"], []]


def test_csv_bad_label_reports_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("text,labels\nfine,loss\nbad,victory\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.csv:3: unknown label"):
        load_split(str(path), CFG, "train")


def test_parquet_and_saved_dataset(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {"text": ["a b", "c d"], "labels": [["triumph"], []]}
    pq.write_table(pa.table(rows), tmp_path / "a.parquet")
    assert load_split(str(tmp_path / "a.parquet"), CFG, "train").label_lists() == [["triumph"], []]
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    assert load_split(str(tmp_path / "ds"), CFG, "train").texts == ["a b", "c d"]


def test_custom_taxonomy(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "labels": ["threat"]}])
    split = load_split(str(path), DataConfig(labels=["threat", "blame"]), "train")
    assert split.y.tolist() == [[1, 0]]


def test_leakage_error_and_warning(tmp_path, caplog):
    train = load_split(str(write_jsonl(tmp_path / "t.jsonl", [{"text": "Same  Sentence", "labels": []}])), CFG, "train")
    dev = load_split(str(write_jsonl(tmp_path / "d.jsonl", [{"text": "same sentence", "labels": []},
                                                           {"text": "other", "labels": []}])), CFG, "dev")
    with pytest.raises(DataError, match="1 sentence\\(s\\) of the dev split also appear in train"):
        check_leakage(train, [dev], "error")
    assert check_leakage(train, [dev], "warn") == {"dev": 1}
    assert "also appear in train" in caplog.text


def test_data_hash_is_format_independent(tmp_path):
    a = load_split(str(write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "labels": ["loss"]}])), CFG, "train")
    (tmp_path / "b.csv").write_text("text,labels\nx,loss\n")
    b = load_split(str(tmp_path / "b.csv"), CFG, "train")
    assert data_sha256([a]) == data_sha256([b])
    assert np.array_equal(a.y, b.y)


def test_missing_csv_labels_cell_is_an_error(tmp_path):
    (tmp_path / "a.csv").write_text("text,labels\nfine,loss\nshort row\n")
    with pytest.raises(DataError, match=r"a\.csv:3: 'labels' is null or missing; expected a list of labels"):
        load_split(str(tmp_path / "a.csv"), CFG, "train")


def test_exact_duplicates_warn_once_with_their_count(tmp_path, caplog):
    rows = [{"text": t, "labels": ["loss"]} for t in ("x y", "X  y", "x y")]
    train = load_split(str(write_jsonl(tmp_path / "t.jsonl", rows)), CFG, "train")
    assert check_leakage(train, [], "error") == {}
    assert caplog.text.count("repeat an earlier one with the same labels") == 1
    assert "2 sentence(s) of the train split repeat" in caplog.text


def test_dev_and_test_must_not_share_sentences(tmp_path, caplog):
    split = lambda name, text: load_split(str(write_jsonl(tmp_path / f"{name}.jsonl", [{"text": text, "labels": []}])),
                                          CFG, name)
    train, dev, test = split("train", "a"), split("dev", "b c"), split("test", "B  c")
    with pytest.raises(DataError, match=r"1 sentence\(s\) of the test split also appear in dev"):
        check_leakage(train, [dev, test], "error")
    assert check_leakage(train, [dev, test], "warn") == {"dev": 0, "test": 0, "dev/test": 1}
    assert "of the test split also appear in dev" in caplog.text
