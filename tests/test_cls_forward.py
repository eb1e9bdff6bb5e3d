"""The [CLS]-only forward pass must equal the model's own forward, padding included."""
import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification, DistilBertConfig, DistilBertForSequenceClassification

from infer._compat import quantize_dynamic_int8
from infer.cls_forward import _is_plain_bert_classifier, logits_scorer


def padded_batch(vocab: int, lengths=(9, 3, 14, 1, 6), seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(5, vocab, (len(lengths), width), generator=generator)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
        ids[row, n:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def tiny_bert(**overrides) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, num_labels=4, **overrides)
    return BertForSequenceClassification(config).eval()


def test_cls_only_path_matches_the_full_forward_on_a_padded_batch():
    model = tiny_bert()
    assert _is_plain_bert_classifier(model)
    batch = padded_batch(60)
    with torch.inference_mode():
        full = model(**batch).logits
        fast = logits_scorer(model)(batch)
    np.testing.assert_allclose(fast.numpy(), full.numpy(), atol=1e-5)


def test_cls_only_path_matches_with_eager_attention_and_int8():
    eager = tiny_bert(attn_implementation="eager")
    batch = padded_batch(60, seed=1)
    with torch.inference_mode():
        np.testing.assert_allclose(logits_scorer(eager)(batch).numpy(), eager(**batch).logits.numpy(), atol=1e-5)
        quantized = quantize_dynamic_int8(tiny_bert())
        np.testing.assert_allclose(logits_scorer(quantized)(batch).numpy(), quantized(**batch).logits.numpy(),
                                   atol=1e-4)


def test_other_architectures_use_their_own_forward():
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=60, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64, num_labels=4)).eval()
    assert not _is_plain_bert_classifier(model)
    batch = padded_batch(60)
    with torch.inference_mode():
        np.testing.assert_array_equal(logits_scorer(model)(batch).numpy(), model(**batch).logits.numpy())
