"""The fast forward pass ([CLS]-only last layer, packed oneDNN products) must equal the
model's own forward, padding included."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification)

from infer.quantize import quantize_dynamic_int8
from infer.engine import prepare_model
from infer.cls_forward import (_is_plain_bert_classifier, _is_plain_mpnet_classifier, logits_scorer, packing_works,
                               projection)


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


needs_onednn = pytest.mark.skipif(not packing_works(torch.float32, "cpu"),
                                  reason="torch's packed oneDNN linear is not available on this build")


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "modules"])
def test_fast_path_matches_the_full_forward_on_a_padded_batch(pack):
    model = tiny_bert()
    assert _is_plain_bert_classifier(model)
    batch = padded_batch(60)
    with torch.inference_mode():
        full = model(**batch).logits
        fast = logits_scorer(model, pack=pack)(batch)
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
        fast = logits_scorer(model, pack=pack)(batch)
    np.testing.assert_allclose(fast.numpy(), full.numpy(), atol=1e-5)


def test_fast_path_matches_with_an_activation_onednn_does_not_fuse():
    model = tiny_bert(hidden_act="gelu_new")
    batch = padded_batch(60, seed=2)
    with torch.inference_mode():
        np.testing.assert_allclose(logits_scorer(model)(batch).numpy(), model(**batch).logits.numpy(), atol=1e-5)


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
        np.testing.assert_allclose(logits_scorer(eager)(batch).numpy(), eager(**batch).logits.numpy(), atol=1e-5)


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
            fast_error = (logits_scorer(reduced)(batch).float() - exact).abs().max()
        assert fast_error <= 2 * own_error + 1e-3, (seed, float(fast_error), float(own_error))


def test_other_architectures_use_their_own_forward():
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=60, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64, num_labels=4)).eval()
    assert not _is_plain_bert_classifier(model)
    batch = padded_batch(60)
    with torch.inference_mode():
        np.testing.assert_array_equal(logits_scorer(model)(batch).numpy(), model(**batch).logits.numpy())


def test_int8_warns_for_the_architecture_it_was_measured_to_harm():
    with pytest.warns(UserWarning, match="bf16"):
        prepare_model(tiny_mpnet(), "int8", torch.device("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MiniLM's int8 was measured fine: no warning
        assert prepare_model(tiny_bert(), "int8", torch.device("cpu")) is not None
