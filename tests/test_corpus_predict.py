"""`framing predict`: formats, bad records, and resume after a kill with no duplicates or gaps."""
import json
import signal
import subprocess
import sys
import time

import pytest

from infer import FramingClassifier, FramingInputError
from infer.corpus import PredictOptions, predict_file

from conftest import ROOT


@pytest.fixture(scope="module")
def clf(model_dir):
    return FramingClassifier.from_pretrained(model_dir, device="cpu")


def write_lines(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_records_are_reported_with_their_line(clf, tmp_path, caplog):
    src = write_lines(tmp_path / "in.jsonl", [{"id": 1, "text": "Mothers wept."}, {"id": 2, "text": "  "},
                                              {"id": 3}, {"id": 4, "text": 5}, {"id": 5, "text": "They won."}])
    out = tmp_path / "out.jsonl"
    summary = predict_file(clf, src, out, PredictOptions(id_field="id"))
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert (summary.records, summary.scored, summary.bad) == (5, 2, 3)
    assert [r.get("id") for r in rows] == [1, 2, 3, 4, 5]  # one row per record, in order
    assert rows[1]["error"] == "text field 'text' is empty" and rows[1]["line"] == "2"
    assert "missing text field" in rows[2]["error"] and "is int" in rows[3]["error"]
    assert "in.jsonl:3: missing text field 'text'" in caplog.text
    with pytest.raises(FramingInputError, match=r"in\.jsonl:2: text field 'text' is empty. Fix the record"):
        predict_file(clf, src, tmp_path / "out2.jsonl", PredictOptions(on_bad="fail"))


def test_txt_csv_parquet_inputs_and_parquet_output(clf, tmp_path):
    import pyarrow.parquet as pq

    (tmp_path / "in.txt").write_text("Mothers wept.\n\nThe plant was completed.\n")
    (tmp_path / "in.csv").write_text("doc,text\na,Mothers wept.\nb,The plant was completed.\n")
    for name in ("in.txt", "in.csv"):
        out = tmp_path / f"{name}.parquet"
        assert predict_file(clf, tmp_path / name, out).scored == 2
        table = pq.read_table(out)
        assert table.num_rows == 2 and {"labels", "scores"} <= set(table.column_names)
    pq_in = tmp_path / "in.csv.parquet"
    assert predict_file(clf, pq_in, tmp_path / "again.jsonl").scored == 2


def test_articles_mode_writes_profiles_and_sentences(clf, tmp_path):
    src = write_lines(tmp_path / "a.jsonl", [{"id": "x", "text": "Mothers wept. The plant was completed."}])
    out = tmp_path / "a_out.jsonl"
    predict_file(clf, src, out, PredictOptions(articles=True, id_field="id"))
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert rows[0]["type"] == "article" and rows[0]["n_sentences"] == 2
    assert [r["type"] for r in rows[1:]] == ["sentence", "sentence"]
    assert rows[2]["text"] == "The plant was completed." and rows[2]["start"] == 14


def test_an_unfinished_run_must_be_resumed_or_cleared(clf, tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [{"text": "a b"}])
    (tmp_path / "out.jsonl.progress.json").write_text('{"records_done": 0, "bytes": 0}')
    with pytest.raises(FramingInputError, match="interrupted run. Add --resume"):
        predict_file(clf, src, tmp_path / "out.jsonl")
    with pytest.raises(FramingInputError, match="nothing to resume"):
        predict_file(clf, src, tmp_path / "fresh.jsonl", PredictOptions(resume=True))


def test_resume_after_kill_has_no_duplicates_and_no_gaps(model_dir, tmp_path):
    n = 60000
    src = write_lines(tmp_path / "big.jsonl",
                      [{"id": i, "text": f"The delegation number {i} discussed trade and visas."} for i in range(n)])
    out = tmp_path / "big_out.jsonl"
    progress = tmp_path / "big_out.jsonl.progress.json"
    cmd = [sys.executable, "-m", "train.cli", "predict", str(model_dir), "--input", str(src), "--output", str(out),
           "--id-field", "id", "--chunk-size", "500", "--precision", "fp32", "--device", "cpu", "--no-text"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        if progress.exists() and json.loads(progress.read_text())["records_done"] >= 1500:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(progress.read_text())["records_done"]
    assert 0 < done < n, "the run must be killed midway for this test to mean anything"
    assert not out.exists()
    resumed = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == list(range(n))
    assert not progress.exists() and not (tmp_path / "big_out.jsonl.partial").exists()


def test_parquet_output_holds_error_rows_and_article_rows(clf, tmp_path):
    import pyarrow.parquet as pq

    src = write_lines(tmp_path / "mixed.jsonl", [{"id": 1, "text": "Mothers wept. The plant was completed."},
                                                 {"id": 2, "text": ""}, {"id": 3, "text": "They won."}])
    out = tmp_path / "mixed.parquet"
    predict_file(clf, src, out, PredictOptions(id_field="id", articles=True))
    table = pq.read_table(out).to_pylist()
    assert [r["type"] for r in table if r["id"] == 1] == ["article", "sentence", "sentence"]
    assert [r["error"] for r in table if r["id"] == 2] == ["text field 'text' is empty"]
    assert json.loads(table[0]["shares"])["loss"] >= 0


def interrupted_run(clf, src, out, monkeypatch, opts=None):
    """Score everything but stop before the output is published, as a kill at the very end would:
    the progress file and the partial output stay behind."""
    from infer import corpus

    def killed(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus, "finish_output", killed)
    with pytest.raises(KeyboardInterrupt):
        predict_file(clf, src, out, opts or PredictOptions(id_field="id", chunk_size=2))
    monkeypatch.undo()


def other_thresholds(model_dir, tmp_path):
    import shutil

    from infer import read_meta, write_meta

    folder = shutil.copytree(model_dir, tmp_path / "other_model")
    meta = read_meta(folder)
    meta.thresholds = {label: 0.25 for label in meta.labels}
    write_meta(folder, meta)
    return FramingClassifier.from_pretrained(folder, device="cpu")


@pytest.mark.parametrize("change, message", [
    ("shuffled", r"input\.head_sha256 was '[0-9a-f]{12}\.\.\.'"),
    ("shorter", r"input\.size was \d+, now \d+;"),
    ("articles", r"options\.articles was False, now True"),
    ("no_text", r"options\.keep_text was True, now False"),
    ("model", r"model was '[0-9a-f]{12}\.\.\.', now '[0-9a-f]{12}\.\.\.'\)"),
])
def test_resume_refuses_a_different_job(clf, model_dir, tmp_path, monkeypatch, change, message):
    rows = [{"id": i, "text": f"Delegation {i} discussed trade."} for i in range(5)]
    src, out = write_lines(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    interrupted_run(clf, src, out, monkeypatch)
    opts = PredictOptions(id_field="id", chunk_size=2, resume=True, articles=change == "articles",
                          keep_text=change != "no_text")
    if change in ("shuffled", "shorter"):
        write_lines(src, rows[::-1] if change == "shuffled" else rows[:3])
    resumer = other_thresholds(model_dir, tmp_path) if change == "model" else clf
    with pytest.raises(FramingInputError, match=rf"--resume: .*out\.jsonl\.progress\.json was written by a different "
                                                rf"job \(.*{message}.*resuming would mix rows.*to start over"):
        predict_file(resumer, src, out, opts)
    assert not out.exists()


def test_resume_of_the_same_job_finishes_it(clf, tmp_path, monkeypatch):
    src = write_lines(tmp_path / "in.jsonl", [{"id": i, "text": f"Delegation {i} met."} for i in range(5)])
    out = tmp_path / "out.jsonl"
    interrupted_run(clf, src, out, monkeypatch)
    job = json.loads((tmp_path / "out.jsonl.progress.json").read_text())["job"]
    assert job["input"]["size"] == src.stat().st_size and job["options"]["precision"] == "fp32"
    summary = predict_file(clf, src, out, PredictOptions(id_field="id", chunk_size=2, resume=True))
    assert summary.records == 5
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(range(5))


def test_progress_file_without_fingerprint_is_refused(clf, tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [{"text": "a b"}])
    (tmp_path / "out.jsonl.partial").write_text("")
    (tmp_path / "out.jsonl.progress.json").write_text('{"records_done": 0, "bytes": 0, "source": "in.jsonl"}')
    with pytest.raises(FramingInputError, match="holds no job fingerprint: an older version wrote it"):
        predict_file(clf, src, tmp_path / "out.jsonl", PredictOptions(resume=True))


def test_lone_surrogate_is_replaced_and_flagged(clf, tmp_path):
    lines = ['{"id": 1, "text": "Mothers wept \\ud83d.", "note": ["\\udc00"]}', '{"id": 2, "text": "They won."}']
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for articles in (False, True):
        out = tmp_path / f"out_{articles}.jsonl"
        summary = predict_file(clf, tmp_path / "in.jsonl", out, PredictOptions(id_field="id", articles=articles))
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert summary.bad == 0 and "error" not in rows[0]
        assert rows[0]["warning"] == ("'text', 'note' had invalid unicode (lone surrogate), replaced with U+FFFD")
        assert ("warning" in rows[-1]) is False
    assert rows[1]["text"] == "Mothers wept \ufffd." and rows[1]["type"] == "sentence"


def test_parquet_columns_hold_every_mix_of_types(clf, tmp_path):
    import pyarrow.parquet as pq

    src = write_lines(tmp_path / "in.jsonl", [
        {"text": "a", "source": 7, "weight": 1, "flag": True, "big": 1},
        {"text": "b", "source": "kcna", "weight": 2.5, "flag": 3, "big": 2 ** 70},
        {"text": "c", "source": None, "weight": None, "flag": None, "big": None}])
    out = tmp_path / "out.parquet"
    predict_file(clf, src, out)
    table = pq.read_table(out)
    assert str(table.schema.field("weight").type) == "double"
    assert table.column("weight").to_pylist() == [1.0, 2.5, None]
    assert table.column("source").to_pylist() == ["7", "kcna", None]
    assert table.column("flag").to_pylist() == ["true", "3", None]
    assert table.column("big").to_pylist() == ["1", str(2 ** 70), None]
