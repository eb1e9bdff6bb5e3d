"""FramingClassifier: load a model folder and predict frames, shaped like scikit-learn."""
from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .atomic import atomic_write_text, honour_umask, replace_folder
from .engine import BatchEngine, Runtime, precision_problem, prepare_model, resolve_device, resolve_precision
from .errors import FramingInputError, ModelFolderError
from .model_folder import (WEIGHTS_FILE, FramingMeta, file_sha256, read_meta, verify_files,
                           verify_loaded, write_meta)
from .segment import split_sentences

logger = logging.getLogger(__name__)


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
    The precision is decided once, against the device the model is loaded on, and ``model``
    is converted in place: no second copy of its weights is kept.
    """

    def __init__(self, model, tokenizer, meta: FramingMeta, device: str | torch.device = "cpu",
                 precision: str = "fp32", batch_tokens: int | None = None, fast_path: bool | None = None):
        self.tokenizer = tokenizer
        self.meta = meta
        self.batch_tokens = batch_tokens
        self.fast_path = fast_path
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = prepare_model(model, self.precision, self.device)
        self._configure()

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", precision: str = "fp32",
                        batch_tokens: int | None = None, fast_path: bool | None = None,
                        verify: bool = True) -> "FramingClassifier":
        """Load a folder written by ``framing train``: safetensors only, no remote code.

        ``precision``: fp32 (exact), bf16 (CPUs with AVX512-BF16/AMX, GPUs), fp16 (GPU),
        int8 (dynamic quantisation, CPU), or auto. ``batch_tokens``: padded tokens per batch
        (default 2,048 on CPU, 65,536 on GPU). ``fast_path``: None uses the [CLS]-only pass with
        packed oneDNN products where available, False the model's own forward, True requires
        them (an error otherwise). ``runtime`` tells which was chosen. ``verify``: check the weights
        against the sha256 recorded in ``framing.json`` (about a second per 400 MB); False skips only
        that, and a damaged file is still refused by its header or by non-finite scores.
        """
        meta = read_meta(path)
        verify_files(path, meta, checksum=verify)
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), use_safetensors=True, trust_remote_code=False)
        verify_loaded(path, meta, tokenizer, model.config)
        return cls(model, tokenizer, meta, device=device, precision=precision, batch_tokens=batch_tokens,
                   fast_path=fast_path)

    def _configure(self) -> None:
        """Build the engine for the model as it now is (the packed weights are copies)."""
        self.engine = BatchEngine(self.model, self.tokenizer, self.meta.max_length, self.device, self.batch_tokens,
                                  precision=self.precision, fast_path=self.fast_path)
        logger.info("FramingClassifier on %s", self.runtime.describe())

    def to(self, device: str | torch.device) -> "FramingClassifier":
        """Move to ``device``, keeping the precision chosen at load."""
        device = resolve_device(device)
        problem = precision_problem(self.precision, device)
        if problem:
            raise FramingInputError(
                f"Cannot move this {self.precision} classifier to {device}: {problem} The precision is fixed at "
                f"load; reload for that device: FramingClassifier.from_pretrained(path, device={str(device)!r}, "
                f"precision=...).")
        self.device = device
        self.model.to(device)
        self._configure()
        return self

    @property
    def runtime(self) -> Runtime:
        """What runs: device, precision, fast path or the model's own forward, packed weights."""
        return self.engine.runtime

    @property
    def labels(self) -> list[str]:
        return list(self.meta.labels)

    @property
    def thresholds(self) -> np.ndarray:
        return np.asarray(self.meta.threshold_vector(), dtype=np.float32)

    def predict_proba(self, texts: str | Sequence[str], progress: bool = False) -> np.ndarray:
        """Probability of each frame for each sentence.

        Args:
            texts: one sentence, or a sequence of sentences. An empty or blank sentence scores 0
                for every frame; a sentence longer than ``max_length`` tokens is scored in
                overlapping windows and each frame takes its highest window.
            progress: show a progress bar.

        Returns:
            An array of shape ``(len(labels),)`` for one string, else ``(len(texts), len(labels))``;
            columns follow ``self.labels``.

        Example::

            >>> clf = FramingClassifier.from_pretrained("runs/dev-real/model")
            >>> clf.predict_proba("The heroes gave their lives for the motherland.").shape
            (4,)
            >>> clf.predict_proba(["First sentence.", "Second sentence."]).shape
            (2, 4)
        """
        single = isinstance(texts, str)
        batch = _as_text_list(texts)
        probs = np.zeros((len(batch), len(self.labels)), dtype=np.float32)
        live = [i for i, t in enumerate(batch) if t.strip()]
        if live:
            logits = _finite(self.engine.logits([batch[i] for i in live], progress=progress), self.precision)
            probs[live] = 1.0 / (1.0 + np.exp(-logits))
        return probs[0] if single else probs

    def predict(self, texts: str | Sequence[str], progress: bool = False) -> list[str] | list[list[str]]:
        """The frames of each sentence: the labels whose probability reaches its tuned threshold.

        Args:
            texts: one sentence, or a sequence of sentences.
            progress: show a progress bar.

        Returns:
            For one string, its list of frames (``[]`` means none); for a sequence, one such list
            per sentence, in order.

        Example::

            >>> clf.predict("The heroes gave their lives for the motherland.")  # e.g. ['martyrdom']
            >>> clf.predict(["The heroes gave their lives.", "Rain is expected."])  # e.g. [['martyrdom'], []]
        """
        probs = self.predict_proba(texts, progress=progress)
        if isinstance(texts, str):
            return self.labels_from_proba(probs[None, :])[0]
        return self.labels_from_proba(probs)

    __call__ = predict

    def labels_from_proba(self, probs: np.ndarray) -> list[list[str]]:
        hits = probs >= self.thresholds[None, :]
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in hits]

    def analyze(self, article: str) -> ArticleAnalysis:
        """Split an article into sentences and label each one.

        Args:
            article: the article's text. A news dateline ("Pyongyang, May 3 (KCNA) --") is left
                out of the first sentence; very long text without sentence breaks is cut into pieces.

        Returns:
            ``ArticleAnalysis``: ``sentences``, each a ``SentenceResult`` with ``start``/``end``
            character offsets (``article[start:end] == text``), ``labels`` and per-frame ``scores``;
            and ``profile``, a ``FrameProfile`` with per-frame sentence counts, shares and the
            dominant frame(s).

        Example::

            >>> result = clf.analyze("Workers cheered the record harvest. The fallen were mourned.")
            >>> [s.text for s in result.sentences]
            ['Workers cheered the record harvest.', 'The fallen were mourned.']
            >>> result.profile.counts  # sentences per frame, e.g. {'martyrdom': 0, ..., 'loss': 1}
        """
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

    def save_pretrained(self, path: str | Path, model_card: str | None = None) -> Path:
        """Write a folder ``from_pretrained`` loads: fp32 safetensors weights, ``config.json`` with the
        labels, the tokenizer, ``framing.json`` with the weights' sha256, and ``model_card`` as README.md
        when given. It is written beside ``path`` and swapped in whole: ``path`` never holds half a model."""
        if self.precision != "fp32":
            raise FramingInputError(
                f"save_pretrained writes fp32 weights, but this classifier runs in {self.precision}, which would "
                "lose precision for good. Load it with precision='fp32' to save it: "
                "FramingClassifier.from_pretrained(path, precision='fp32').save_pretrained(new_path).")
        folder = Path(path)
        staged = folder.with_name(folder.name + ".partial")
        if staged.exists():
            shutil.rmtree(staged)  # left by an interrupted save
        self.model.config.id2label = dict(enumerate(self.labels))
        self.model.config.label2id = {label: i for i, label in enumerate(self.labels)}
        self.model.save_pretrained(str(staged))
        self.tokenizer.save_pretrained(str(staged))
        honour_umask(staged)
        write_meta(staged, replace(self.meta, weights_sha256=file_sha256(staged / WEIGHTS_FILE)))
        if model_card is not None:
            atomic_write_text(staged / "README.md", model_card)
        return replace_folder(staged, folder)

    def __repr__(self) -> str:
        return (f"FramingClassifier(labels={self.labels}, device={self.device.type!r}, "
                f"precision={self.precision!r}, fast_path={self.runtime.fast_path}, "
                f"packed={self.runtime.packed}, max_length={self.meta.max_length})")

    def embed(self, texts: str | Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The backbone's last hidden state at [CLS], one row per sentence (a long sentence is cut at
        ``max_length``): the model's own view of a sentence, used to spread active-learning picks."""
        single = isinstance(texts, str)
        batch = _as_text_list(texts)
        out = np.zeros((len(batch), self.model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(batch)), key=lambda i: len(batch[i]))  # similar lengths pad little
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                encoded = self.tokenizer([batch[i] for i in rows], truncation=True, max_length=self.meta.max_length,
                                         padding=True, return_tensors="pt")
                hidden = self.model.base_model(input_ids=encoded["input_ids"].to(self.device),
                                               attention_mask=encoded["attention_mask"].to(self.device))
                out[rows] = hidden.last_hidden_state[:, 0].float().cpu().numpy()
        return out[0] if single else out


def _finite(logits: np.ndarray, precision: str) -> np.ndarray:
    """Refuse NaN or infinite scores: written out, they become empty labels that look like results."""
    bad = int((~np.isfinite(logits)).any(axis=1).sum())
    if bad:
        overflow = " or fp16 overflowed (load with precision='bf16' or 'fp32')" if precision == "fp16" else ""
        raise ModelFolderError(
            f"The model gave non-finite scores (NaN or inf) for {bad} of {len(logits)} sentence(s): its weights are "
            f"most likely damaged{overflow}. Load the folder with verify=True to check model.safetensors against "
            "the checksum in framing.json, and restore it from its published copy.")
    return logits


def frame_profile(sentences: Sequence[SentenceResult], labels: Sequence[str]) -> FrameProfile:
    n = len(sentences)
    counts = {label: sum(label in s.labels for s in sentences) for label in labels}
    shares = {label: (counts[label] / n if n else 0.0) for label in labels}
    top = max(counts.values(), default=0)
    dominant = [label for label in labels if top > 0 and counts[label] == top]
    return FrameProfile(n, counts, shares, dominant)


# A lone surrogate ("\ud83d" in a JSON string, or bytes read with surrogateescape) makes the
# tokenizer raise TypeError and cannot be written out as UTF-8. One U+FFFD per code point keeps
# every span of an analysed article pointing at the same characters.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD; the same object when it has none."""
    return LONE_SURROGATE.sub("\ufffd", text)


def _as_text_list(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    elif isinstance(texts, (Mapping, bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"expected a str or a list of str, got {type(texts).__name__}{_type_fix(texts)}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"text at position {i} is {type(t).__name__}, expected str{_type_fix(t)}")
    clean = [replace_lone_surrogates(t) for t in out]
    fixed = sum(c is not t for c, t in zip(clean, out))
    if fixed:
        logger.warning("%d text(s) had invalid unicode (lone surrogates); replaced them with U+FFFD", fixed)
    return clean


def _type_fix(value: object) -> str:
    """How to turn a wrong input into text (a dict would otherwise be read as its keys)."""
    if isinstance(value, Mapping):
        return "; pass the text itself, e.g. record['text'], not the record"
    if isinstance(value, (bytes, bytearray)):
        return "; decode it first, e.g. data.decode('utf-8')"
    return ""
