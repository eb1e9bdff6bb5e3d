"""`framing predict --engine ray` on a real local Ray cluster: the same rows as the single-process
path, a failed attempt retried, a killed driver resumed with no duplicates and no gaps."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from infer import FramingClassifier
from infer.corpus import PredictOptions, predict_file
from infer.ray_predict import TEST_FAULT_ENV, plan_shards, read_shard
from infer.readers import iter_records
from train.cli import main

from conftest import ROOT


def write_lines(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def corpus(n, bad=()):
    """n records with ids; the ids in ``bad`` have empty or missing text."""
    words = ["The martyrs fell.", "Mothers wept for the nation.", "They won the final.", "The plant was completed."]
    return [({"id": i} if i in bad else {"id": i, "text": f"{words[i % 4]} Day {i} of {' '.join(words[:i % 3])}"})
            for i in range(n)]


def read_rows(path):
    import pyarrow.parquet as pq

    if path.suffix != ".jsonl":
        parts = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
        return [row for part in parts for row in pq.read_table(part).to_pylist()]
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_rows(ray_rows, local_rows):
    """Labels and everything else identical, scores within 1e-5, every record exactly once."""
    assert len(ray_rows) == len(local_rows)
    for mine, theirs in zip(ray_rows, local_rows):
        scores, expected = mine.pop("scores", None), theirs.pop("scores", None)
        assert mine == theirs
        scores, expected = [json.loads(s) if isinstance(s, str) else s for s in (scores, expected)]
        assert (scores is None) == (expected is None)
        if scores is not None:
            assert scores.keys() == expected.keys()
            assert max(abs(scores[k] - expected[k]) for k in scores) <= 1e-5


def test_shards_read_back_exactly_what_the_reader_gives(tmp_path):
    """The plan: shards of K records whose concatenation is the reader's output, record for record,
    with the same file:line, for every input type (blank lines, CSV quotes, Parquet row groups)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("".join(f'{{"id": {i}, "text": "t\\u00e9 {i}"}}\n' + ("\n" if i % 4 == 0 else "")
                             for i in range(23)))
    (tmp_path / "b.txt").write_text("one\r\n\n two \nthree\n" * 5)
    (tmp_path / "c.csv").write_text('id,text\n1,"two\nlines"\n2,plain\n3,"a ""quote"""\n' * 4)
    pq.write_table(pa.table({"id": list(range(30)), "text": [f"s{i}" for i in range(30)]}),
                   tmp_path / "d.parquet", row_group_size=7)
    paths = sorted(tmp_path.iterdir())
    shards = plan_shards(paths, 5)
    assert [s.index for s in shards] == list(range(len(shards))) and max(map(len, shards)) == 5
    from_shards = [pair for shard in shards for pair in read_shard(shard)]
    assert from_shards == [pair for path in paths for pair in iter_records(path)]


def test_without_ray_the_engine_says_how_to_install_it(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    src = write_lines(tmp_path / "in.jsonl", corpus(3))
    code = main(["predict", str(model_dir), "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                 "--engine", "ray"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "error: --engine ray needs Ray, which is not installed: pip install '.[ray]'\n"


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A real local Ray cluster in this process: 2 CPUs, a small object store. The first attempt at
    shard 1 of the first job that reaches it fails once (the marker file records that it did)."""
    ray = pytest.importorskip("ray")
    marker = tmp_path_factory.mktemp("fault") / "failed-once"
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False,
             runtime_env={"env_vars": {TEST_FAULT_ENV: f"1:{marker}"}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield {"address": ray.get_runtime_context().gcs_address, "fault_marker": marker}
    ray.shutdown()


@pytest.fixture(scope="module")
def clf(model_dir):
    return FramingClassifier.from_pretrained(model_dir, device="cpu")


def ray_predict(model_dir, src, out, *extra):
    return main(["predict", str(model_dir), "--input", str(src), "--output", str(out), "--engine", "ray",
                 "--precision", "fp32", "--device", "cpu", *extra])


@pytest.mark.slow
def test_ray_matches_single_process_though_one_attempt_failed(ray_cluster, model_dir, clf, tmp_path):
    src = write_lines(tmp_path / "in.jsonl", corpus(300, bad={7, 150}))
    lines = src.read_text().splitlines(keepends=True)
    lines[200] = '{"id": 200, "text": oops}\n'  # a corrupt line is an error row too, in both engines
    src.write_text("\ufeff" + "".join(lines), encoding="utf-8")  # and a BOM is read past
    local = tmp_path / "local.jsonl"
    predict_file(clf, src, local, PredictOptions(id_field="id"))
    out = tmp_path / "ray.jsonl"
    assert ray_predict(model_dir, src, out, "--id-field", "id", "--chunk-size", "64", "--workers", "2") == 0
    assert ray_cluster["fault_marker"].exists(), "shard 1's first attempt must have failed and been retried"
    rows = read_rows(out)
    assert [r["id"] for r in rows] == list(range(200)) + [None] + list(range(201, 300))  # 200's line is unreadable
    assert [r["line"] for r in rows if "error" in r] == ["8", "151", "201"]
    assert_same_rows(rows, read_rows(local))
    assert not (tmp_path / "ray.jsonl.parts").exists()


@pytest.mark.slow
def test_ray_articles_from_a_folder_into_parquet_shards(ray_cluster, model_dir, clf, tmp_path, capsys):
    folder = tmp_path / "corpus"
    folder.mkdir()
    articles = [{"id": i, "text": " ".join(r["text"] for r in corpus(i % 5 + 1))} for i in range(40)]
    write_lines(folder / "a.jsonl", articles[:25])
    (folder / "b.csv").write_text("id,text\n" + "".join(f'{a["id"]},"{a["text"]}"\n' for a in articles[25:]))
    out = tmp_path / "shards"
    assert ray_predict(model_dir, folder, out, "--articles", "--id-field", "id", "--chunk-size", "10") == 0
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json"] + [f"part-{i:06d}.parquet" for i in range(5)]
    local_rows = []
    for name in ("a.jsonl", "b.csv"):
        predict_file(clf, folder / name, tmp_path / f"{name}.parquet", PredictOptions(id_field="id", articles=True))
        local_rows += read_rows(tmp_path / f"{name}.parquet")
    assert_same_rows(read_rows(out), local_rows)
    assert ray_predict(model_dir, folder, out, "--articles", "--id-field", "id", "--chunk-size", "10") == 2
    assert "holds the output of an earlier run. Add --resume" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_on_bad_fail_stops_with_file_and_line(ray_cluster, model_dir, tmp_path, capsys):
    src = write_lines(tmp_path / "in.jsonl", corpus(20, bad={13}))
    assert ray_predict(model_dir, src, tmp_path / "o.jsonl", "--on-bad", "fail", "--chunk-size", "8") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and f"{src}:14: missing text field 'text'" in err and "--on-bad skip" in err


@pytest.mark.slow
def test_ray_resume_after_the_driver_is_killed(ray_cluster, model_dir, tmp_path, capsys):
    n = 6000
    src = write_lines(tmp_path / "big.jsonl", corpus(n))
    out = tmp_path / "big.jsonl.out.jsonl"
    parts = tmp_path / "big.jsonl.out.jsonl.parts"
    args = ["predict", str(model_dir), "--input", str(src), "--output", str(out), "--engine", "ray", "--id-field", "id",
            "--chunk-size", "200", "--precision", "fp32", "--device", "cpu", "--no-text", "--workers", "1"]
    # a second driver on the same cluster, killed once some shards are written
    driver = subprocess.Popen([sys.executable, "-m", "train.cli", *args, "--ray-address", ray_cluster["address"]],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(parts.glob("part-*"))) < 3 and driver.poll() is None:
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    written = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*")}
    assert 3 <= len(written) < n // 200, "the run must be killed midway for this test to mean anything"
    assert not out.exists()
    assert main(args + ["--resume"]) == 0
    scored = int(capsys.readouterr().out.strip().splitlines()[-1].split()[2])
    assert 0 < scored <= n - 200 * len(written)  # the shards written before the kill are not scored again
    ids = [row["id"] for row in read_rows(out)]
    assert ids == list(range(n))  # no duplicates, no gaps, in order
    assert not parts.exists()
