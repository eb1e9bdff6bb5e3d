"""Domain adaptation of a backbone to an unlabelled corpus (`framing adapt CONFIG`).

- ``simcse``: unsupervised SimCSE (each sentence is its own positive; dropout is
  the noise; the rest of the batch are negatives). It keeps a sentence-embedding
  backbone such as all-MiniLM-L6-v2 doing what it was trained for.
- ``mlm``: masked-language-model training, for backbones pretrained that way. On
  a sentence-embedding backbone it starts from a fresh, untrained MLM head and
  pulls the encoder away from its contrastive training, which is why a pilot saw
  it hurt; we warn when the head is missing.

The adapted folder records its provenance in ``adaptation.json``; point
``model.backbone`` at it to fine-tune from it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import shutil
from pathlib import Path

from infer.atomic import atomic_write_json
from infer.atomic import honour_umask
from infer.readers import DataError, iter_records

from .backbone import backbone_provenance, resolve_backbone
from .config import Config

log = logging.getLogger(__name__)


def read_unlabelled(path: str | None, text_field: str, limit: int | None = None) -> list[str]:
    """Non-empty sentences of an unlabelled file, in order, de-duplicated."""
    if not path:
        raise DataError("No unlabelled corpus given: set adapt.corpus (or self_training.unlabeled) to a "
                        ".jsonl/.csv/.parquet/.txt file.")
    seen, texts = set(), []
    for _, record in iter_records(path):
        text = record.get(text_field)
        if isinstance(text, str) and text.strip() and text not in seen:
            seen.add(text)
            texts.append(text)
            if limit and len(texts) >= limit:
                break
    if not texts:
        raise DataError(f"{path} holds no usable sentences in field {text_field!r}.")
    return texts


def corpus_sha256(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\n")
    return digest.hexdigest()


def adapt(cfg: Config) -> dict:
    a = cfg.adapt
    texts = read_unlabelled(a.corpus, a.text_field, a.max_sentences)
    backbone = resolve_backbone(a.base or cfg.model.backbone, cfg.model.max_length)
    log.info("adapt: %s on %d sentences of %s, method %s, %d steps", backbone.describe(), len(texts), a.corpus,
             a.method, a.max_steps)
    out = Path(a.output)
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    steps = (_simcse if a.method == "simcse" else _mlm)(cfg, backbone.location, texts, staging)
    info = {"method": a.method, "steps": steps, "base_backbone": backbone_provenance(backbone),
            "corpus": str(Path(a.corpus).resolve()), "corpus_sha256": corpus_sha256(texts),
            "n_sentences": len(texts), "batch_size": a.batch_size, "learning_rate": a.learning_rate,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    atomic_write_json(staging / "adaptation.json", info)
    (staging / "pytorch_model.bin").unlink(missing_ok=True)
    honour_umask(staging)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    log.info("adapt: wrote %s; set model.backbone: %s to fine-tune from it", out, out)
    return {"backbone_dir": str(out), **info}


def _simcse(cfg: Config, location: str, texts: list[str], out: Path) -> int:
    import datasets
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    a = cfg.adapt
    model = SentenceTransformer(location, device="cpu" if cfg.training.use_cpu else None, trust_remote_code=False)
    model.max_seq_length = cfg.model.max_length
    pairs = datasets.Dataset.from_dict({"anchor": texts, "positive": texts})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out.with_name(out.name + ".checkpoints")), max_steps=a.max_steps,
        per_device_train_batch_size=a.batch_size, learning_rate=a.learning_rate, warmup_steps=0.1,
        seed=cfg.training.seed, report_to="none", save_strategy="no", logging_steps=max(1, a.max_steps // 20),
        use_cpu=cfg.training.use_cpu, bf16=cfg.training.precision == "bf16", fp16=cfg.training.precision == "fp16")
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs,
                                         loss=MultipleNegativesRankingLoss(model))
    result = trainer.train()
    model.save(str(out), safe_serialization=True)
    shutil.rmtree(out.with_name(out.name + ".checkpoints"), ignore_errors=True)
    return int(result.global_step)


def _mlm(cfg: Config, location: str, texts: list[str], out: Path) -> int:
    import datasets
    from transformers import (AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)

    a = cfg.adapt
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
    model = AutoModelForMaskedLM.from_pretrained(location, use_safetensors=True, trust_remote_code=False)
    if not _has_mlm_head(location):
        log.warning("adapt: %s ships no MLM head; a fresh one is trained from scratch, which tends to pull a "
                    "sentence-embedding backbone away from its training. Prefer method: simcse for it.", location)
    ds = datasets.Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=cfg.model.max_length), batched=True,
        remove_columns=["text"])
    args = TrainingArguments(output_dir=str(out.with_name(out.name + ".checkpoints")), max_steps=a.max_steps,
                             per_device_train_batch_size=a.batch_size, learning_rate=a.learning_rate,
                             warmup_steps=0.1, seed=cfg.training.seed, report_to="none", save_strategy="no",
                             logging_steps=max(1, a.max_steps // 20), use_cpu=cfg.training.use_cpu)
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=a.mlm_probability))
    result = trainer.train()
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    shutil.rmtree(out.with_name(out.name + ".checkpoints"), ignore_errors=True)
    return int(result.global_step)


def _has_mlm_head(location: str) -> bool:
    from safetensors import safe_open

    with safe_open(str(Path(location) / "model.safetensors"), framework="pt") as f:
        return any(k.startswith(("cls.predictions", "lm_head")) for k in f.keys())
