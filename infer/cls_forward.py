"""An exact, cheaper forward pass for BERT-style sequence classifiers.

A BERT classifier reads only the [CLS] position of the last layer. In that layer the
keys and values still need every token, but the query, the attention output, and the
feed-forward block (10 of its 12 hidden-size-squared matrix products per token) are
needed for [CLS] alone. Skipping them for the other tokens removes about a sixth of
MiniLM-L6's encoder work and changes no result: the outputs match the full model to
float rounding (a test checks 1e-5).

Models that do not have this exact shape (other architectures, decoders, relative
positions, chunked feed-forward) use the model's own forward.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from transformers import BertForSequenceClassification

Scorer = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def logits_scorer(model: torch.nn.Module) -> Scorer:
    """Return a function from a padded batch to logits, taking the [CLS]-only path when
    the model supports it."""
    if _is_plain_bert_classifier(model):
        return lambda batch: _cls_only_logits(model, batch["input_ids"], batch["attention_mask"])
    return lambda batch: model(**batch).logits


def _is_plain_bert_classifier(model: torch.nn.Module) -> bool:
    # exactly this class: a subclass may change the forward this path reproduces
    if type(model) is not BertForSequenceClassification:
        return False
    config = model.config
    return (model.bert.pooler is not None
            and not config.is_decoder and not getattr(config, "add_cross_attention", False)
            and getattr(config, "position_embedding_type", "absolute") == "absolute"
            and not getattr(config, "chunk_size_feed_forward", 0)
            and getattr(config, "_attn_implementation", "sdpa") in ("sdpa", "eager"))


def _additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, 1, 1, keys]: 0 where a token is attended, the dtype's minimum at padding.
    Every attention implementation in transformers accepts this form."""
    keep = attention_mask[:, None, None, :].to(torch.bool)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


def _cls_only_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    bert = model.bert
    hidden = bert.embeddings(input_ids=input_ids)
    mask = _additive_mask(attention_mask, hidden.dtype)
    *body, last = bert.encoder.layer
    for layer in body:
        hidden = layer(hidden, mask)
    cls = _last_layer_at_cls(last, hidden, mask)
    return model.classifier(model.dropout(bert.pooler(cls)))


def _last_layer_at_cls(layer, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The last encoder layer's output at position 0 only, shape [batch, 1, hidden]."""
    attention = layer.attention.self
    batch, length, _ = hidden.shape
    heads, size = attention.num_attention_heads, attention.attention_head_size

    def split_heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, x.shape[1], heads, size).transpose(1, 2)

    query = split_heads(attention.query(hidden[:, :1]))
    key, value = split_heads(attention.key(hidden)), split_heads(attention.value(hidden))
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=attention.scaling)
    context = context.transpose(1, 2).reshape(batch, 1, heads * size)
    attended = layer.attention.output(context, hidden[:, :1])
    return layer.output(layer.intermediate(attended), attended)
