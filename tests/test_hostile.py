"""Hostile inputs: files that are damaged, edited or crafted get one clear error, never garbage."""
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, build_tiny_tokenizer

from infer import FramingClassifier, ModelFolderError, read_meta, write_meta
from infer.corpus import PredictOptions, check_paths
from infer.model_folder import WEIGHTS_FILE, file_sha256
from infer.errors import FramingInputError
from infer.readers import DataError
from train.backbone import BackboneError, resolve_backbone
from train.cli import main
from train.config import DataConfig
from train.data import check_leakage, load_split


# damaged model folders and labelled data

def published_copy(model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the trained folder with its weights' checksum recorded, as publishing writes it."""
    folder = Path(shutil.copytree(model_dir, tmp_path / "model"))
    meta = read_meta(folder)
    meta.weights_sha256 = file_sha256(folder / WEIGHTS_FILE)
    write_meta(folder, meta)
    return folder


def overwrite_weight_bytes(folder: Path) -> None:
    """Set every byte after the (intact) safetensors header to 0xff: each float becomes NaN."""
    path = folder / WEIGHTS_FILE
    data = path.read_bytes()
    start = 8 + int.from_bytes(data[:8], "little")
    path.write_bytes(data[:start] + b"\xff" * (len(data) - start))


def forget_checksum(folder: Path) -> None:
    """Make the folder look like one published before checksums were recorded."""
    meta = read_meta(folder)
    meta.weights_sha256 = None
    write_meta(folder, meta)


def test_damaged_weights_fail_the_checksum(model_dir, tmp_path):
    folder = published_copy(model_dir, tmp_path)
    overwrite_weight_bytes(folder)
    with pytest.raises(ModelFolderError, match="does not match the checksum recorded at training time in "
                                               "framing.json .*corrupted or were replaced. Restore the folder"):
        FramingClassifier.from_pretrained(folder, device="cpu")


def test_damaged_weights_without_checksum_refuse_nan_scores(model_dir, tmp_path):
    folder = published_copy(model_dir, tmp_path)
    overwrite_weight_bytes(folder)
    clf = FramingClassifier.from_pretrained(folder, device="cpu", verify=False)  # header intact: it loads
    with pytest.raises(ModelFolderError, match=r"non-finite scores \(NaN or inf\) for 2 of 2 sentence\(s\): "
                                               "its weights are most likely damaged"):
        clf.predict(["The nation mourned.", "A glorious harvest."])


def test_cli_refuses_damaged_weights_of_an_older_folder(model_dir, tmp_path, capsys):
    folder = published_copy(model_dir, tmp_path)
    overwrite_weight_bytes(folder)
    forget_checksum(folder)
    corpus = tmp_path / "in.jsonl"
    corpus.write_text('{"text": "The nation mourned."}\n', encoding="utf-8")
    assert main(["predict", str(folder), "--input", str(corpus), "--output", str(tmp_path / "out.jsonl"),
                 "--device", "cpu"]) == 2
    assert main(["evaluate", str(folder), str(ROOT / "data/examples/dev.jsonl"), "--out", str(tmp_path / "r"),
                 "--no-baselines", "--bootstrap", "10"]) == 2
    assert capsys.readouterr().err.count("error: The model gave non-finite scores") == 2


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b"", lambda b: bytes(range(256)) * 20],
                         ids=["truncated", "empty", "random"])
def test_unreadable_weights_are_a_model_folder_error(model_dir, tmp_path, damage):
    folder = published_copy(model_dir, tmp_path)
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(ModelFolderError, match="does not match the checksum"):
        FramingClassifier.from_pretrained(folder, device="cpu")
    with pytest.raises(ModelFolderError, match=r"model.safetensors is not a readable safetensors file \(.*\): "
                                               "it is empty, truncated or overwritten"):
        FramingClassifier.from_pretrained(folder, device="cpu", verify=False)


def test_missing_tokenizer_files(model_dir, tmp_path):
    folder = published_copy(model_dir, tmp_path)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelFolderError, match=r"has no tokenizer files: expected one of \['tokenizer.json', "
                                               "'vocab.txt'"):
        FramingClassifier.from_pretrained(folder, device="cpu")


def test_foreign_tokenizer_is_refused(model_dir, tmp_path):
    folder = published_copy(model_dir, tmp_path)
    build_tiny_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]).save_pretrained(str(folder))
    with pytest.raises(ModelFolderError, match="the tokenizer has 5 tokens but the model's config.json has "
                                               "vocab_size [0-9]+; they do not belong together"):
        FramingClassifier.from_pretrained(folder, device="cpu")


def test_reordered_labels_are_refused(model_dir, tmp_path):
    folder = published_copy(model_dir, tmp_path)
    meta = json.loads((folder / "framing.json").read_text())
    meta["labels"] = meta["labels"][::-1]
    (folder / "framing.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match=r"framing.json labels \['loss', 'triumph', 'heroism', 'martyrdom'\] "
                                               r"differ from config.json id2label \['martyrdom', "):
        FramingClassifier.from_pretrained(folder, device="cpu")


def test_pickled_backbone_is_refused_with_the_reason(tiny_backbone, tmp_path):
    folder = Path(shutil.copytree(tiny_backbone, tmp_path / "backbone"))
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(BackboneError, match=r"has only pickled weights \['pytorch_model.bin'\]. This package loads "
                                            "safetensors only and never unpickles.*in a trusted environment"):
        resolve_backbone(str(folder))


def write_split(path: Path, rows: list[dict], name: str):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return load_split(str(path), DataConfig(), name)


def test_null_labels_are_not_no_frame(tmp_path):
    with pytest.raises(DataError, match=r"a\.jsonl:2: 'labels' is null or missing; expected a list of labels, "
                                        r"\[\] for a sentence with no frame"):
        write_split(tmp_path / "a.jsonl", [{"text": "x", "labels": []}, {"text": "y", "labels": None}], "train")


def test_conflicting_duplicates_in_train(tmp_path, caplog):
    train = write_split(tmp_path / "t.jsonl", [{"text": "The heroes fell.", "labels": ["loss"]},
                                               {"text": "other", "labels": []},
                                               {"text": "the  heroes FELL.", "labels": ["heroism"]}], "train")
    with pytest.raises(DataError, match=r"1 sentence\(s\) of the train split repeat an earlier one with different "
                                        r"labels, e.g. .*t\.jsonl:1 \['loss'\] and .*t\.jsonl:3 \['heroism'\]"):
        check_leakage(train, [], "error")
    assert check_leakage(train, [], "warn") == {}
    assert "t.jsonl:3 ['heroism']" in caplog.text


# framing predict and inputs

@pytest.fixture(scope="module")
def hostile_clf(model_dir):
    return FramingClassifier.from_pretrained(model_dir, device="cpu", precision="fp32")


def predict_args(tmp_path: Path, *extra: str) -> list[str]:
    """A predict command line whose model folder does not exist: every error below must come
    from checking the arguments, before any model is loaded."""
    corpus = tmp_path / "in.jsonl"
    corpus.write_text('{"text": "The nation mourned."}\n', encoding="utf-8")
    return ["predict", str(tmp_path / "no_model"), "--input", str(corpus), "--output", str(tmp_path / "o.jsonl"),
            *extra]


@pytest.mark.parametrize("option, value, expected", [
    ("--chunk-size", "0", "expected a whole number >= 1, got '0'"),
    ("--chunk-size", "-5", "expected a whole number >= 1, got '-5'"),
    ("--threads", "-1", "expected a whole number >= 1, got '-1'"),
    ("--batch-tokens", "-1", "expected a whole number >= 1, got '-1'"),
    ("--html-limit", "0", "expected a whole number >= 1, got '0'"),
    ("--chunk-size", "ten", "expected a whole number >= 1, got 'ten'"),
    ("--device", "banana", r"expected auto, cpu, cuda or cuda:N \(N = a GPU index\), got 'banana'"),
])
def test_bad_predict_options_are_one_line_errors(tmp_path, capsys, option, value, expected):
    with pytest.raises(SystemExit) as stop:
        main(predict_args(tmp_path, option, value))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert re.search(rf"error: argument {option}: {expected}\n$", err) and "Traceback" not in err


def test_bad_evaluate_options_are_one_line_errors(tmp_path, capsys):
    for option, value in (("--bootstrap", "0"), ("--seed", "-1")):
        with pytest.raises(SystemExit):
            main(["evaluate", str(tmp_path), "data.jsonl", "--out", str(tmp_path / "r"), option, value])
        assert f"argument {option}: expected a whole number" in capsys.readouterr().err
    with pytest.raises(FramingInputError, match="chunk_size must be a positive number of records, got 0"):
        PredictOptions(chunk_size=0)


def test_output_that_would_overwrite_the_input_is_refused(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "in.jsonl"
    corpus.write_text('{"text": "x"}\n', encoding="utf-8")
    (tmp_path / "link.jsonl").symlink_to(corpus)
    monkeypatch.chdir(tmp_path)
    for output in ("in.jsonl", "./sub/../in.jsonl", "link.jsonl"):
        with pytest.raises(FramingInputError, match=r"(in|link)\.jsonl would overwrite the input in\.jsonl; write to "
                                                    r"another file, e\.g\. --output in\.frames\.jsonl"):
            check_paths("in.jsonl", output)
    side = tmp_path / "o.jsonl.progress.json"  # --input o.jsonl.progress.json --output o.jsonl
    side.write_text('{"text": "x"}\n', encoding="utf-8")
    with pytest.raises(FramingInputError, match=r"o\.jsonl\.progress\.json would overwrite the input"):
        check_paths(side, tmp_path / "o.jsonl")
    assert main(["predict", "no_model", "--input", "in.jsonl", "--output", "in.jsonl"]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert corpus.read_text() == '{"text": "x"}\n'


def test_paths_are_checked_before_the_model_loads(tmp_path, capsys):
    args = predict_args(tmp_path)
    cases = {"does not exist": ["--input", str(tmp_path / "nope.jsonl")],
             "is a folder; expected one corpus file": ["--input", str(tmp_path)],
             "is a folder; expected a file path": ["--output", str(tmp_path / "out.jsonl")],
             r"Cannot create the output folder .*in\.jsonl \(.*in\.jsonl is a file, not a folder\)": [
                 "--output", str(tmp_path / "in.jsonl" / "o.jsonl")]}
    (tmp_path / "out.jsonl").mkdir()
    for expected, change in cases.items():
        changed = args[:args.index(change[0]) + 1] + [change[1]] + args[args.index(change[0]) + 2:]
        assert main(changed) == 2
        assert re.search(rf"^error: .*{expected}", capsys.readouterr().err)
    assert check_paths(args[3], tmp_path / "new" / "deeper" / "o.jsonl")[1].parent.is_dir()


def test_unwritable_output_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir(mode=0o555)
    if os.geteuid() == 0:  # root may write anywhere, so the test plays an ordinary user's access check
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path).name == "locked"
                            else real_access(path, mode, **kw))
    corpus = tmp_path / "in.jsonl"
    corpus.write_text('{"text": "x"}\n', encoding="utf-8")
    with pytest.raises(FramingInputError, match="output folder .*locked is not writable"):
        check_paths(corpus, tmp_path / "locked" / "o.jsonl")


@pytest.mark.parametrize("wrong, message", [
    ({"text": "The nation mourned."}, r"got dict; pass the text itself, e\.g\. record\['text'\], not the record"),
    (b"The nation mourned.", r"got bytes; decode it first, e\.g\. data\.decode\('utf-8'\)"),
    (["ok", b"x"], r"text at position 1 is bytes, expected str; decode it first"),
    (["ok", None], r"text at position 1 is NoneType, expected str$"),
    (7, r"expected a str or a list of str, got int$"),
])
def test_predict_refuses_what_is_not_text(hostile_clf, wrong, message):
    for method in (hostile_clf.predict, hostile_clf.predict_proba, hostile_clf.analyze_many):
        with pytest.raises(TypeError, match=message):
            method(wrong)


def test_lone_surrogates_are_replaced_in_the_api(hostile_clf, caplog):
    broken, fixed = "The nation mourned \ud83d. Heroes \udc00 fell.", "The nation mourned \ufffd. Heroes \ufffd fell."
    assert hostile_clf.predict(broken) == hostile_clf.predict(fixed)
    assert (hostile_clf.predict_proba([broken]) == hostile_clf.predict_proba([fixed])).all()
    analysis = hostile_clf.analyze(broken)
    assert [(s.start, s.end) for s in analysis.sentences] == [(0, 21), (22, len(broken))]
    assert analysis.sentences[0].text == "The nation mourned \ufffd."
    assert "invalid unicode (lone surrogates); replaced them with U+FFFD" in caplog.text


@pytest.mark.parametrize("encoding, line, guess", [("cp1252", 2, "WINDOWS-1252"), ("utf-16", 1, "UTF-16")])
def test_non_utf8_data_names_file_line_and_conversion(tmp_path, encoding, line, guess):
    path = tmp_path / "a.jsonl"
    rows = '{"text": "fine", "labels": []}\n{"text": "caf\u00e9 r\u00e9sum\u00e9", "labels": []}\n'
    path.write_bytes(rows.encode(encoding))
    with pytest.raises(DataError, match=rf"a\.jsonl:{line}: not valid UTF-8 \(byte 0x[0-9a-f]{{2}} at byte \d+ of the "
                                        rf"line\)\. .*looks like {guess} .*`iconv -f {guess} -t UTF-8 .*a\.jsonl > "
                                        r"a\.utf8\.jsonl`"):
        load_split(str(path), DataConfig(), "train")


def test_utf8_bom_is_accepted_in_jsonl_and_csv(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "The nation mourned.", "labels": ["loss"]}\n', encoding="utf-8-sig")
    (tmp_path / "a.csv").write_text('text,labels\nThe nation mourned.,"[""loss""]"\n', encoding="utf-8-sig")
    for name in ("a.jsonl", "a.csv"):
        split = load_split(str(tmp_path / name), DataConfig(), "train")
        assert split.texts == ["The nation mourned."], name


def test_a_malformed_line_is_an_error_row_with_on_bad_skip_and_a_stop_with_fail(model_dir, tmp_path, capsys):
    corpus = tmp_path / "in.jsonl"
    corpus.write_bytes(b'\xef\xbb\xbf{"text": "The nation mourned."}\n{"text": oops}\n[1, 2]\n{"text": "Crowds cheered."}\n')
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(model_dir), "--input", str(corpus), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r.get("error", "")[:20] for r in rows] == ["", "not valid JSON (Expe", "expected a JSON obje", ""]
    assert [r["line"] for r in rows[1:3]] == ["2", "3"] and rows[3]["text"] == "Crowds cheered."
    assert main(["predict", str(model_dir), "--input", str(corpus), "--output", str(tmp_path / "o2.jsonl"),
                 "--on-bad", "fail"]) == 2
    assert re.search(r"error: .*in\.jsonl:2: not valid JSON", capsys.readouterr().err)
