"""The fast forward pass ([CLS]-only last layer, packed oneDNN products) must equal the
model's own forward, padding included."""
import platform
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification)

from infer import cls_forward
from infer.errors import FramingInputError
from infer.quantize import quantize_dynamic_int8
from infer.engine import prepare_model
from infer.cls_forward import (_is_plain_bert_classifier, _is_plain_mpnet_classifier, choose_forward,
                               packing_problem, projection)


def padded_batch(vocab: int, lengths=(9, 3, 14, 1, 6), seed: int = 0, pad_id: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(5, vocab, (len(lengths), width), generator=generator)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
        ids[row, n:] = pad_id
    return {"input_ids": ids, "attention_mask": mask}


def tiny_classifier(config_class, model_class, **overrides):
    torch.manual_seed(0)
    config = config_class(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=64, num_labels=4,
                          initializer_range=0.3, **overrides)
    return model_class(config).eval()


def tiny_bert(**overrides) -> BertForSequenceClassification:
    return tiny_classifier(BertConfig, BertForSequenceClassification, **overrides)


def tiny_mpnet(**overrides) -> MPNetForSequenceClassification:
    return tiny_classifier(MPNetConfig, MPNetForSequenceClassification, **overrides)


def tiny_distilbert() -> DistilBertForSequenceClassification:
    torch.manual_seed(0)
    return DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=60, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64, num_labels=4)).eval()


needs_onednn = pytest.mark.skipif(bool(packing_problem(torch.float32)),
                                  reason="torch's packed oneDNN linear is not available on this build")
# Where torch ships oneDNN (x86 Linux), the packed products are expected rather than probed
# for: a torch whose private ops went missing must fail a test, not quietly cost 1.5x.
ONEDNN_EXPECTED = (sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")
                   and torch.backends.mkldnn.is_available())
expects_onednn = pytest.mark.skipif(not ONEDNN_EXPECTED, reason="packed oneDNN products are expected on x86 Linux")


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "modules"])
def test_fast_path_matches_the_full_forward_on_a_padded_batch(pack):
    model = tiny_bert()
    assert _is_plain_bert_classifier(model)
    batch = padded_batch(60)
    with torch.inference_mode():
        full = model(**batch).logits
        fast = choose_forward(model, pack=pack).score(batch)
    np.testing.assert_allclose(fast.numpy(), full.numpy(), atol=1e-5)


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "modules"])
def test_mpnet_fast_path_matches_the_full_forward_with_relative_positions(pack):
    """MPNet adds a relative-position bias per query: the [CLS]-only layer must keep
    the bias row of position 0, and padding (id 1 in MPNet) must not shift positions."""
    model = tiny_mpnet()
    assert _is_plain_mpnet_classifier(model) and not _is_plain_bert_classifier(model)
    # one row longer than MPNet's exact-bucket range, so the log-spaced buckets are used too
    batch = padded_batch(60, lengths=(9, 3, 40, 1, 6), seed=3, pad_id=model.config.pad_token_id)
    with torch.inference_mode():
        full = model(**batch).logits
        fast = choose_forward(model, pack=pack).score(batch)
    np.testing.assert_allclose(fast.numpy(), full.numpy(), atol=1e-5)


def test_fast_path_matches_with_an_activation_onednn_does_not_fuse():
    model = tiny_bert(hidden_act="gelu_new")
    batch = padded_batch(60, seed=2)
    with torch.inference_mode():
        np.testing.assert_allclose(choose_forward(model).score(batch).numpy(), model(**batch).logits.numpy(), atol=1e-5)


@needs_onednn
def test_packed_projection_fuses_query_key_value_and_gelu():
    torch.manual_seed(0)
    linears = [torch.nn.Linear(16, n) for n in (8, 8, 12)]
    x = torch.randn(5, 3, 16)
    with torch.inference_mode():
        outputs = projection(linears, pack=True)(x)
        gelu_out = projection(linears[:1], pack=True, gelu=True)(x)[0]
        assert [o.shape[-1] for o in outputs] == [8, 8, 12]
        for out, linear in zip(outputs, linears):
            np.testing.assert_allclose(out.numpy(), linear(x).numpy(), atol=1e-5)
        np.testing.assert_allclose(gelu_out.numpy(), F.gelu(linears[0](x)).numpy(), atol=1e-5)


def test_fast_path_matches_with_eager_attention():
    eager = tiny_bert(attn_implementation="eager")
    batch = padded_batch(60, seed=1)
    with torch.inference_mode():
        np.testing.assert_allclose(choose_forward(eager).score(batch).numpy(), eager(**batch).logits.numpy(), atol=1e-5)


@pytest.mark.parametrize("build", [tiny_bert, tiny_mpnet], ids=["bert", "mpnet"])
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_fast_path_is_as_close_to_fp32_as_the_model_itself(precision, build):
    """bf16 rounds, and int8 scales activations per batch (so [CLS]-only rows quantise a
    little differently): neither can match the model's own forward exactly. The check is
    that the fast path strays from fp32 no further than twice as far as the model does."""
    reduced = build().to(torch.bfloat16) if precision == "bf16" else quantize_dynamic_int8(build())
    for seed in range(3):
        batch = padded_batch(60, seed=seed, pad_id=reduced.config.pad_token_id)
        with torch.inference_mode():
            exact = build()(**batch).logits
            own_error = (reduced(**batch).logits.float() - exact).abs().max()
            fast_error = (choose_forward(reduced).score(batch).float() - exact).abs().max()
        assert fast_error <= 2 * own_error + 1e-3, (seed, float(fast_error), float(own_error))


def test_other_architectures_use_their_own_forward_and_say_why():
    model = tiny_distilbert()
    assert not _is_plain_bert_classifier(model)
    forward = choose_forward(model)
    assert not forward.fast_path and not forward.packed
    assert forward.reason == "DistilBertForSequenceClassification is not a plain BERT or MPNet sequence classifier"
    batch = padded_batch(60)
    with torch.inference_mode():
        np.testing.assert_array_equal(forward.score(batch).numpy(), model(**batch).logits.numpy())


def test_requiring_the_fast_path_for_another_architecture_is_a_clear_error():
    with pytest.raises(FramingInputError, match="fast_path=True requires .*DistilBertForSequenceClassification is "
                                                "not a plain BERT .*Pass fast_path=None"):
        choose_forward(tiny_distilbert(), fast_path=True)


@expects_onednn
@pytest.mark.parametrize("build", [tiny_bert, tiny_mpnet], ids=["bert", "mpnet"])
def test_fp32_on_this_cpu_takes_the_fast_path_with_packed_weights(build):
    forward = choose_forward(build())
    assert (forward.fast_path, forward.packed, forward.reason) == (True, True, "")


def test_missing_packed_ops_are_reported_and_fail_when_the_fast_path_is_required(monkeypatch):
    monkeypatch.setattr(cls_forward, "packing_problem", lambda dtype: "the probe failed")
    forward = choose_forward(tiny_bert())
    assert (forward.fast_path, forward.packed, forward.reason) == (True, False, "the probe failed")
    with pytest.raises(FramingInputError, match="fast_path=True requires .*but the probe failed"):
        choose_forward(tiny_bert(), fast_path=True)
    # int8 layers are never packed, by design: requiring the fast path there is no error
    int8 = choose_forward(quantize_dynamic_int8(tiny_bert()), fast_path=True)
    assert int8.fast_path and not int8.packed and "quantised" in int8.reason


def test_fast_path_false_is_the_models_own_forward():
    model = tiny_bert()
    forward = choose_forward(model, fast_path=False)
    assert (forward.fast_path, forward.packed, forward.reason) == (False, False, "fast_path=False was asked for")
    batch = padded_batch(60)
    with torch.inference_mode():
        np.testing.assert_array_equal(forward.score(batch).numpy(), model(**batch).logits.numpy())


def test_int8_warns_for_the_architecture_it_was_measured_to_harm():
    with pytest.warns(UserWarning, match="bf16"):
        prepare_model(tiny_mpnet(), "int8", torch.device("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MiniLM's int8 was measured fine: no warning
        assert prepare_model(tiny_bert(), "int8", torch.device("cpu")) is not None
