"""FramingClassifier: load a model folder and predict frames, shaped like scikit-learn."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .engine import BatchEngine, prepare_model, resolve_device, resolve_precision
from .model_folder import FramingMeta, read_meta
from .segment import split_sentences


@dataclass
class SentenceResult:
    start: int
    end: int
    text: str
    labels: list[str]
    scores: dict[str, float]


@dataclass
class FrameProfile:
    """Article-level summary: how many sentences carry each frame, and their share."""

    n_sentences: int
    counts: dict[str, int]
    shares: dict[str, float]
    dominant: list[str]


@dataclass
class ArticleAnalysis:
    sentences: list[SentenceResult] = field(default_factory=list)
    profile: FrameProfile | None = None


class FramingClassifier:
    """Multi-label frame classifier over sentences.

    ``predict_proba`` columns follow ``labels``; one string in gives one result out.
    """

    def __init__(self, model, tokenizer, meta: FramingMeta, device: str | torch.device = "cpu",
                 precision: str = "fp32", batch_tokens: int | None = None):
        self._base_model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self.batch_tokens = batch_tokens
        self._precision_request = precision
        self._configure(resolve_device(device))

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", precision: str = "fp32",
                        batch_tokens: int | None = None) -> "FramingClassifier":
        """Load a folder written by ``framing train``: safetensors only, no remote code.

        ``precision``: fp32 (exact), bf16 (CPUs with AVX512-BF16/AMX, GPUs), fp16 (GPU),
        int8 (dynamic quantisation, CPU), or auto. ``batch_tokens``: padded tokens per batch
        (default 2,048 on CPU, 65,536 on GPU).
        """
        meta = read_meta(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), use_safetensors=True, trust_remote_code=False)
        return cls(model, tokenizer, meta, device=device, precision=precision, batch_tokens=batch_tokens)

    def _configure(self, device: torch.device) -> None:
        self.device = device
        self.precision = resolve_precision(self._precision_request, device)
        self.model = prepare_model(self._base_model, self.precision, device)
        self.engine = BatchEngine(self.model, self.tokenizer, self.meta.max_length, device, self.batch_tokens,
                                  precision=self.precision)

    def to(self, device: str | torch.device) -> "FramingClassifier":
        self._configure(resolve_device(device))
        return self

    @property
    def labels(self) -> list[str]:
        return list(self.meta.labels)

    @property
    def thresholds(self) -> np.ndarray:
        return np.asarray(self.meta.threshold_vector(), dtype=np.float32)

    def predict_proba(self, texts: str | Sequence[str], progress: bool = False) -> np.ndarray:
        single = isinstance(texts, str)
        batch = _as_text_list(texts)
        probs = np.zeros((len(batch), len(self.labels)), dtype=np.float32)
        live = [i for i, t in enumerate(batch) if t.strip()]
        if live:
            logits = self.engine.logits([batch[i] for i in live], progress=progress)
            probs[live] = 1.0 / (1.0 + np.exp(-logits))
        return probs[0] if single else probs

    def predict(self, texts: str | Sequence[str], progress: bool = False) -> list[str] | list[list[str]]:
        probs = self.predict_proba(texts, progress=progress)
        if isinstance(texts, str):
            return self.labels_from_proba(probs[None, :])[0]
        return self.labels_from_proba(probs)

    __call__ = predict

    def labels_from_proba(self, probs: np.ndarray) -> list[list[str]]:
        hits = probs >= self.thresholds[None, :]
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in hits]

    def analyze(self, article: str) -> ArticleAnalysis:
        """Split an article into sentences and label each; spans index into ``article``."""
        return self.analyze_many([article])[0]

    def analyze_many(self, articles: Sequence[str], progress: bool = False) -> list[ArticleAnalysis]:
        articles = _as_text_list(articles)
        spans = [split_sentences(a) for a in articles]
        flat = [s.text for article_spans in spans for s in article_spans]
        probs = self.predict_proba(flat, progress=progress) if flat else np.zeros((0, len(self.labels)))
        labels = self.labels_from_proba(probs)
        results, k = [], 0
        for article_spans in spans:
            sentences = []
            for span in article_spans:
                scores = {name: float(p) for name, p in zip(self.labels, probs[k])}
                sentences.append(SentenceResult(span.start, span.end, span.text, labels[k], scores))
                k += 1
            results.append(ArticleAnalysis(sentences, frame_profile(sentences, self.labels)))
        return results

    def __repr__(self) -> str:
        return (f"FramingClassifier(labels={self.labels}, device={self.device.type!r}, "
                f"precision={self.precision!r}, max_length={self.meta.max_length})")


def frame_profile(sentences: Sequence[SentenceResult], labels: Sequence[str]) -> FrameProfile:
    n = len(sentences)
    counts = {label: sum(label in s.labels for s in sentences) for label in labels}
    shares = {label: (counts[label] / n if n else 0.0) for label in labels}
    top = max(counts.values(), default=0)
    dominant = [label for label in labels if top > 0 and counts[label] == top]
    return FrameProfile(n, counts, shares, dominant)


def _as_text_list(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        raise TypeError("expected a str or a sequence of str, got None")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"text at position {i} is {type(t).__name__}, expected str")
    return out
