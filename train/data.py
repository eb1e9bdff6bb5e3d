"""Labelled data: read any supported source, validate at load, check leakage between splits."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from infer.readers import DataError, iter_records

from .config import DataConfig

log = logging.getLogger(__name__)


@dataclass
class LabelledSet:
    """Sentences, their multi-hot labels (columns follow ``labels``), any extra fields, and where
    each record came from ("file:line"), so a later check can point at it."""

    name: str
    texts: list[str]
    y: np.ndarray
    labels: list[str]
    meta: list[dict[str, Any]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def label_lists(self) -> list[list[str]]:
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in self.y]

    def head(self, n: int) -> "LabelledSet":
        return LabelledSet(self.name, self.texts[:n], self.y[:n], self.labels, self.meta[:n], self.where[:n])

    def location(self, i: int) -> str:
        return self.where[i] if i < len(self.where) else f"{self.name} row {i + 1}"


def load_split(source: str, cfg: DataConfig, name: str) -> LabelledSet:
    """Read and validate one split; raises DataError naming the file and line of a bad record."""
    texts, rows, meta, places = [], [], [], []
    index = {label: j for j, label in enumerate(cfg.labels)}
    for where, record in _records(source):
        text, labels = _validated(where, record, cfg, index)
        y = np.zeros(len(cfg.labels), dtype=np.float32)
        y[[index[l] for l in labels]] = 1.0
        texts.append(text)
        rows.append(y)
        meta.append({k: v for k, v in record.items() if k not in (cfg.text_field, cfg.labels_field)})
        places.append(where)
    if not texts:
        raise DataError(f"The {name} split ({source}) has no records. Each split needs at least one sentence.")
    return LabelledSet(name, texts, np.stack(rows), list(cfg.labels), meta, places)


def with_extra_train(train: LabelledSet, extras: list[LabelledSet], repeat: int) -> LabelledSet:
    """``train`` followed by each of ``extras`` ``repeat`` times (data.extra_train, up-sampled)."""
    parts = [train, *extras * repeat]
    if len(parts) == 1:
        return train
    return LabelledSet("train+extra_train", [t for p in parts for t in p.texts], np.concatenate([p.y for p in parts]),
                       train.labels, [m for p in parts for m in p.meta], [w for p in parts for w in p.where])


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
    labels = label_list(where, record[cfg.labels_field], cfg)
    unknown = [l for l in labels if l not in index]
    if unknown:
        hint = " An empty list means no frame; do not write 'none'." if "none" in unknown else ""
        raise DataError(f"{where}: unknown label(s) {unknown}; allowed labels are {list(cfg.labels)}.{hint}")
    return text, sorted(set(labels), key=index.get)


def label_list(where: str, value: Any, cfg: DataConfig) -> list[str]:
    if value is None:  # null is as likely a lost annotation as "no frame": make the file say which
        raise DataError(f"{where}: {cfg.labels_field!r} is null or missing; expected a list of labels, "
                        "[] for a sentence with no frame.")
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
    """Check train for contradictory duplicates, then count the sentences each eval split shares
    with train, and dev with test (thresholds are tuned on dev, so a shared sentence flatters
    test). Errors or warns by ``mode``; returns the counts keyed "dev", "test", "dev/test"."""
    check_duplicates(train, mode)
    others = list(others)
    overlaps = {split.name: _shared(train, split, mode) for split in others}
    for first, second in combinations(others, 2):
        overlaps[f"{first.name}/{second.name}"] = _shared(first, second, mode)
    return overlaps


def _shared(earlier: LabelledSet, later: LabelledSet, mode: str) -> int:
    seen = {normalise(t) for t in earlier.texts}
    n = sum(normalise(t) in seen for t in later.texts)
    if n:
        _complain(mode, f"{n} sentence(s) of the {later.name} split also appear in {earlier.name}. "
                        "Remove them, or set data.leakage: warn to proceed anyway.")
    return n


def check_duplicates(split: LabelledSet, mode: str) -> None:
    """A sentence labelled two ways teaches the model both; the same labels twice only weigh it double."""
    first: dict[str, int] = {}
    conflicts, exact = [], 0
    for i, text in enumerate(split.texts):
        j = first.setdefault(normalise(text), i)
        if j != i and np.array_equal(split.y[i], split.y[j]):
            exact += 1
        elif j != i:
            conflicts.append((j, i))
    if conflicts:
        j, i = conflicts[0]
        lists = split.label_lists()
        _complain(mode, f"{len(conflicts)} sentence(s) of the {split.name} split repeat an earlier one with "
                        f"different labels, e.g. {split.location(j)} {lists[j]} and {split.location(i)} {lists[i]}. "
                        "Give both the same labels and keep one, or set data.leakage: warn to proceed anyway.")
    if exact:
        log.warning("%d sentence(s) of the %s split repeat an earlier one with the same labels; each copy adds "
                    "weight in training, so consider keeping one.", exact, split.name)


def _complain(mode: str, message: str) -> None:
    if mode == "error":
        raise DataError(message)
    log.warning(message)


def data_sha256(sets: Sequence[LabelledSet]) -> str:
    """A hash of the sentences and labels, independent of file format and column names."""
    digest = hashlib.sha256()
    for split in sets:
        for text, labels in zip(split.texts, split.label_lists()):
            digest.update(json.dumps([split.name, text, labels], ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()
