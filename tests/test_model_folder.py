import json
import shutil

import pytest

from infer import FramingClassifier, ModelFolderError, read_meta


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
