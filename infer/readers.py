"""Streaming readers for record files (JSONL, CSV, Parquet, plain text).

Each yields ``(where, record)`` where ``where`` is "file:line" (or "file:row N"),
so every later error can point at the exact record. Memory stays bounded: rows
are read one at a time (Parquet in row groups).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from .errors import FramingInputError

RECORD_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")


class DataError(FramingInputError):
    """A data file is malformed or holds invalid records."""


def iter_records(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file {path} does not exist. Expected one of {', '.join(RECORD_SUFFIXES)}.")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        yield from iter_jsonl(path)
    elif suffix == ".csv":
        yield from _iter_csv(path)
    elif suffix == ".parquet":
        yield from _iter_parquet(path)
    elif suffix == ".txt":
        yield from _iter_txt(path)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(RECORD_SUFFIXES)}.")


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}). "
                                'Each line must be one JSON object, e.g. {"text": "...", "labels": ["loss"]}.') from exc
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object, found {type(record).__name__}.")
            yield where, record


def _iter_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield f"{path}:{reader.line_num}", dict(row)


def _iter_parquet(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            row += 1
            yield f"{path}:row {row}", record


def _iter_txt(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield f"{path}:{lineno}", {"text": line.rstrip("\n")}
