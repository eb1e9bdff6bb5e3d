"""Labelled data: read any supported source, validate at load, check leakage between splits."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from infer.readers import DataError, iter_records

from .config import DataConfig

log = logging.getLogger(__name__)


@dataclass
class LabelledSet:
    """Sentences, their multi-hot labels (columns follow ``labels``) and any extra fields."""

    name: str
    texts: list[str]
    y: np.ndarray
    labels: list[str]
    meta: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def label_lists(self) -> list[list[str]]:
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in self.y]

    def head(self, n: int) -> "LabelledSet":
        return LabelledSet(self.name, self.texts[:n], self.y[:n], self.labels, self.meta[:n])


def load_split(source: str, cfg: DataConfig, name: str) -> LabelledSet:
    """Read and validate one split; raises DataError naming the file and line of a bad record."""
    texts, rows, meta = [], [], []
    index = {label: j for j, label in enumerate(cfg.labels)}
    for where, record in _records(source):
        text, labels = _validated(where, record, cfg, index)
        y = np.zeros(len(cfg.labels), dtype=np.float32)
        y[[index[l] for l in labels]] = 1.0
        texts.append(text)
        rows.append(y)
        meta.append({k: v for k, v in record.items() if k not in (cfg.text_field, cfg.labels_field)})
    if not texts:
        raise DataError(f"The {name} split ({source}) has no records. Each split needs at least one sentence.")
    return LabelledSet(name, texts, np.stack(rows), list(cfg.labels), meta)


def _records(source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    path = Path(source)
    if path.is_dir():
        yield from _iter_saved_dataset(path)
    elif path.exists() or path.suffix:
        yield from iter_records(path)
    else:
        yield from _iter_hub_dataset(source)


def _iter_saved_dataset(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises several types for a folder it cannot read
        raise DataError(f"{path} is a folder but not a dataset saved with save_to_disk ({exc}).") from exc
    if isinstance(ds, datasets.DatasetDict):
        raise DataError(f"{path} holds a DatasetDict with splits {list(ds)}; point at one split folder, "
                        f"e.g. {path}/{next(iter(ds))}.")
    for i, record in enumerate(ds):
        yield f"{path}:row {i + 1}", record


def _iter_hub_dataset(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    import datasets

    repo, _, split = name.partition(":")
    try:
        ds = datasets.load_dataset(repo, split=split or "train")
    except Exception as exc:  # offline, missing, or private: all end here
        raise DataError(f"{name!r} is not a local file or folder, and loading it as a hub dataset failed ({exc}). "
                        "Give a path to a .jsonl/.csv/.parquet file, or a hub id like 'user/name:split' "
                        "on a machine with network access.") from exc
    for i, record in enumerate(ds):
        yield f"{name}:row {i + 1}", record


def _validated(where: str, record: dict[str, Any], cfg: DataConfig, index: dict[str, int]) -> tuple[str, list[str]]:
    for column in (cfg.text_field, cfg.labels_field):
        if column not in record:
            raise DataError(f"{where}: missing column {column!r}; found columns {sorted(record)}. "
                            f"Map your column names with data.text_field / data.labels_field.")
    text = record[cfg.text_field]
    if not isinstance(text, str):
        raise DataError(f"{where}: {cfg.text_field!r} must be a string, found {type(text).__name__}.")
    if not text.strip():
        raise DataError(f"{where}: {cfg.text_field!r} is empty. Remove the record or fill in the sentence.")
    labels = _label_list(where, record[cfg.labels_field], cfg)
    unknown = [l for l in labels if l not in index]
    if unknown:
        hint = " An empty list means no frame; do not write 'none'." if "none" in unknown else ""
        raise DataError(f"{where}: unknown label(s) {unknown}; allowed labels are {list(cfg.labels)}.{hint}")
    return text, sorted(set(labels), key=index.get)


def _label_list(where: str, value: Any, cfg: DataConfig) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # CSV cells hold "a;b"; a JSON-encoded list also appears in the wild
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: labels {value!r} look like a list but are not valid JSON.") from exc
        else:
            return [part.strip() for part in stripped.split(cfg.csv_separator) if part.strip()]
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: {cfg.labels_field!r} must be a list of label names, found {value!r}.")
    return value


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def check_leakage(train: LabelledSet, others: Iterable[LabelledSet], mode: str) -> dict[str, int]:
    """Count sentences of each eval split that also appear in train; error or warn by ``mode``."""
    seen = {normalise(t) for t in train.texts}
    overlaps = {}
    for split in others:
        n = sum(normalise(t) in seen for t in split.texts)
        overlaps[split.name] = n
        if n and mode == "error":
            raise DataError(f"{n} sentence(s) of the {split.name} split also appear in train. "
                            "Remove them, or set data.leakage: warn to proceed anyway.")
        if n:
            log.warning("%d sentence(s) of the %s split also appear in train", n, split.name)
    return overlaps


def data_sha256(sets: Sequence[LabelledSet]) -> str:
    """A hash of the sentences and labels, independent of file format and column names."""
    digest = hashlib.sha256()
    for split in sets:
        for text, labels in zip(split.texts, split.label_lists()):
            digest.update(json.dumps([split.name, text, labels], ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()
