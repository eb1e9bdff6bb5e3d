"""Streaming readers for record files (JSONL, CSV, Parquet, plain text).

Each yields ``(where, record)`` where ``where`` is "file:line" (or "file:row N"),
so every later error can point at the exact record. Memory stays bounded: rows
are read one at a time (Parquet in row groups). Text files must be UTF-8 (a BOM is
accepted); anything else is a DataError naming the line and how to convert it.
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


class UnreadableRecord(dict):
    """A line the reader could not parse, handed on by a lenient reader (``framing predict
    --on-bad skip``) so that one corrupt line in a large corpus becomes an error row instead of
    stopping the run. It is an empty record whose ``problem`` says what was wrong."""

    def __init__(self, problem: str):
        super().__init__()
        self.problem = problem


def iter_records(path: str | Path, lenient: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` for every record of a JSONL, CSV, Parquet or text file. ``lenient``: a
    malformed JSONL line is yielded as an ``UnreadableRecord`` instead of raising ``DataError``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file {path} does not exist. Expected one of {', '.join(RECORD_SUFFIXES)}.")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        yield from iter_jsonl(path, lenient)
    elif suffix == ".csv":
        yield from iter_csv(path)
    elif suffix == ".parquet":
        yield from _iter_parquet(path)
    elif suffix == ".txt":
        yield from _iter_txt(path)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(RECORD_SUFFIXES)}.")


def iter_jsonl(path: Path, lenient: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    for lineno, line in utf8_lines(path):
        if line.strip():
            where = f"{path}:{lineno}"
            yield where, json_record(line, where, lenient)


def json_record(line: str, where: str, lenient: bool = False) -> dict[str, Any]:
    """One JSONL line as a record; a malformed one raises ``DataError``, or, ``lenient``, comes
    back as an ``UnreadableRecord``."""
    try:
        record = json.loads(line)
        problem = None if isinstance(record, dict) else f"expected a JSON object, found {type(record).__name__}"
    except json.JSONDecodeError as exc:
        problem = (f"not valid JSON ({exc.msg} at column {exc.colno}). "
                   'Each line must be one JSON object, e.g. {"text": "...", "labels": ["loss"]}')
    if problem is None:
        return record
    if lenient:
        return UnreadableRecord(problem)
    raise DataError(f"{where}: {problem}.")


def iter_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(line for _, line in utf8_lines(path))
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
    for lineno, line in utf8_lines(path):
        if line.strip():
            yield f"{path}:{lineno}", {"text": line.rstrip("\r\n")}


def utf8_lines(path: Path, offset: int = 0, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` from byte ``offset`` on (the start of line ``first_line``), decoded
    one at a time so a bad byte is reported with its line (text-mode reading only says "position
    8191" of some buffer). A UTF-8 BOM is dropped: Excel and Notepad write one, and left in place
    it would rename the first CSV column."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        for lineno, raw in enumerate(fh, first_line):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(_not_utf8(path, lineno, raw, exc)) from None
            yield lineno, line[1:] if lineno == 1 and line.startswith("\ufeff") else line


def _not_utf8(path: Path, lineno: int, raw: bytes, exc: UnicodeDecodeError) -> str:
    # UTF-16 shows itself by its BOM or NUL bytes; otherwise Windows-1252 is by far the usual
    # culprit (it also reads Latin-1), and `file -i` confirms or corrects the guess
    utf16 = lineno == 1 and raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw
    source = "UTF-16" if utf16 else "WINDOWS-1252"
    return (f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line). "
            f"Files must be UTF-8; this one looks like {source} (check with `file -i {path}`). Convert it with "
            f"`iconv -f {source} -t UTF-8 {path} > {path.stem}.utf8{path.suffix}`.")
