"""Streaming corpus prediction (`framing predict`), resumable after an interruption.

Output is built in ``OUT.partial`` chunk by chunk. After each chunk is flushed to
disk, ``OUT.progress.json`` records how many input records are done and how long
the partial file is. ``--resume`` cuts the partial file back to that length and
skips that many records, so a kill at any moment leaves no duplicates and no
gaps. The finished file appears under its real name in one rename.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .atomic import atomic_write_json
from .classifier import FramingClassifier
from .errors import FramingInputError
from .readers import iter_records

log = logging.getLogger(__name__)
OUTPUT_SUFFIXES = (".jsonl", ".parquet")


@dataclass
class PredictOptions:
    text_field: str = "text"
    id_field: str | None = None
    articles: bool = False
    chunk_size: int = 2048
    resume: bool = False
    on_bad: str = "skip"      # "skip": write an error row and go on; "fail": stop with an error
    keep_text: bool = True


@dataclass
class PredictSummary:
    records: int
    scored: int
    bad: int
    output: str


def predict_file(classifier: FramingClassifier, source: str | Path, output: str | Path,
                 opts: PredictOptions | None = None) -> PredictSummary:
    opts = opts or PredictOptions()
    source, output = Path(source), Path(output)
    if output.suffix not in OUTPUT_SUFFIXES:
        raise FramingInputError(f"--output must end in {' or '.join(OUTPUT_SUFFIXES)}, got {output.name!r}.")
    partial, progress = _side_files(output)
    done, offset = _start_state(partial, progress, opts.resume)
    records = islice(iter_records(source), done, None)
    bar = tqdm(total=_count_records(source), initial=done, unit="rec", desc="predicting", dynamic_ncols=True)
    scored = bad = 0
    with open(partial, "r+b" if offset else "wb") as fh:
        fh.truncate(offset)
        fh.seek(offset)
        while chunk := list(islice(records, opts.chunk_size)):
            rows, n_bad = _score_chunk(classifier, chunk, opts)
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
            done += len(chunk)
            scored, bad = scored + len(chunk) - n_bad, bad + n_bad
            atomic_write_json(progress, {"records_done": done, "bytes": fh.tell(), "source": str(source)})
            bar.update(len(chunk))
    bar.close()
    _finish(partial, output)
    progress.unlink(missing_ok=True)
    if bad:
        log.warning("%d record(s) had no usable text; they have an 'error' field in %s", bad, output)
    return PredictSummary(done, scored, bad, str(output))


def _side_files(output: Path) -> tuple[Path, Path]:
    return output.with_name(output.name + ".partial"), output.with_name(output.name + ".progress.json")


def _start_state(partial: Path, progress: Path, resume: bool) -> tuple[int, int]:
    if not resume:
        if progress.exists():
            raise FramingInputError(f"{progress} shows an interrupted run. Add --resume to continue it, "
                                    f"or delete {progress} and {partial} to start over.")
        return 0, 0
    if not progress.exists():
        raise FramingInputError(f"--resume was given, but {progress} does not exist: nothing to resume.")
    state = json.loads(progress.read_text(encoding="utf-8"))
    if not partial.exists() or partial.stat().st_size < state["bytes"]:
        raise FramingInputError(f"{partial} is missing or shorter than {progress} records; start over.")
    log.info("resuming after %d records", state["records_done"])
    return int(state["records_done"]), int(state["bytes"])


def _count_records(source: Path) -> int | None:
    if source.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(source).metadata.num_rows
    with open(source, "rb") as fh:  # a fast newline count gives the progress bar an ETA
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return max(lines - (1 if source.suffix == ".csv" else 0), 0)


def _score_chunk(classifier: FramingClassifier, chunk: list[tuple[str, dict]],
                 opts: PredictOptions) -> tuple[list[dict], int]:
    good, rows, n_bad = [], [None] * len(chunk), 0
    for k, (where, record) in enumerate(chunk):
        problem = _text_problem(record, opts.text_field)
        if problem is None:
            good.append(k)
            continue
        if opts.on_bad == "fail":
            raise FramingInputError(f"{where}: {problem}. Fix the record, or pass --on-bad skip to write an "
                                    "error row for it and continue.")
        log.warning("%s: %s; skipped", where, problem)
        rows[k] = {**_identity(record, where, opts), "error": problem}
        n_bad += 1
    texts = [chunk[k][1][opts.text_field] for k in good]
    if opts.articles:
        scored = _article_rows(classifier, texts, [chunk[k] for k in good], opts)
    else:
        scored = _sentence_rows(classifier, texts, [chunk[k] for k in good], opts)
    for k, row in zip(good, scored):
        rows[k] = row
    flat = []
    for row in rows:
        flat.extend(row if isinstance(row, list) else [row])
    return flat, n_bad


def _text_problem(record: dict, field: str) -> str | None:
    if field not in record or record[field] is None:
        return f"missing text field {field!r} (fields: {sorted(record)})"
    if not isinstance(record[field], str):
        return f"text field {field!r} is {type(record[field]).__name__}, expected a string"
    if not record[field].strip():
        return f"text field {field!r} is empty"
    return None


def _identity(record: dict, where: str, opts: PredictOptions) -> dict:
    ident = {"line": where.rsplit(":", 1)[-1]}
    if opts.id_field:
        ident["id"] = record.get(opts.id_field)
    return ident


def _sentence_rows(classifier, texts, chunk, opts) -> list[dict]:
    probs = classifier.predict_proba(texts)
    labels = classifier.labels_from_proba(probs)
    rows = []
    for (where, record), p, lab in zip(chunk, probs, labels):
        row = dict(record) if opts.keep_text else _identity(record, where, opts)
        row.update({"labels": lab, "scores": {l: round(float(x), 5) for l, x in zip(classifier.labels, p)}})
        rows.append(row)
    return rows


def _article_rows(classifier, texts, chunk, opts) -> list[list[dict]]:
    out = []
    for (where, record), analysis in zip(chunk, classifier.analyze_many(texts)):
        ident = _identity(record, where, opts)
        prof = analysis.profile
        rows = [{**ident, "type": "article", "n_sentences": prof.n_sentences, "counts": prof.counts,
                 "shares": {l: round(s, 5) for l, s in prof.shares.items()}, "dominant": prof.dominant}]
        for i, s in enumerate(analysis.sentences):
            rows.append({**ident, "type": "sentence", "sentence": i, "start": s.start, "end": s.end,
                         **({"text": s.text} if opts.keep_text else {}), "labels": s.labels,
                         "scores": {l: round(x, 5) for l, x in s.scores.items()}})
        out.append(rows)
    return out


def _finish(partial: Path, output: Path) -> None:
    if output.suffix == ".jsonl":
        os.replace(partial, output)
        return
    import pyarrow.parquet as pq

    schema = _parquet_schema(partial)
    tmp = output.with_name(output.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer, open(partial, encoding="utf-8") as fh:
        while lines := list(islice(fh, 8192)):
            rows = [_flat(json.loads(line)) for line in lines]
            writer.write_batch(_batch(rows, schema))
    os.replace(tmp, output)
    partial.unlink()


def _parquet_schema(partial: Path):
    """One schema for the whole file, from a first pass: every key any row has (error rows
    and article rows add their own), typed by its first non-null value."""
    import pyarrow as pa

    types: dict[str, pa.DataType] = {}
    with open(partial, encoding="utf-8") as fh:
        for line in fh:
            for key, value in _flat(json.loads(line)).items():
                if key not in types or (types[key] == pa.null() and value is not None):
                    types[key] = _arrow_type(value)
    return pa.schema([(k, t if t != pa.null() else pa.string()) for k, t in types.items()])


def _arrow_type(value: Any):
    import pyarrow as pa

    if value is None:
        return pa.null()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, list):
        return pa.list_(pa.string())
    return pa.string()


def _batch(rows: list[dict], schema):
    import pyarrow as pa

    columns = {}
    for field in schema:
        values = [row.get(field.name) for row in rows]
        if pa.types.is_string(field.type):
            values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        if pa.types.is_list(field.type):
            values = [v if v is None else [str(x) for x in v] for v in values]
        columns[field.name] = pa.array(values, type=field.type)
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """Parquet columns: nested score/count dicts become JSON strings so every row fits one schema."""
    return {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in row.items()}


def write_html(classifier: FramingClassifier, source: str | Path, html_path: str | Path,
               text_field: str = "text", limit: int = 200) -> int:
    """Write the highlighted view of the first ``limit`` usable records to one HTML page."""
    from .atomic import atomic_write_text
    from .render import highlight_html, html_page

    texts = []
    for _, record in iter_records(source):
        if _text_problem(record, text_field) is None:
            texts.append(record[text_field])
        if len(texts) >= limit:
            break
    bodies = [highlight_html(r, text=t, labels=classifier.labels)
              for r, t in zip(classifier.analyze_many(texts), texts)]
    atomic_write_text(html_path, html_page(bodies, title=f"Frames in {Path(source).name}"))
    return len(bodies)
