import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from infer import FramingClassifier
from infer.engine import BatchEngine

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


def test_analyze_gives_spans_and_profile(clf):
    article = "Pyongyang, May 3 (KCNA) -- The brave soldiers won. Mothers wept.  The delegation left."
    result = clf.analyze(article)
    assert [article[s.start:s.end] for s in result.sentences] == [s.text for s in result.sentences]
    assert len(result.sentences) == 3
    assert result.profile.n_sentences == 3
    assert set(result.profile.counts) == set(clf.labels)
    assert clf.analyze("").sentences == []
