import logging

import numpy as np
import pytest
import torch
from test_cls_forward import expects_onednn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import infer.classifier
import infer.engine
from infer import FramingClassifier
from infer.engine import BatchEngine
from infer.errors import FramingInputError
from infer.model_folder import read_meta

TEXTS = ["The brave soldiers won a great victory.", "Mothers wept.", "", "The delegation discussed trade.",
         "The nation mourned the heroes who gave their lives for the motherland and its future."]


@pytest.fixture(scope="module")
def clf(model_dir):
    return FramingClassifier.from_pretrained(model_dir, device="cpu")


def test_shapes_follow_labels(clf):
    probs = clf.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), len(clf.labels))
    assert clf.thresholds.shape == (len(clf.labels),)


def test_one_string_in_one_result_out(clf):
    assert clf.predict_proba(TEXTS[0]).shape == (len(clf.labels),)
    single = clf.predict(TEXTS[0])
    assert isinstance(single, list) and all(isinstance(l, str) for l in single)
    assert clf(TEXTS[0]) == single


def test_empty_text_gets_no_labels_and_zero_probability(clf):
    assert clf.predict("   ") == []
    assert not clf.predict_proba(["", " \n"]).any()


def test_non_string_names_position(clf):
    with pytest.raises(TypeError, match="text at position 1 is NoneType, expected str"):
        clf.predict(["ok", None])
    with pytest.raises(TypeError, match="position 0 is int"):
        clf.predict_proba([3])


def test_save_load_round_trip_is_identical(clf, model_dir):
    again = FramingClassifier.from_pretrained(model_dir, device="cpu")
    np.testing.assert_array_equal(clf.predict_proba(TEXTS), again.predict_proba(TEXTS))


def test_plain_transformers_loads_the_folder_and_fp32_matches(clf, model_dir):
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert model.config.problem_type == "multi_label_classification"
    assert model.config.id2label[0] == "martyrdom"
    texts = [t for t in TEXTS if t]
    with torch.inference_mode():
        plain = torch.sigmoid(model(**tokenizer(texts, padding=True, return_tensors="pt")).logits).numpy()
    np.testing.assert_allclose(clf.predict_proba(texts), plain, atol=1e-5)


def test_order_is_kept_under_length_sorting(clf):
    texts = [("word " * n).strip() for n in (30, 2, 17, 5, 1, 40, 9)]
    batched = clf.predict_proba(texts)
    one_by_one = np.stack([clf.predict_proba(t) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_token_budget_bounds_each_batch(clf):
    engine = BatchEngine(clf.model, clf.tokenizer, 64, torch.device("cpu"), batch_tokens=100)
    lengths = [50, 10, 40, 10, 10, 30]
    groups = engine.batches(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(len(g) * max(lengths[i] for i in g) <= 100 or len(g) == 1 for g in groups)


def test_long_sentence_is_scored_in_windows_not_truncated(clf):
    long = " ".join(["the delegation discussed trade"] * 40)  # far beyond max_length 64
    windows = clf.engine.windows([long])
    assert len(windows.ids) > 2 and set(windows.owner) == {0}
    assert all(len(w) <= clf.meta.max_length for w in windows.ids)
    # the score is the max over windows: at least the score of the first window alone
    first = clf.tokenizer.decode(windows.ids[0], skip_special_tokens=True)
    assert (clf.predict_proba(long) >= clf.predict_proba(first) - 1e-6).all()


def test_to_returns_self(clf):
    assert clf.to("cpu") is clf


@pytest.mark.parametrize("request_", ["bf16", "auto"])
def test_to_keeps_the_precision_chosen_at_load(model_dir, monkeypatch, request_):
    monkeypatch.setattr(infer.engine, "cpu_has_fast_bf16", lambda: True)  # so that auto means bf16 here too
    moved = FramingClassifier.from_pretrained(model_dir, device="cpu", precision=request_)
    assert moved.to("cpu") is moved
    assert moved.precision == moved.runtime.precision == "bf16" and moved.model.dtype == torch.bfloat16
    fresh = FramingClassifier.from_pretrained(model_dir, device="cpu", precision="bf16")
    np.testing.assert_array_equal(moved.predict_proba(TEXTS), fresh.predict_proba(TEXTS))


def test_fp32_load_after_a_bf16_load_is_exact(clf, model_dir):
    """Round-trips cpu-bf16 -> fp32: a bf16 load shares and mutates nothing that a later fp32
    load from the same folder reads."""
    reference = clf.predict_proba(TEXTS)
    bf16 = FramingClassifier.from_pretrained(model_dir, device="cpu", precision="bf16").to("cpu")
    assert not np.array_equal(bf16.predict_proba(TEXTS), reference)  # else this test could not tell
    fresh = FramingClassifier.from_pretrained(model_dir, device="cpu", precision="fp32")
    np.testing.assert_array_equal(fresh.predict_proba(TEXTS), reference)


def test_int8_replaces_the_linear_layers_and_keeps_no_fp32_copy(model_dir):
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    n_linear = sum(type(m) is torch.nn.Linear for m in model.modules())
    int8 = FramingClassifier(model, AutoTokenizer.from_pretrained(model_dir), read_meta(model_dir), precision="int8")
    quantised = [m for m in int8.model.modules() if type(m) is torch.ao.nn.quantized.dynamic.Linear]
    assert n_linear > 0 and len(quantised) == n_linear
    assert not any(type(m) is torch.nn.Linear for m in int8.model.modules())
    assert [v for v in vars(int8).values() if isinstance(v, torch.nn.Module)] == [model]
    assert not int8.runtime.packed and "quantised" in int8.runtime.reason


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")
def test_to_cuda_without_a_gpu_is_a_clear_error(clf):
    with pytest.raises(FramingInputError, match="device='cuda' was asked for, but torch sees no CUDA GPU"):
        clf.to("cuda")
    assert clf.device.type == "cpu"


def test_to_a_device_the_precision_cannot_run_on_says_how_to_reload(model_dir, monkeypatch):
    int8 = FramingClassifier.from_pretrained(model_dir, device="cpu", precision="int8")
    before = int8.predict_proba(TEXTS)
    monkeypatch.setattr(infer.classifier, "resolve_device", lambda device: torch.device("cuda"))
    with pytest.raises(FramingInputError, match=r"Cannot move this int8 classifier to cuda: precision='int8' .*"
                                                r"from_pretrained\(path, device='cuda', precision=\.\.\.\)"):
        int8.to("cuda")
    assert int8.device.type == "cpu" and int8.precision == "int8"
    np.testing.assert_array_equal(int8.predict_proba(TEXTS), before)


@expects_onednn
def test_fp32_on_this_cpu_runs_the_fast_path_with_packed_weights(clf):
    assert (clf.runtime.fast_path, clf.runtime.packed, clf.runtime.reason) == (True, True, "")


def test_fast_path_false_runs_the_models_own_forward(clf, model_dir):
    own = FramingClassifier.from_pretrained(model_dir, device="cpu", fast_path=False)
    assert not own.runtime.fast_path and own.runtime.reason == "fast_path=False was asked for"
    calls = {"own": 0, "fast": 0}
    own.model.register_forward_hook(lambda *_: calls.__setitem__("own", calls["own"] + 1))
    hook = clf.model.register_forward_hook(lambda *_: calls.__setitem__("fast", calls["fast"] + 1))
    try:
        np.testing.assert_allclose(own.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-5)
    finally:
        hook.remove()
    # the fast path calls the model's parts, never the model itself
    assert clf.runtime.fast_path and calls["fast"] == 0 and calls["own"] > 0


def test_a_load_logs_its_runtime_once(model_dir, caplog):
    caplog.set_level(logging.INFO, logger="infer.classifier")
    loaded = FramingClassifier.from_pretrained(model_dir, device="cpu", precision="bf16")
    loaded.predict_proba(TEXTS)
    lines = [r.getMessage() for r in caplog.records if r.name == "infer.classifier"]
    assert lines == [f"FramingClassifier on {loaded.runtime.describe()}"]
    assert lines[0].startswith("FramingClassifier on cpu, bf16: ")
    assert "fast path" in lines[0] or "own forward" in lines[0]


def test_requiring_the_fast_path_when_packing_is_missing_is_a_clear_error(model_dir, monkeypatch):
    monkeypatch.setattr(infer.cls_forward, "packing_problem", lambda dtype: "the probe failed")
    with pytest.raises(FramingInputError, match="fast_path=True requires .*the probe failed"):
        FramingClassifier.from_pretrained(model_dir, device="cpu", fast_path=True)
    quiet = FramingClassifier.from_pretrained(model_dir, device="cpu")
    assert quiet.runtime.fast_path and not quiet.runtime.packed and quiet.runtime.reason == "the probe failed"


def test_analyze_gives_spans_and_profile(clf):
    article = "Pyongyang, May 3 (KCNA) -- The brave soldiers won. Mothers wept.  The delegation left."
    result = clf.analyze(article)
    assert [article[s.start:s.end] for s in result.sentences] == [s.text for s in result.sentences]
    assert len(result.sentences) == 3
    assert result.profile.n_sentences == 3
    assert set(result.profile.counts) == set(clf.labels)
    assert clf.analyze("").sentences == []
