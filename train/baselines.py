"""Baselines reported beside the model on the same data: TF-IDF + logistic regression,
a keyword lexicon from the codebook's cue phrases, and zero-shot embedding similarity.

Each is fitted on the model's own training split and has its thresholds tuned on
the same dev split, so the comparison isolates what fine-tuning adds.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .data import LabelledSet
from .thresholds import tune_thresholds

# Cue patterns paraphrasing the codebook (data/codebook.md). A hit scores 1.
LEXICON = {
    "martyrdom": r"martyr|laid down (?:their|his|her|our) (?:precious )?lives?|gave (?:their|his|her) (?:young )?lives?"
                 r"|fell in (?:battle|action)|the fallen|sacrific|died for|with (?:our|their) (?:very )?lives",
    "heroism": r"hero|exploit|feats?\b|brave|courage|fearless|valou?r|dauntless|undaunted|daring",
    "triumph": r"victor|triumph|success|record time|ahead of schedule|overfulfil|miracle|achievement|routed"
               r"|invincible|proud|pride",
    "loss": r"\bloss|grie[fv]|mourn|wept|weep|killed|wounded|casualt|bereaved|devastat|massacre|condolence|sorrow"
            r"|demise|perished|death",
}
LABEL_DESCRIPTIONS = {
    "martyrdom": "They gave their lives as a noble sacrifice; the fallen martyrs are honoured and immortal.",
    "heroism": "Heroic courage and glorious feats; they fought bravely and performed immortal exploits.",
    "triumph": "A great victory and proud success; the goal was achieved ahead of schedule.",
    "loss": "Grief and mourning over the dead; people were killed and wounded and homes destroyed.",
}


class TfidfBaseline:
    name = "tfidf_lr"

    def fit(self, train: LabelledSet, dev: LabelledSet, min_positives: int) -> "TfidfBaseline":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline

        self.pipeline_ = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            OneVsRestClassifier(LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)))
        self.pipeline_.fit(train.texts, _fit_targets(train.y))
        self.thresholds = _tuned(self, dev, min_positives)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.pipeline_.predict_proba(list(texts)), dtype=np.float32)


class LexiconBaseline:
    name = "lexicon"

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)
        self.patterns = {l: re.compile(LEXICON[l], re.I) for l in self.labels if l in LEXICON}
        self.thresholds = [0.5] * len(self.labels)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray([[1.0 if l in self.patterns and self.patterns[l].search(t) else 0.0
                            for l in self.labels] for t in texts], dtype=np.float32)


class ZeroShotBaseline:
    """Cosine similarity between mean-pooled backbone embeddings of a sentence and of each label's description."""

    name = "zero_shot"

    def __init__(self, backbone_location: str, labels: Sequence[str], max_length: int = 128):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.labels = list(labels)
        self.tokenizer = AutoTokenizer.from_pretrained(backbone_location, trust_remote_code=False)
        self.model = AutoModel.from_pretrained(backbone_location, use_safetensors=True, trust_remote_code=False).eval()
        self.max_length = max_length
        self._torch = torch
        descriptions = [LABEL_DESCRIPTIONS.get(l, l) for l in self.labels]
        self.label_vectors_ = self._embed(descriptions)

    def fit(self, train: LabelledSet, dev: LabelledSet, min_positives: int) -> "ZeroShotBaseline":
        self.thresholds = _tuned(self, dev, min_positives)
        return self

    def _embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = self.tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        sims = self._embed(texts) @ self.label_vectors_.T
        return ((sims + 1.0) / 2.0).astype(np.float32)


def _fit_targets(y: np.ndarray) -> np.ndarray:
    """OneVsRest needs both classes per label; a label absent from train gets one dummy flip."""
    y = y.astype(int).copy()
    for j in range(y.shape[1]):
        if y[:, j].min() == y[:, j].max():
            y[0, j] = 1 - y[0, j]
    return y


def _tuned(baseline, dev: LabelledSet, min_positives: int) -> list[float]:
    tuned = tune_thresholds(dev.y, baseline.predict_proba(dev.texts), dev.labels, min_positives)
    return [tuned[l] for l in dev.labels]
