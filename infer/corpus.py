"""Streaming corpus prediction (`framing predict`), resumable after an interruption.

Output is built in ``OUT.partial`` chunk by chunk. After each chunk is flushed to
disk, ``OUT.progress.json`` records how many input records are done and how long
the partial file is. ``--resume`` cuts the partial file back to that length and
skips that many records, so a kill at any moment leaves no duplicates and no
gaps. The progress file also holds a fingerprint of the job (input, model, and
the options that shape rows), and a resume that does not match it is refused:
continuing a different job would silently mix rows. The finished file appears
under its real name in one rename.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .atomic import atomic_write_json
from .classifier import FramingClassifier, replace_lone_surrogates
from .errors import FramingInputError
from .model_folder import FRAMING_FILE, WEIGHTS_FILE
from .readers import RECORD_SUFFIXES, UnreadableRecord, iter_records

log = logging.getLogger(__name__)
OUTPUT_SUFFIXES = (".jsonl", ".parquet")
ON_BAD = ("skip", "fail")
# What a resume compares: the input's size and both ends (a shuffled, cut or appended file
# changes one of them; hashing all of a 50 GB corpus would take minutes), and the model.
HEAD_BYTES, TAIL_BYTES = 1 << 20, 64 << 10


@dataclass
class PredictOptions:
    text_field: str = "text"
    id_field: str | None = None
    articles: bool = False
    chunk_size: int = 2048
    resume: bool = False
    on_bad: str = "skip"      # "skip": write an error row and go on; "fail": stop with an error
    keep_text: bool = True

    def __post_init__(self):
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise FramingInputError(f"chunk_size must be a positive number of records, got {self.chunk_size!r}; "
                                    "the default is 2048.")
        if self.on_bad not in ON_BAD:
            raise FramingInputError(f"on_bad must be one of {ON_BAD}, got {self.on_bad!r}.")


@dataclass
class PredictSummary:
    records: int
    scored: int
    bad: int
    output: str


def predict_file(classifier: FramingClassifier, source: str | Path, output: str | Path,
                 opts: PredictOptions | None = None) -> PredictSummary:
    opts = opts or PredictOptions()
    source, output = check_paths(source, output)
    partial, progress = _side_files(output)
    job = job_fingerprint(classifier, source, opts)
    done, offset = _start_state(partial, progress, opts.resume, job)
    records = islice(iter_records(source, lenient=opts.on_bad == "skip"), done, None)
    bar = tqdm(total=_count_records(source), initial=done, unit="rec", desc="predicting", dynamic_ncols=True)
    scored = bad = 0
    with open(partial, "r+b" if offset else "wb") as fh:
        fh.truncate(offset)
        fh.seek(offset)
        while chunk := list(islice(records, opts.chunk_size)):
            rows, n_bad = score_chunk(classifier, chunk, opts)
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
            done += len(chunk)
            scored, bad = scored + len(chunk) - n_bad, bad + n_bad
            atomic_write_json(progress, {"records_done": done, "bytes": fh.tell(), "job": job})
            bar.update(len(chunk))
    bar.close()
    finish_output(partial, output)
    progress.unlink(missing_ok=True)
    if bad:
        log.warning("%d record(s) had no usable text; they have an 'error' field in %s", bad, output)
    return PredictSummary(done, scored, bad, str(output))


def check_paths(source: str | Path, output: str | Path, html: str | Path | None = None) -> tuple[Path, Path]:
    """Check the input and output paths before any model is loaded or record scored: a mistake
    found after hours of scoring costs those hours. Creates a missing output folder."""
    source, output = Path(source), Path(output)
    if not source.is_file():
        found = "is a folder" if source.is_dir() else "does not exist"
        raise FramingInputError(f"--input {source} {found}; expected one corpus file "
                                f"({', '.join(RECORD_SUFFIXES)}). Check the path.")
    if source.suffix.lower() not in RECORD_SUFFIXES:
        raise FramingInputError(f"--input {source.name!r} has an unsupported type; expected one of "
                                f"{', '.join(RECORD_SUFFIXES)}. Convert it or rename it if the content fits.")
    if output.suffix not in OUTPUT_SUFFIXES:
        raise FramingInputError(f"--output must end in {' or '.join(OUTPUT_SUFFIXES)}, got {output.name!r}.")
    if output.is_dir():
        raise FramingInputError(f"--output {output} is a folder; expected a file path, e.g. {output / 'frames.jsonl'}.")
    for written in (output, *_side_files(output), _parquet_tmp(output), *([Path(html)] if html else [])):
        if written.resolve() == source.resolve() or (written.exists() and written.samefile(source)):
            raise FramingInputError(f"{written} would overwrite the input {source}; write to another file, "
                                    f"e.g. --output {source.with_name(source.stem + '.frames.jsonl')}.")
    _check_writable_folder(output.parent)
    return source, output


def _check_writable_folder(folder: Path) -> None:
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    problem = f"{blocker} is a file, not a folder" if blocker else None
    if not problem:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problem = exc.strerror
    if problem:
        raise FramingInputError(f"Cannot create the output folder {folder} ({problem}); "
                                "choose an --output in a folder you can write to.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FramingInputError(f"The output folder {folder} is not writable; "
                                "choose an --output in a folder you can write to, or fix its permissions.")


def _side_files(output: Path) -> tuple[Path, Path]:
    return output.with_name(output.name + ".partial"), output.with_name(output.name + ".progress.json")


def _parquet_tmp(output: Path) -> Path:
    return output.with_name(output.name + ".tmp")


def job_fingerprint(classifier: FramingClassifier, source: Path, opts: PredictOptions) -> dict[str, Any]:
    """What makes two runs write the same rows: the input, the model, and the row-shaping options."""
    size = source.stat().st_size
    with open(source, "rb") as fh:
        head = hashlib.sha256(fh.read(HEAD_BYTES)).hexdigest()
        fh.seek(max(size - TAIL_BYTES, 0))
        tail = hashlib.sha256(fh.read()).hexdigest()
    return {"input": {"path": str(source.resolve()), "size": size, "head_sha256": head, "tail_sha256": tail},
            "model": _model_identity(classifier),
            "options": {"text_field": opts.text_field, "id_field": opts.id_field, "articles": opts.articles,
                        "keep_text": opts.keep_text, "precision": classifier.precision}}


def _model_identity(classifier: FramingClassifier) -> str:
    """A hash of the weights (their recorded sha256, else the folder's framing.json, config.json
    and weights size) and of the labels, thresholds and max length, which change rows too."""
    meta = classifier.meta
    digest = hashlib.sha256(json.dumps([meta.labels, meta.thresholds, meta.max_length], sort_keys=True).encode())
    folder = Path(getattr(classifier.model.config, "name_or_path", "") or "/nonexistent")
    if meta.weights_sha256:
        digest.update(meta.weights_sha256.encode())
    elif (folder / FRAMING_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
        for name in (FRAMING_FILE, "config.json"):
            digest.update((folder / name).read_bytes())
        digest.update(str((folder / WEIGHTS_FILE).stat().st_size).encode())
    else:  # built in memory, not loaded from a folder
        digest.update(classifier.model.config.to_json_string().encode())
    return digest.hexdigest()


def _start_state(partial: Path, progress: Path, resume: bool, job: dict[str, Any]) -> tuple[int, int]:
    start_over = f"delete {progress} and {partial} to start over"
    if not resume:
        if progress.exists():
            raise FramingInputError(f"{progress} shows an interrupted run. Add --resume to continue it, "
                                    f"or {start_over}.")
        return 0, 0
    if not progress.exists():
        raise FramingInputError(f"--resume was given, but {progress} does not exist: nothing to resume.")
    try:
        state = json.loads(progress.read_text(encoding="utf-8"))
        done, offset, saved = int(state["records_done"]), int(state["bytes"]), state.get("job")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FramingInputError(f"{progress} is damaged ({exc}); {start_over}.") from None
    changed = job_differences(saved, job)
    if changed:
        raise FramingInputError(f"--resume: {progress} was written by a different job ({changed}); resuming would "
                                f"mix rows. Rerun with the same input, model and options, or {start_over}.")
    if not partial.exists() or partial.stat().st_size < offset:
        raise FramingInputError(f"{partial} is missing or shorter than {progress} records; {start_over}.")
    log.info("resuming after %d records", done)
    return done, offset


def job_differences(saved: dict[str, Any] | None, job: dict[str, Any]) -> str:
    if not isinstance(saved, dict):
        return "it holds no job fingerprint: an older version wrote it"
    then, now = _flat_keys(saved), _flat_keys(job)
    return "; ".join(f"{key} was {_short(then.get(key))}, now {_short(now[key])}"
                     for key in now if then.get(key) != now[key])


def _flat_keys(job: dict[str, Any]) -> dict[str, Any]:
    flat = {}
    for part, value in job.items():
        if isinstance(value, dict):
            flat.update({f"{part}.{key}": v for key, v in value.items()})
        else:
            flat[part] = value
    return flat


def _short(value: Any) -> str:
    is_hash = isinstance(value, str) and len(value) == 64
    return repr(value[:12] + "...") if is_hash else repr(value)


def _count_records(source: Path) -> int | None:
    if source.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(source).metadata.num_rows
    with open(source, "rb") as fh:  # a fast newline count gives the progress bar an ETA
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return max(lines - (1 if source.suffix == ".csv" else 0), 0)


def score_chunk(classifier: FramingClassifier, chunk: list[tuple[str, dict]],
                 opts: PredictOptions) -> tuple[list[dict], int]:
    scrubbed = [_scrubbed(record) for _, record in chunk]
    chunk = [(where, record) for (where, _), (record, _) in zip(chunk, scrubbed)]
    rows = _error_rows(chunk, opts)
    good = [k for k, row in enumerate(rows) if row is None]
    texts = [chunk[k][1][opts.text_field] for k in good]
    if opts.articles:
        scored = _article_rows(classifier, texts, [chunk[k] for k in good], opts)
    else:
        scored = _sentence_rows(classifier, texts, [chunk[k] for k in good], opts)
    for k, row in zip(good, scored):
        rows[k] = row if isinstance(row, list) else [row]
    for row, (_, warning) in zip(rows, scrubbed):
        if warning:
            row[0]["warning"] = warning  # the record's first row: the article row in --articles mode
    return [r for row in rows for r in row], len(chunk) - len(good)


def _error_rows(chunk: list[tuple[str, dict]], opts: PredictOptions) -> list[list[dict] | None]:
    """One error row for each record without usable text (or stop, with --on-bad fail); None for the rest."""
    rows = []
    for where, record in chunk:
        problem = _text_problem(record, opts.text_field)
        if problem and opts.on_bad == "fail":
            raise FramingInputError(f"{where}: {problem}. Fix the record, or pass --on-bad skip to write an "
                                    "error row for it and continue.")
        if problem:
            log.warning("%s: %s; skipped", where, problem)
        rows.append([{**_identity(record, where, opts), "error": problem}] if problem else None)
    return rows


def _scrubbed(record: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The record with lone surrogates replaced, and a warning naming the fields that had them.
    A JSON escape such as "\\ud83d" yields one; unreplaced, it crashes the tokenizer and the
    UTF-8 output, and a resume would crash again at the same chunk."""
    clean = {_scrub(key): _scrub(value) for key, value in record.items()}
    changed = [repr(key) for (key, value), (k, v) in zip(record.items(), clean.items()) if (key, value) != (k, v)]
    if not changed:
        return record, None
    return clean, f"{', '.join(changed)} had invalid unicode (lone surrogate), replaced with U+FFFD"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def _text_problem(record: dict, field: str) -> str | None:
    if isinstance(record, UnreadableRecord):
        return record.problem
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


def finish_output(partial: Path, output: Path) -> None:
    if output.suffix == ".jsonl":
        os.replace(partial, output)
        return
    import pyarrow.parquet as pq

    schema = _parquet_schema(partial)
    tmp = _parquet_tmp(output)
    with pq.ParquetWriter(tmp, schema) as writer, open(partial, encoding="utf-8") as fh:
        while lines := list(islice(fh, 8192)):
            rows = [_flat(json.loads(line)) for line in lines]
            writer.write_batch(_batch(rows, schema))
    os.replace(tmp, output)
    partial.unlink()


def _parquet_schema(partial: Path):
    """One schema for the whole file, from a first pass over every row: every key any row has
    (error rows and article rows add their own), typed to hold all of its values. Ints and
    floats together make float64; any other mix makes a string column (non-strings as JSON),
    so the final write cannot fail on a value the first rows did not predict."""
    import pyarrow as pa

    types: dict[str, Any] = {}
    with open(partial, encoding="utf-8") as fh:
        for line in fh:
            for key, value in _flat(json.loads(line)).items():
                types[key] = _promote(types.get(key), _arrow_type(value))
    return pa.schema([(k, t if t is not None else pa.string()) for k, t in types.items()])


def _promote(known, new):
    import pyarrow as pa

    if known is None or known == new:
        return new
    if new is None:
        return known
    if {known, new} == {pa.int64(), pa.float64()}:
        return pa.float64()
    return pa.string()


def _arrow_type(value: Any):
    import pyarrow as pa

    if value is None:
        return None
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64() if -2**63 <= value < 2**63 else pa.string()
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
            values = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
        if pa.types.is_list(field.type):
            values = [v if v is None else [x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in v]
                      for v in values]
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
            texts.append(replace_lone_surrogates(record[text_field]))
        if len(texts) >= limit:
            break
    bodies = [highlight_html(r, text=t, labels=classifier.labels)
              for r, t in zip(classifier.analyze_many(texts), texts)]
    atomic_write_text(html_path, html_page(bodies, title=f"Frames in {Path(source).name}"))
    return len(bodies)
