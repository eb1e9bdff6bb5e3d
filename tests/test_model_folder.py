import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from infer import FramingClassifier, ModelFolderError, read_meta, write_meta


def copy_folder(model_dir, tmp_path):
    return shutil.copytree(model_dir, tmp_path / "m")


def test_meta_holds_what_a_deployment_needs(model_dir):
    meta = read_meta(model_dir)
    assert meta.labels == ["martyrdom", "heroism", "triumph", "loss"]
    assert set(meta.thresholds) == set(meta.labels) and meta.max_length == 64
    assert meta.codebook_version == "1.1.0"
    assert len(meta.provenance["data"]["sha256"]) == 64
    assert "dev" in meta.metrics and "macro_f1" in meta.metrics["dev"]
    assert (model_dir / "README.md").is_file()
    assert not (model_dir / "training_args.bin").exists()


def test_missing_folder():
    with pytest.raises(ModelFolderError, match="does not exist. Expected a folder written by `framing train`"):
        FramingClassifier.from_pretrained("/nonexistent/model")


def test_pickle_only_folder_is_refused(model_dir, tmp_path):
    folder = copy_folder(model_dir, tmp_path)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelFolderError, match="need unpickling; this package loads safetensors only"):
        FramingClassifier.from_pretrained(folder)


def test_missing_framing_json(model_dir, tmp_path):
    folder = copy_folder(model_dir, tmp_path)
    (folder / "framing.json").unlink()
    with pytest.raises(ModelFolderError, match="has no framing.json"):
        FramingClassifier.from_pretrained(folder)


def test_bad_threshold(model_dir, tmp_path):
    folder = copy_folder(model_dir, tmp_path)
    meta = json.loads((folder / "framing.json").read_text())
    meta["thresholds"]["loss"] = 1.7
    (folder / "framing.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match=r"threshold for 'loss' must be a number in \[0, 1\], found 1.7"):
        read_meta(folder)


@pytest.mark.parametrize("version,message", [
    (2, "format_version 2 is newer than this package reads \\(up to 1\\).*pip install -U state-media-framing"),
    ("1", "format_version must be a positive integer, found '1'"),
])
def test_format_version_is_checked(model_dir, tmp_path, version, message):
    folder = copy_folder(model_dir, tmp_path)
    meta = json.loads((folder / "framing.json").read_text())
    meta["format_version"] = version
    (folder / "framing.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match=message):
        read_meta(folder)


def test_verify_false_skips_only_the_checksum(model_dir, tmp_path):
    folder = copy_folder(model_dir, tmp_path)
    meta = read_meta(folder)
    meta.weights_sha256 = "0" * 64  # as if the weights had been replaced
    write_meta(folder, meta)
    with pytest.raises(ModelFolderError, match="does not match the checksum recorded at training time"):
        FramingClassifier.from_pretrained(folder, device="cpu")
    fast = FramingClassifier.from_pretrained(folder, device="cpu", verify=False)
    assert fast.predict("The nation mourned.") == FramingClassifier.from_pretrained(model_dir, device="cpu").predict(
        "The nation mourned.")


def published_modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def test_published_files_honour_the_umask(trained_run):
    """Model files and reports get the mode plain open() gives (0644 under umask 022), not a temp file's 0600."""
    mask = os.umask(0)
    os.umask(mask)
    expected = 0o666 & ~mask
    for folder in (Path(trained_run["model_dir"]), Path(trained_run["reports_dir"])):
        modes = published_modes(folder)
        assert "model.safetensors" in modes or "metrics.json" in modes
        assert {name: oct(mode) for name, mode in modes.items() if mode != expected} == {}


def test_saved_folder_is_0644_under_umask_022(model_dir, tmp_path):
    mask = os.umask(0o022)
    try:
        FramingClassifier.from_pretrained(model_dir, device="cpu").save_pretrained(tmp_path / "saved")
    finally:
        os.umask(mask)
    modes = published_modes(tmp_path / "saved")
    assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}
