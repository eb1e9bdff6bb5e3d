"""The throughput benchmark runs end to end on the tiny model and ends with one JSON line."""
import json
import subprocess
import sys

from conftest import ROOT

SENTENCES = ["The brave soldiers won a great victory.", "Mothers wept for the fallen.",
             "The delegation discussed trade and the harvest with the visiting ministers of the region."]


def test_benchmark_prints_ratios_and_agreement_as_its_last_line(model_dir, tmp_path):
    sentences = tmp_path / "sentences.jsonl"
    sentences.write_text("".join(json.dumps({"text": t}) + "\n" for t in SENTENCES), encoding="utf-8")
    cmd = [sys.executable, "benchmarks/throughput.py", "--model", str(model_dir), "--n", "40", "--repeats", "2",
           "--input", str(sentences), "--dev-real", str(tmp_path / "absent.jsonl")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["n"] == 40 and summary["repeats"] == 2 and summary["mean_tokens"] > 0
    assert summary["input"] == str(sentences) and summary["device"] == "cpu"
    results = summary["results"]
    assert set(results) == {"pipeline", "fp32", "bf16", "int8"}
    assert results["fp32"]["label_agreement_fp32"] == 1.0
    # padded, length-sorted batches sum in another order than the pipeline: ~1e-5 apart in fp32
    assert results["fp32"]["max_abs_diff_vs_pipeline"] < 5e-5
    assert all(r["sent_per_s"] > 0 and r["ratio"] > 0 for r in results.values())
    assert all(r["peak_rss_mb"] > 0 and r["peak_gpu_mb"] is None for r in results.values())
    assert summary["peak_rss_mb"] == max(r["peak_rss_mb"] for r in results.values())
    # each mode records the path it ran: the tiny BERT takes the fast path in every precision
    runtimes = [results[mode]["runtime"] for mode in ("fp32", "bf16", "int8")]
    assert [(r["precision"], r["fast_path"]) for r in runtimes] == [("fp32", True), ("bf16", True), ("int8", True)]
    assert "fp32 ran on cpu, fp32: fast path" in done.stdout
