"""`framing predict --engine ray`: the single-process scoring of ``infer/corpus.py``, spread over a Ray cluster.

How the work is cut, and why a resume is exact:
- The driver plans the input (one file, a folder, or a glob) into **shards** of ``chunk_size``
  records, by record index, in file order. A JSONL/TXT shard carries the byte offset of its
  first line, a Parquet shard its row range, a CSV shard its record range.
- A Ray Data dataset of shard descriptors goes through ``map_batches`` to a pool of actors. Each
  actor loads ``FramingClassifier`` once; per shard it reads the records, scores them with the
  single-process code (so rows, error rows and warnings are the same), and writes the shard's
  output file atomically (``part-000123.parquet`` or ``.jsonl``).
- ``_manifest.json`` beside the parts holds the job's fingerprint (input, model, row-shaping
  options, shard size). ``--resume`` checks it and plans only the shards whose part is missing,
  so what a failure costs is the shards in flight. One output file, when asked for, is put
  together from the parts in order at the end.

Ray's file readers (``read_json``, ``read_csv``, ``read_parquet``) are not used for the records:
they infer column types (a CSV id becomes an int, a pandas-read JSONL date a timestamp, a text
that is a number in one row fails the whole read) and carry no line numbers, so neither the
equality with the single-process output nor error rows with file and line could hold.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

from .atomic import atomic_path, atomic_write_json, atomic_write_jsonl
from .corpus import (OUTPUT_SUFFIXES, PredictOptions, PredictSummary, check_paths, finish_output, job_differences,
                     job_fingerprint, score_chunk)
from .errors import FramingInputError
from .readers import RECORD_SUFFIXES, iter_records, json_record, utf8_lines

log = logging.getLogger(__name__)
MANIFEST = "_manifest.json"
PART = re.compile(r"part-(\d{6})\.(jsonl|parquet)")
LINE_SUFFIXES = (".jsonl", ".json", ".txt")
MAP_RETRIES = 2                            # a shard whose actor raises is tried this many more times
TEST_FAULT_ENV = "FRAMING_TEST_RAY_FAULT"  # "INDEX:MARKER": the first attempt at shard INDEX raises (tests)
INSTALL_HINT = "pip install '.[ray]'"


@dataclass
class RayCluster:
    address: str | None = None            # None: start Ray on this machine; "auto" or HOST:PORT: join a cluster
    workers: int = 1                      # actors, each holding one copy of the model
    cpus_per_worker: int = 1              # CPU cores each actor reserves, and torch threads it runs
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0

    def __post_init__(self):
        for name, least in (("workers", 1), ("cpus_per_worker", 1), ("gpus_per_worker", 0)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < least):
                raise FramingInputError(f"{name} must be at least {least}, got {value!r}.")


@dataclass(frozen=True)
class Shard:
    index: int
    path: str
    start: int                 # first record, counted within its file from 0
    stop: int
    offset: int | None = None  # byte offset of the first record's line (line-based files)
    line: int | None = None    # and that line's number

    def __len__(self) -> int:
        return self.stop - self.start


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise FramingInputError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def predict_on_ray(model_dir: str | Path, source: str | Path, output: str | Path, opts: PredictOptions,
                   cluster: RayCluster, load: dict[str, Any] | None = None) -> PredictSummary:
    """Score ``source`` into ``output`` (a .jsonl/.parquet file, or a folder of Parquet shards) on Ray.
    ``load``: keyword arguments for ``FramingClassifier.from_pretrained`` in each actor."""
    from .classifier import FramingClassifier

    ray, load = import_ray(), dict(load or {})
    paths, output = expand_inputs(source), Path(output)
    parts, suffix = _parts_layout(output, paths)
    # loaded once on the driver as well: a broken model folder fails here, before a cluster starts
    job = _job(FramingClassifier.from_pretrained(model_dir, device="cpu"), paths, opts, load.get("precision"))
    shards = plan_shards(paths, opts.chunk_size)
    done = _start_parts(parts, job, len(shards), opts.resume)
    todo = [s for s in shards if s.index not in done]
    scored = bad = 0
    if todo:
        started = _connect(ray, cluster)
        try:
            scorer = dict(model_dir=str(model_dir), load=load, opts=opts, parts=str(parts), suffix=suffix,
                          threads=cluster.cpus_per_worker)
            scored, bad = _score_shards(ray, todo, scorer, cluster, len(shards))
        finally:
            if started:
                ray.shutdown()
    if suffix == ".jsonl":
        _assemble(parts, output, len(shards))
    if bad:
        log.warning("%d record(s) had no usable text; they have an 'error' field in %s", bad, output)
    return PredictSummary(sum(map(len, shards)), scored, bad, str(output))


def expand_inputs(source: str | Path) -> list[Path]:
    """One corpus file, every corpus file under a folder, or the files a glob matches; sorted."""
    text = str(source)
    if any(c in text for c in "*?["):
        found = [Path(p) for p in glob.glob(text, recursive=True)]
    elif Path(text).is_dir():
        found = list(Path(text).rglob("*"))
    elif Path(text).is_file():
        return [Path(text)]
    else:
        raise FramingInputError(f"--input {text} does not exist; expected a corpus file, a folder of them, "
                                "or a glob such as 'corpus/*.jsonl'.")
    files = sorted(p for p in found if p.is_file() and p.suffix.lower() in RECORD_SUFFIXES
                   and not p.name.startswith((".", "_")))
    if not files:
        raise FramingInputError(f"--input {text} holds no corpus files ({', '.join(RECORD_SUFFIXES)}); give a file, "
                                "a folder of such files, or a glob such as 'corpus/*.jsonl'.")
    return files


def _parts_layout(output: Path, paths: list[Path]) -> tuple[Path, str]:
    """Where the parts go, and their type: beside a single output file, or the output folder itself."""
    if output.suffix in OUTPUT_SUFFIXES:
        for path in paths:
            check_paths(path, output)
        return output.with_name(output.name + ".parts"), ".jsonl"
    if output.is_file():
        raise FramingInputError(f"--output {output} is a file; with --engine ray give a folder (Parquet shards) "
                                "or a path ending in .jsonl or .parquet (one file).")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FramingInputError(f"Cannot create the output folder {output} ({exc.strerror}); "
                                "choose an --output in a folder you can write to.") from None
    return output, ".parquet"


def _job(classifier, paths: list[Path], opts: PredictOptions, precision: str | None) -> dict[str, Any]:
    """The single-process fingerprint, per input file, plus what shapes the shards."""
    jobs = [job_fingerprint(classifier, path, opts) for path in paths]
    options = {**jobs[0]["options"], "precision": precision or "fp32", "shard_size": opts.chunk_size}
    return {"inputs": [j["input"] for j in jobs], "model": jobs[0]["model"], "options": options}


def _start_parts(parts: Path, job: dict[str, Any], n_shards: int, resume: bool) -> set[int]:
    """The shards already written (none on a fresh start); refuses to mix two jobs' parts."""
    manifest, start_over = parts / MANIFEST, f"delete {parts} to start over"
    if not resume:
        if parts.exists() and any(parts.iterdir()):
            raise FramingInputError(f"{parts} holds the output of an earlier run. Add --resume to continue it, "
                                    f"or {start_over}.")
        atomic_write_json(manifest, {"job": job, "shards": n_shards})
        return set()
    if not manifest.is_file():
        raise FramingInputError(f"--resume was given, but {manifest} does not exist: nothing to resume.")
    changed = job_differences(json.loads(manifest.read_text(encoding="utf-8")).get("job"), job)
    if changed:
        raise FramingInputError(f"--resume: {manifest} was written by a different job ({changed}); resuming would "
                                f"mix rows. Rerun with the same input, model and options, or {start_over}.")
    done = set()
    for path in parts.iterdir():
        match = PART.fullmatch(path.name)
        if match:
            done.add(int(match.group(1)))
        elif path.name != MANIFEST:
            path.unlink()  # a temporary file of a part that a kill interrupted
    log.info("resuming: %d of %d shard(s) are done, scoring the other %d", len(done), n_shards, n_shards - len(done))
    return done


def plan_shards(paths: list[Path], size: int) -> list[Shard]:
    shards: list[Shard] = []
    for path in paths:
        for start, stop, offset, line in _file_shards(path, size):
            shards.append(Shard(len(shards), str(path), start, stop, offset, line))
    return shards


def _file_shards(path: Path, size: int) -> list[tuple[int, int, int | None, int | None]]:
    if path.suffix.lower() in LINE_SUFFIXES:
        return _line_shards(path, size)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        n = pq.ParquetFile(path).metadata.num_rows
    else:
        n = sum(1 for _ in iter_records(path))
    return [(start, min(start + size, n), None, None) for start in range(0, n, size)]


def _line_shards(path: Path, size: int) -> list[tuple[int, int, int | None, int | None]]:
    """One pass over the raw lines: the byte offset and line number of every size-th record, so
    that an actor seeks straight to its shard. Blank lines are not records, as in the reader."""
    starts, n, offset = [], 0, 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if raw.decode("utf-8", "replace").strip():
                if n % size == 0:
                    starts.append((n, offset, lineno))
                n += 1
            offset += len(raw)
    stops = [start for start, _, _ in starts[1:]] + [n]
    return [(start, stop, off, line) for (start, off, line), stop in zip(starts, stops)]


def read_shard(shard: Shard, lenient: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """The shard's ``(where, record)`` pairs, exactly as ``iter_records(path, lenient)`` gives them."""
    suffix = Path(shard.path).suffix.lower()
    if shard.offset is not None:
        yield from _line_records(shard, suffix, lenient)
    elif suffix == ".parquet":
        yield from _parquet_records(shard)
    else:  # CSV: quoted fields may span lines, so no byte offsets; the reader skips to the shard
        yield from islice(iter_records(shard.path), shard.start, shard.stop)


def _line_records(shard: Shard, suffix: str, lenient: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    wanted = len(shard)
    for lineno, line in utf8_lines(Path(shard.path), shard.offset, shard.line):
        if not line.strip():
            continue
        where = f"{shard.path}:{lineno}"
        yield where, {"text": line.rstrip("\r\n")} if suffix == ".txt" else json_record(line, where, lenient)
        wanted -= 1
        if not wanted:
            return


def _parquet_records(shard: Shard) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    pf, first = pq.ParquetFile(shard.path), 0
    for group in range(pf.num_row_groups):
        n = pf.metadata.row_group(group).num_rows
        if first < shard.stop and first + n > shard.start:  # only the row groups the shard touches are read
            for row, record in enumerate(pf.read_row_group(group).to_pylist(), first + 1):
                if shard.start < row <= shard.stop:
                    yield f"{shard.path}:row {row}", record
        first += n


def part_name(index: int, suffix: str) -> str:
    return f"part-{index:06d}{suffix}"


class ShardScorer:
    """One per Ray actor: loads the model once, then reads, scores and writes whole shards."""

    def __init__(self, model_dir: str, load: dict[str, Any], opts: PredictOptions, parts: str, suffix: str,
                 threads: int):
        import torch

        from .classifier import FramingClassifier

        torch.set_num_threads(threads)
        self.classifier = FramingClassifier.from_pretrained(model_dir, **load)
        self.opts, self.parts, self.suffix = opts, Path(parts), suffix

    def __call__(self, batch) -> dict[str, list]:
        results = [self.score(Shard(**fields)) for fields in batch.to_pylist()]
        return {key: [r[key] for r in results] for key in ("shard", "records", "bad", "fatal")}

    def score(self, shard: Shard) -> dict[str, Any]:
        _test_fault(shard.index)
        try:
            chunk = list(read_shard(shard, lenient=self.opts.on_bad == "skip"))
            rows, n_bad = score_chunk(self.classifier, chunk, self.opts)
        except FramingInputError as exc:
            # returned, not raised: Ray would retry it and then bury the message in a traceback
            return {"shard": shard.index, "records": 0, "bad": 0, "fatal": str(exc)}
        _write_part(rows, self.parts / part_name(shard.index, self.suffix))
        return {"shard": shard.index, "records": len(chunk), "bad": n_bad, "fatal": ""}


def _write_part(rows: list[dict], path: Path) -> None:
    if path.suffix == ".jsonl":
        atomic_write_jsonl(path, rows)
        return
    partial = path.with_name(f".{path.name}.partial")
    atomic_write_jsonl(partial, rows)
    finish_output(partial, path)  # the single-process Parquet writer: one schema from all rows, then one rename


def _test_fault(index: int) -> None:
    spec = os.environ.get(TEST_FAULT_ENV)
    if spec and int(spec.split(":", 1)[0]) == index:
        marker = Path(spec.split(":", 1)[1])
        if not marker.exists():
            marker.touch()
            raise RuntimeError(f"{TEST_FAULT_ENV}: injected failure of the first attempt at shard {index}")


def _connect(ray, cluster: RayCluster) -> bool:
    """Start or join Ray; True when this call started it (and so must shut it down)."""
    if ray.is_initialized():
        log.info("Ray: using the Ray this process already joined (%s)", ray.get_runtime_context().gcs_address)
        return False
    try:
        context = ray.init(address=cluster.address)
    except ConnectionError as exc:
        raise FramingInputError(f"--ray-address {cluster.address}: no Ray cluster answered ({exc}). Start one with "
                                "`ray start --head`, or leave --ray-address out to run Ray on this machine.") from None
    where = f"the cluster at {cluster.address}" if cluster.address else "a Ray started on this machine"
    log.info("Ray: %s%s", where, f"; dashboard http://{context.dashboard_url}" if context.dashboard_url else "")
    return True


def _actor_resources(ray, cluster: RayCluster) -> dict[str, float]:
    """Each actor's reservation, checked against the cluster so that a pool that can never be
    placed is an error now, not a job waiting forever."""
    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0), have.get("GPU", 0)
    per_gpu = cluster.gpus_per_worker if cluster.gpus_per_worker is not None else (1 if gpus else 0)
    need_cpus, need_gpus = cluster.workers * cluster.cpus_per_worker, cluster.workers * per_gpu
    if need_cpus > cpus or need_gpus > gpus:
        raise FramingInputError(f"{cluster.workers} worker(s) need {need_cpus} CPU(s) and {need_gpus:g} GPU(s); the "
                                f"cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s). Lower --workers, --threads "
                                "or --gpus-per-worker, or add nodes.")
    return {"num_cpus": cluster.cpus_per_worker, **({"num_gpus": per_gpu} if per_gpu else {})}


def _score_shards(ray, todo: list[Shard], scorer: dict[str, Any], cluster: RayCluster,
                  n_shards: int) -> tuple[int, int]:
    resources = _actor_resources(ray, cluster)
    workers = min(cluster.workers, len(todo))
    log.info("Ray: %d worker(s), each %s; %d of %d shard(s) of up to %d records to score", workers,
             ", ".join(f"{v:g} {k[4:].upper()}" for k, v in resources.items()), len(todo), n_shards,
             scorer["opts"].chunk_size)
    context = ray.data.DataContext.get_current()
    context.retried_map_errors, context.max_map_retries = True, MAP_RETRIES
    shards = ray.data.from_items([asdict(s) for s in todo], override_num_blocks=len(todo))
    results = shards.map_batches(ShardScorer, fn_constructor_kwargs=scorer, batch_size=1, batch_format="pyarrow",
                                 compute=ray.data.ActorPoolStrategy(size=workers), **resources)
    records = bad = 0
    try:
        for row in results.iter_rows():
            if row["fatal"]:
                raise FramingInputError(row["fatal"])
            records, bad = records + row["records"], bad + row["bad"]
    except Exception:
        log.error("stopped; the finished shards are kept in %s: rerun with --resume to score the rest",
                  scorer["parts"])
        raise
    return records - bad, bad


def _assemble(parts: Path, output: Path, n_shards: int) -> None:
    """The parts, in shard order, as one file; then the parts go."""
    files = [parts / part_name(i, ".jsonl") for i in range(n_shards)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FramingInputError(f"{parts} lacks {len(missing)} part(s) ({missing[0]}, ...); rerun with --resume.")
    target = output if output.suffix == ".jsonl" else parts / "all.jsonl"
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for f in files:
            with open(f, "rb") as part:
                shutil.copyfileobj(part, out)
    if output.suffix == ".parquet":
        finish_output(target, output)
    shutil.rmtree(parts)
