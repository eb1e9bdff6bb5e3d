"""The self-describing model folder: weights, tokenizer, ``config.json`` and ``framing.json``.

``framing.json`` carries what a deployment needs besides the weights (labels,
per-label thresholds, max length) and the provenance a published figure needs
(codebook version, training-data hash, git commit, evaluation figures).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .errors import ModelFolderError

FRAMING_FILE = "framing.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1
# Files that would need unpickling to load. We refuse to load them, so a
# folder that only has these is reported instead of silently half-loaded.
PICKLE_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "model.ckpt.index", "flax_model.msgpack")
# A folder needs one of these for its vocabulary. Without any, transformers quietly builds a
# default 5-token tokenizer and every sentence is scored as a row of [UNK]s.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")
RESTORE_HINT = "Restore the folder from its published copy, or train it again with `framing train`."


@dataclass
class FramingMeta:
    """Contents of ``framing.json``."""

    labels: list[str]
    thresholds: dict[str, float]
    max_length: int
    codebook_version: str = "unknown"
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # sha256 of model.safetensors, written when the folder is published and checked at load,
    # so flipped or truncated weights are an error instead of NaN scores
    weights_sha256: str | None = None

    def threshold_vector(self) -> list[float]:
        return [self.thresholds[label] for label in self.labels]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_meta(folder: str | Path, meta: FramingMeta) -> Path:
    _check_meta(meta, Path(folder) / FRAMING_FILE)
    path = Path(folder) / FRAMING_FILE
    atomic_write_json(path, meta.to_dict())
    return path


def read_meta(folder: str | Path) -> FramingMeta:
    """Read and check ``framing.json``; every failure names the folder and how to fix it."""
    folder = check_model_folder(folder)
    path = folder / FRAMING_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{path} is not valid JSON ({exc}); re-save the model with `framing train`.") from exc
    known = set(FramingMeta.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ModelFolderError(f"{path} has unknown keys {unknown}; expected only {sorted(known)}.")
    missing = [k for k in ("labels", "thresholds", "max_length") if k not in raw]
    if missing:
        raise ModelFolderError(f"{path} lacks required keys {missing}; it must hold labels, thresholds and max_length.")
    meta = FramingMeta(**raw)
    _check_meta(meta, path)
    return meta


def check_model_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(
            f"Model folder {folder} does not exist. Expected a folder written by `framing train` "
            f"(it holds {WEIGHTS_FILE}, config.json, the tokenizer and {FRAMING_FILE})."
        )
    if not (folder / WEIGHTS_FILE).is_file():
        pickled = [name for name in PICKLE_WEIGHTS if (folder / name).exists()]
        hint = (f" It has {pickled}, which need unpickling; this package loads safetensors only. "
                "Convert them with `save_pretrained(..., safe_serialization=True)` in a trusted environment."
                if pickled else "")
        raise ModelFolderError(f"Model folder {folder} has no {WEIGHTS_FILE}.{hint}")
    for name in ("config.json", FRAMING_FILE):
        if not (folder / name).is_file():
            raise ModelFolderError(
                f"Model folder {folder} has no {name}. Was it written by `framing train`? "
                f"A plain transformers checkpoint lacks {FRAMING_FILE}: train or convert it with this package."
            )
    return folder


def _check_meta(meta: FramingMeta, where: Path) -> None:
    if not meta.labels or not all(isinstance(l, str) and l for l in meta.labels):
        raise ModelFolderError(f"{where}: labels must be a non-empty list of names, found {meta.labels!r}.")
    if len(set(meta.labels)) != len(meta.labels):
        raise ModelFolderError(f"{where}: labels repeat: {meta.labels!r}.")
    if set(meta.thresholds) != set(meta.labels):
        raise ModelFolderError(
            f"{where}: thresholds must have one entry per label {meta.labels}, found keys {sorted(meta.thresholds)}."
        )
    _check_format_version(meta.format_version, where)
    if meta.weights_sha256 is not None and not _is_sha256(meta.weights_sha256):
        raise ModelFolderError(f"{where}: weights_sha256 must be 64 hex digits, found {meta.weights_sha256!r}.")
    for label, value in meta.thresholds.items():
        if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
            raise ModelFolderError(f"{where}: threshold for {label!r} must be a number in [0, 1], found {value!r}.")
    if not isinstance(meta.max_length, int) or meta.max_length < 8:
        raise ModelFolderError(f"{where}: max_length must be an integer >= 8, found {meta.max_length!r}.")


def file_sha256(path: str | Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_format_version(version: object, where: Path) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFolderError(f"{where}: format_version must be a positive integer, found {version!r}.")
    if version > FORMAT_VERSION:
        raise ModelFolderError(
            f"{where}: format_version {version} is newer than this package reads (up to {FORMAT_VERSION}); "
            "the folder was written by a newer state-media-framing. Upgrade it: pip install -U state-media-framing")


def verify_files(folder: str | Path, meta: FramingMeta, checksum: bool = True) -> None:
    """Check what transformers would otherwise load without complaint or fail on with a raw
    traceback: the weights against the checksum recorded at training time (``checksum``), the
    safetensors header (empty, truncated or random files), and the presence of tokenizer files."""
    folder = Path(folder)
    weights = folder / WEIGHTS_FILE
    if checksum and meta.weights_sha256 is not None:
        found = file_sha256(weights)
        if found != meta.weights_sha256:
            raise ModelFolderError(
                f"{weights} does not match the checksum recorded at training time in {FRAMING_FILE} "
                f"(sha256 {found[:12]}..., expected {meta.weights_sha256[:12]}...): the weights are corrupted "
                f"or were replaced. {RESTORE_HINT}")
    _check_safetensors_header(weights)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelFolderError(
            f"Model folder {folder} has no tokenizer files: expected one of {list(TOKENIZER_FILES)} "
            f"(this package writes tokenizer.json). {RESTORE_HINT}")


def _check_safetensors_header(weights: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as exc:
        raise ModelFolderError(
            f"{weights} is not a readable safetensors file ({exc}; {weights.stat().st_size} bytes): it is empty, "
            f"truncated or overwritten. {RESTORE_HINT}") from exc


def verify_loaded(folder: str | Path, meta: FramingMeta, tokenizer, config) -> None:
    """Check that the loaded tokenizer fits the model's embeddings, and that the model's output
    columns carry the labels ``framing.json`` gives them, in the same order."""
    n_tokens, vocab_size = len(tokenizer), config.vocab_size
    # a tokenizer may leave some embedding rows unused (padding to a multiple of 8 or 64), but
    # never needs more rows than there are, nor leaves most of them unused
    if not vocab_size // 2 <= n_tokens <= vocab_size:
        raise ModelFolderError(
            f"Model folder {folder}: the tokenizer has {n_tokens} tokens but the model's config.json has "
            f"vocab_size {vocab_size}; they do not belong together (missing or foreign tokenizer files: "
            f"expected one of {list(TOKENIZER_FILES)}). {RESTORE_HINT}")
    columns = [config.id2label.get(i) for i in range(config.num_labels)]
    if columns != list(meta.labels):
        raise ModelFolderError(
            f"Model folder {folder}: {FRAMING_FILE} labels {meta.labels} differ from config.json id2label "
            f"{columns} (in column order), so frame names would be swapped. One of the two files was edited; "
            f"{RESTORE_HINT}")
