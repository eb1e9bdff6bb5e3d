"""The batch engine: token-budget batches, length-sorted, windows for long sentences.

Sentences are tokenised once, cut into overlapping windows when longer than the
model's max length (scores are max-pooled over windows, so a frame in the tail of
a long sentence is never truncated away), sorted by length so padding stays
small, and scored in batches whose size is set by a token budget.
"""
from __future__ import annotations

import platform
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .quantize import quantize_dynamic_int8
from .cls_forward import choose_forward
from .errors import FramingInputError

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
MAX_BATCH_SIZE = 1024
# Padded tokens per batch, measured with MiniLM on the 2-core CPU (benchmarks/README.md):
# fp32 and int8 run fastest in small, cache-sized batches (fp32 is flat from 1,024 to 4,096
# and 15% slower at 8,192); with packed weights bf16 peaks near 4,096 (342 sentences/s
# against 307 at 8,192). A GPU wants big batches.
CPU_BATCH_TOKENS = {"fp32": 2048, "int8": 2048, "bf16": 4096}
GPU_BATCH_TOKENS = 65536


def default_batch_tokens(device: torch.device, precision: str = "fp32") -> int:
    return GPU_BATCH_TOKENS if device.type == "cuda" else CPU_BATCH_TOKENS.get(precision, 2048)


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise FramingInputError(f"device={device!r} was asked for, but torch sees no CUDA GPU; use device='cpu'.")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise FramingInputError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    problem = precision_problem(precision, device)
    if problem:
        raise FramingInputError(problem)
    return precision


def precision_problem(precision: str, device: torch.device) -> str:
    """Why a resolved precision cannot run on ``device`` ("" when it can)."""
    if precision == "fp16" and device.type != "cuda":
        return "precision='fp16' needs a CUDA GPU; on CPU use 'bf16', 'int8' or 'fp32'."
    if precision == "int8" and device.type != "cpu":
        return "precision='int8' (dynamic quantisation) runs on CPU only; on GPU use 'fp16' or 'bf16'."
    return ""


# Dynamic int8 kept 97.5% of MiniLM's labels, but only 88% of the mpnet quality model's, whose
# dev_real macro-F1 fell from 0.79 to 0.67 (docs/domain-adaptation.md): warn rather than let a
# corpus run lose that quietly.
INT8_MEASURED_HARMFUL = {"mpnet"}


def prepare_model(model: torch.nn.Module, precision: str, device: torch.device) -> torch.nn.Module:
    """Return the model in eval mode, on ``device``, in the (already resolved) precision.
    The model is converted in place, int8 included: no copy of the fp32 weights stays behind."""
    model = model.eval().to(device)
    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "fp16":
        return model.to(torch.float16)
    if precision == "int8":
        model_type = getattr(model.config, "model_type", None)
        if model_type in INT8_MEASURED_HARMFUL:
            warnings.warn(f"precision='int8' was measured to change about 12% of a {model_type} model's labels "
                          f"(dev_real macro-F1 0.79 -> 0.67). Use precision='bf16' (same labels as fp32, "
                          f"4x the pipeline's speed on CPU) or 'fp32'.", UserWarning, stacklevel=3)
        return quantize_dynamic_int8(model.float())
    return model.float()


def special_token_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after one sentence ([CLS] ... [SEP],
    <s> ... </s>), found by encoding a probe with and without them: this works for any
    tokenizer, whatever methods its version exposes."""
    bare = tokenizer("framing", add_special_tokens=False)["input_ids"]
    full = tokenizer("framing", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare):])
    raise FramingInputError("Could not locate the special tokens this tokenizer adds around a sentence.")


@dataclass(frozen=True)
class Runtime:
    """What a classifier runs on, decided at load (``FramingClassifier.runtime``)."""

    device: str
    precision: str
    fast_path: bool  # infer/cls_forward.py's [CLS]-only pass, rather than the model's own forward
    packed: bool  # Linear layers run as pre-packed oneDNN products (CPU, fp32 and bf16)
    reason: str  # why the fast path or packing is off; "" when both are on

    def describe(self) -> str:
        path = "fast path ([CLS]-only last layer)" if self.fast_path else "the model's own forward"
        weights = "packed oneDNN weights" if self.packed else "unpacked weights"
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.device}, {self.precision}: {path}, {weights}{why}"


@dataclass
class Windows:
    """Token-id windows, each with special tokens, and the sentence each came from."""

    ids: list[list[int]]
    owner: list[int]


class BatchEngine:
    """Scores sentences with a sequence-classification model; returns logits in input order."""

    def __init__(self, model: torch.nn.Module, tokenizer, max_length: int, device: torch.device,
                 batch_tokens: int | None = None, window_overlap: float = 0.25, precision: str = "fp32",
                 fast_path: bool | None = None):
        self.model = model
        forward = choose_forward(model, fast_path)
        self.score = forward.score
        self.runtime = Runtime(device.type, precision, forward.fast_path, forward.packed, forward.reason)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = device
        self.batch_tokens = batch_tokens or default_batch_tokens(device, precision)
        self.prefix, self.suffix = special_token_frame(tokenizer)
        self.window_size = max_length - len(self.prefix) - len(self.suffix)
        self.window_step = max(1, int(self.window_size * (1.0 - window_overlap)))

    def windows(self, texts: Sequence[str]) -> Windows:
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=False,
                                 return_attention_mask=False, verbose=False)["input_ids"]
        ids: list[list[int]] = []
        owner: list[int] = []
        for i, tokens in enumerate(encoded):
            for chunk in self._split(tokens):
                ids.append(self.prefix + chunk + self.suffix)
                owner.append(i)
        return Windows(ids, owner)

    def _split(self, tokens: list[int]) -> Iterator[list[int]]:
        size, step = self.window_size, self.window_step
        if len(tokens) <= size:
            yield tokens
            return
        starts = list(range(0, len(tokens) - size, step)) + [len(tokens) - size]
        for start in starts:
            yield tokens[start:start + size]

    def batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Group window indices, longest first, so that batch_size * longest <= batch_tokens."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        groups: list[list[int]] = []
        current: list[int] = []
        for index in order:
            longest = lengths[current[0]] if current else lengths[index]
            if current and ((len(current) + 1) * longest > self.batch_tokens or len(current) >= MAX_BATCH_SIZE):
                groups.append(current)
                current = []
            current.append(index)
        if current:
            groups.append(current)
        return groups

    def logits(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        n_labels = self.model.config.num_labels
        out = np.full((len(texts), n_labels), -np.inf, dtype=np.float32)
        if not texts:
            return out
        windows = self.windows(texts)
        groups = self.batches([len(w) for w in windows.ids])
        # a sentence split into k windows advances the bar by 1/k per window
        share = 1.0 / np.bincount(windows.owner, minlength=len(texts)).clip(min=1)
        bar = tqdm(total=len(texts), unit="sent", disable=not progress, desc="scoring")
        with torch.inference_mode():
            for group, batch in self._collated(groups, windows.ids):
                scores = self.score(batch).float().cpu().numpy()
                owners = np.asarray([windows.owner[i] for i in group])
                np.maximum.at(out, owners, scores)
                bar.update(float(share[owners].sum()))
        bar.close()
        return out

    def _collated(self, groups: list[list[int]], ids: list[list[int]]):
        """Yield (group, tensors on device). On GPU the next batch is padded and pinned
        on a CPU thread while the current one computes."""
        if self.device.type != "cuda":
            for group in groups:
                yield group, self._pad(group, ids)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._pad, groups[0], ids) if groups else None
            for k, group in enumerate(groups):
                batch = pending.result()
                pending = pool.submit(self._pad, groups[k + 1], ids) if k + 1 < len(groups) else None
                yield group, batch

    def _pad(self, group: list[int], ids: list[list[int]]) -> dict[str, torch.Tensor]:
        width = max(len(ids[i]) for i in group)
        input_ids = torch.full((len(group), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, i in enumerate(group):
            input_ids[row, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
            mask[row, :len(ids[i])] = 1
        if self.device.type == "cuda":
            # pinned host memory lets the copy run asynchronously with compute
            return {"input_ids": input_ids.pin_memory().to(self.device, non_blocking=True),
                    "attention_mask": mask.pin_memory().to(self.device, non_blocking=True)}
        return {"input_ids": input_ids, "attention_mask": mask}
