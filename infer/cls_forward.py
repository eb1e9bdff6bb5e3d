"""An exact, cheaper forward pass for BERT-style sequence classifiers.

Two savings, neither of which changes a result beyond float rounding (a test checks
1e-5 against the model's own forward):

- **The last layer only at [CLS].** A BERT or MPNet classifier reads only the [CLS] position of
  the last layer. There the keys and values still need every token, but the query,
  the attention output and the feed-forward block (10 of its 12 hidden-size-squared
  matrix products per token) are needed for [CLS] alone. That removes about a sixth
  of MiniLM-L6's encoder work.
- **Pre-packed oneDNN matrix products on CPU.** Matrix products are over 80% of the
  CPU time. torch sends fp32 ``Linear`` layers to MKL, which on this project's AMD
  CPU ran 20-30% slower than oneDNN with weights packed once, ahead of time, into its
  blocked layout (benchmarks/README.md). Query, key and value share one product, and
  the feed-forward GELU runs inside its product. The packed ops are private to torch,
  so they are probed once and any failure or mismatch falls back to the module.

Two architectures take this path: BERT (MiniLM, the default backbone) and MPNet (the
quality backbone, whose layers add a relative-position bias to the attention scores).
Models that do not have this exact shape (other architectures, decoders, BERT's relative
position embeddings, chunked feed-forward) use the model's own forward.

The packed weights are copies taken when the scorer is built: a model whose weights
change afterwards needs a new scorer (``FramingClassifier.to`` builds one).

``choose_forward`` says which path it took and why not, so that a torch whose private ops
went missing costs a log line and a failing test rather than a silent 1.5x.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from transformers import BertForSequenceClassification, MPNetForSequenceClassification

from .errors import FramingInputError

Scorer = Callable[[dict[str, torch.Tensor]], torch.Tensor]
Projection = Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
# a typical batch's row count; oneDNN picks its packed layout with it, any count still works
PACKING_ROWS_HINT = 2048
PACKABLE_DTYPES = (torch.float32, torch.bfloat16)


@dataclass(frozen=True)
class Forward:
    """The forward pass chosen for one model, and why the faster parts are not used."""

    score: Scorer
    fast_path: bool  # this module's [CLS]-only pass, rather than the model's own forward
    packed: bool  # Linear layers run as pre-packed oneDNN products
    reason: str  # why the fast path or packing is off; "" when both are on


def choose_forward(model: torch.nn.Module, fast_path: bool | None = None, pack: bool = True) -> Forward:
    """The fastest exact forward for ``model``. ``fast_path``: None uses this module's pass when
    the model has its shape; False forces the model's own forward; True requires this pass,
    with packed products wherever they apply (fp32 and bf16 on CPU), and raises
    FramingInputError otherwise. ``pack=False`` keeps the model's own Linear layers (tests
    check both)."""
    unfit = "fast_path=False was asked for" if fast_path is False else _unfit_reason(model)
    if unfit:
        _require(fast_path, unfit)
        return Forward(lambda batch: model(**batch).logits, fast_path=False, packed=False, reason=unfit)
    skipped = _packing_skipped(model) if pack else "pack=False was asked for"
    missing = "" if skipped else packing_problem(model.dtype)
    _require(fast_path, missing)
    plan = EncoderPlan.for_model(model, pack=not (skipped or missing))
    return Forward(lambda batch: plan.logits(batch["input_ids"], batch["attention_mask"]), fast_path=True,
                   packed=not (skipped or missing), reason=skipped or missing)


def _require(fast_path: bool | None, problem: str) -> None:
    if fast_path and problem:
        raise FramingInputError(f"fast_path=True requires the [CLS]-only pass with packed oneDNN products, but "
                                f"{problem}. Pass fast_path=None to fall back quietly, or fast_path=False.")


def _unfit_reason(model: torch.nn.Module) -> str:
    if _is_plain_bert_classifier(model) or _is_plain_mpnet_classifier(model):
        return ""
    return f"{type(model).__name__} is not a plain BERT or MPNet sequence classifier"


def _packing_skipped(model: torch.nn.Module) -> str:
    """Why packing does not apply to this model by design ("" when it does)."""
    weight = next((m.weight for m in model.modules() if type(m) is torch.nn.Linear), None)
    if weight is None:
        return "int8 layers are quantised, not packed"
    if weight.device.type != "cpu":
        return f"packing is for CPU; on {weight.device.type} the Linear modules run"
    if weight.dtype not in PACKABLE_DTYPES:
        return f"{weight.dtype} weights are not packed"
    return ""


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


def _is_plain_mpnet_classifier(model: torch.nn.Module) -> bool:
    # MPNet (the quality backbone): BERT's post-norm layers plus a relative-position bias
    # that every layer adds to its attention scores, and a head reading <s> alone
    return type(model) is MPNetForSequenceClassification


AttentionInputs = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass
class LayerModules:
    """Where one post-norm encoder layer keeps its parts (BERT and MPNet name them
    differently)."""

    query: torch.nn.Module
    key: torch.nn.Module
    value: torch.nn.Module
    attention_out: torch.nn.Module
    attention_norm: torch.nn.LayerNorm
    up: torch.nn.Module
    activation: Callable[[torch.Tensor], torch.Tensor]
    down: torch.nn.Module
    output_norm: torch.nn.LayerNorm
    heads: int
    head_size: int
    scaling: float

    @classmethod
    def of_bert(cls, layer) -> "LayerModules":
        attention = layer.attention.self
        return cls(attention.query, attention.key, attention.value, layer.attention.output.dense,
                   layer.attention.output.LayerNorm, layer.intermediate.dense,
                   layer.intermediate.intermediate_act_fn, layer.output.dense, layer.output.LayerNorm,
                   attention.num_attention_heads, attention.attention_head_size, attention.scaling)

    @classmethod
    def of_mpnet(cls, layer) -> "LayerModules":
        attention = layer.attention.attn
        return cls(attention.q, attention.k, attention.v, attention.o, layer.attention.LayerNorm,
                   layer.intermediate.dense, layer.intermediate.intermediate_act_fn, layer.output.dense,
                   layer.output.LayerNorm, attention.num_attention_heads, attention.attention_head_size,
                   attention.attention_head_size ** -0.5)


@dataclass
class LayerPlan:
    """One encoder layer as projections: its attention inputs (one product for query, key
    and value), the attention output, the feed-forward up projection with its activation,
    and the down projection. The norms and the head shape are read from ``modules``."""

    inputs: AttentionInputs
    attention_out: Projection
    up: Projection
    down: Projection
    modules: LayerModules


@dataclass
class EncoderPlan:
    """A classifier as four steps: embed the ids, build the additive attention bias (padding,
    plus relative positions for MPNet), run the layers (the last at [CLS] alone), apply the
    head to [CLS]."""

    embed: Callable[[torch.Tensor], torch.Tensor]
    attention_bias: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    layers: list[LayerPlan]
    head: Callable[[torch.Tensor], torch.Tensor]

    @classmethod
    def for_model(cls, model: torch.nn.Module, pack: bool) -> "EncoderPlan | None":
        if _is_plain_bert_classifier(model):
            bert = model.bert
            return cls(embed=lambda ids: bert.embeddings(input_ids=ids),
                       attention_bias=lambda hidden, mask: _additive_mask(mask, hidden.dtype),
                       layers=_layer_plans(map(LayerModules.of_bert, bert.encoder.layer), model.config, pack),
                       head=lambda cls_hidden: model.classifier(model.dropout(bert.pooler(cls_hidden))))
        if _is_plain_mpnet_classifier(model):
            mpnet = model.mpnet
            return cls(embed=lambda ids: mpnet.embeddings(input_ids=ids),
                       attention_bias=lambda hidden, mask: _mpnet_attention_bias(mpnet.encoder, hidden, mask),
                       layers=_layer_plans(map(LayerModules.of_mpnet, mpnet.encoder.layer), model.config, pack),
                       head=model.classifier)
        return None

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(input_ids)
        bias = self.attention_bias(hidden, attention_mask)
        for layer in self.layers:
            hidden = _layer_forward(layer, hidden, bias)
        return self.head(hidden)


def _mpnet_attention_bias(encoder, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[batch, heads, queries, keys]. The relative-position bias is the same for every row,
    so it is computed for one and broadcast (the model's own forward copies it per row)."""
    position_bias = encoder.compute_position_bias(hidden[:1]).to(hidden.dtype)
    return _additive_mask(attention_mask, hidden.dtype) + position_bias


def _layer_plans(layers, config, pack: bool) -> list[LayerPlan]:
    *body, last = list(layers)
    plans = [_layer_plan(modules, config.hidden_act, pack, cls_only=False) for modules in body]
    return plans + [_layer_plan(last, config.hidden_act, pack, cls_only=True)]


def _layer_plan(modules: LayerModules, activation: str, pack: bool, cls_only: bool) -> LayerPlan:
    fused_gelu = activation == "gelu"  # transformers' "gelu" is the exact (erf) GELU, as oneDNN's
    up = projection([modules.up], pack, gelu=fused_gelu)
    if not fused_gelu:
        up = _then(up, modules.activation)
    return LayerPlan(
        inputs=_attention_inputs(modules.query, modules.key, modules.value, pack, cls_only),
        attention_out=projection([modules.attention_out], pack), up=up,
        down=projection([modules.down], pack), modules=modules)


def _attention_inputs(query, key, value, pack: bool, cls_only: bool) -> AttentionInputs:
    """hidden -> (residual, query, key, value). In the [CLS]-only layer the residual and the
    query are position 0 alone; keys and values still cover every token."""
    if not cls_only:
        query_key_value = projection([query, key, value], pack)
        return lambda hidden: (hidden, *query_key_value(hidden))
    cls_query, key_value = projection([query], pack), projection([key, value], pack)

    def inputs(hidden: torch.Tensor):
        residual = hidden[:, :1]
        return (residual, *cls_query(residual), *key_value(hidden))

    return inputs


def _layer_forward(plan: LayerPlan, hidden: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A post-norm encoder layer's forward (BertLayer, MPNetLayer) in eval mode, where
    dropout is the identity. The [CLS]-only layer returns position 0 alone, shape
    [batch, 1, hidden]."""
    batch, parts = hidden.shape[0], plan.modules

    def split_heads(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(batch, x.shape[1], parts.heads, parts.head_size).transpose(1, 2)

    residual, query, key, value = plan.inputs(hidden)
    queries = residual.shape[1]
    bias = bias[:, :, :queries]  # MPNet's bias is per query: keep the queries computed here
    context = F.scaled_dot_product_attention(split_heads(query), split_heads(key), split_heads(value),
                                             attn_mask=bias, scale=parts.scaling)
    context = context.transpose(1, 2).reshape(batch, queries, parts.heads * parts.head_size)
    (attended,) = plan.attention_out(context)
    attended = parts.attention_norm(attended + residual)
    (inner,) = plan.up(attended)
    (out,) = plan.down(inner)
    return parts.output_norm(out + attended)


def _additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, 1, 1, keys]: 0 where a token is attended, the dtype's minimum at padding."""
    keep = attention_mask[:, None, None, :].to(torch.bool)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


def projection(linears: Sequence[torch.nn.Module], pack: bool, gelu: bool = False) -> Projection:
    """One or more Linear layers that read the same input, as a function returning their
    outputs. With ``pack`` (the caller has checked ``packing_problem``) they become one
    packed oneDNN product; otherwise each module is called in turn."""
    if pack and all(type(m) is torch.nn.Linear and m.bias is not None for m in linears):
        return _packed_projection(torch.cat([m.weight for m in linears]).detach(),
                                  torch.cat([m.bias for m in linears]).detach(),
                                  [m.out_features for m in linears], gelu)
    act = (lambda x: F.gelu(x)) if gelu else (lambda x: x)
    return lambda x: tuple(act(m(x)) for m in linears)


def _packed_projection(weight: torch.Tensor, bias: torch.Tensor, sizes: list[int], gelu: bool) -> Projection:
    packed = torch.ops.mkldnn._reorder_linear_weight(weight, PACKING_ROWS_HINT)
    attr, algorithm = ("gelu", "none") if gelu else ("none", "")  # "none": exact erf GELU

    def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = torch.ops.mkldnn._linear_pointwise(x, packed, bias, attr, [], algorithm)
        return (out,) if len(sizes) == 1 else out.split(sizes, dim=-1)

    return run


def _then(first: Projection, activation: Callable[[torch.Tensor], torch.Tensor]) -> Projection:
    return lambda x: tuple(activation(y) for y in first(x))


@lru_cache(maxsize=None)
def packing_problem(dtype: torch.dtype) -> str:
    """Why torch's packed oneDNN linear cannot be used on CPU for ``dtype`` ("" when it runs
    and agrees with F.linear, with and without the fused GELU). Probed once per dtype: these
    ops are private to torch and may change between versions."""
    if not torch.backends.mkldnn.is_available():
        return f"this torch ({torch.__version__}) was built without oneDNN (torch.backends.mkldnn)"
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(shape, generator=generator).to(dtype) for shape in ((7, 3, 24), (40, 24), (40,)))
    tolerance = 1e-4 if dtype == torch.float32 else 5e-2
    try:
        with torch.inference_mode():
            plain, gelu = _packed_projection(weight, bias, [40], False), _packed_projection(weight, bias, [40], True)
            expected = F.linear(x.float(), weight.float(), bias.float())
            agree = (torch.allclose(plain(x)[0].float(), expected, atol=tolerance, rtol=tolerance)
                     and torch.allclose(gelu(x)[0].float(), F.gelu(expected), atol=tolerance, rtol=tolerance))
    except (RuntimeError, AttributeError, TypeError) as exc:
        first_words = " ".join(str(exc).split())[:120]
        return (f"torch {torch.__version__}'s packed oneDNN linear ops (torch.ops.mkldnn._reorder_linear_weight, "
                f"_linear_pointwise) failed their {dtype} probe: {type(exc).__name__}: {first_words}")
    return "" if agree else (f"torch {torch.__version__}'s packed oneDNN linear disagrees with F.linear "
                             f"in its {dtype} probe")
