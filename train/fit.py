"""Fine-tuning with Hugging Face Trainer (the folder is written by train/publish.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                          EarlyStoppingCallback, EvalPrediction, Trainer, TrainingArguments)
from transformers.trainer_utils import get_last_checkpoint

from infer.engine import cpu_has_fast_bf16
from infer.errors import FramingInputError, ModelFolderError
from infer.model_folder import read_meta, verify_loaded

from .backbone import Backbone
from .config import Config
from .data import LabelledSet
from .metrics import binarise, macro_f1

log = logging.getLogger(__name__)


class WeightedBCE:
    """Multi-label loss: mean BCE over labels, positives up-weighted per label."""

    def __init__(self, pos_weight: torch.Tensor | None):
        self.pos_weight = pos_weight

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"].float()
        weight = None if self.pos_weight is None else self.pos_weight.to(logits.device)
        return F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=weight)


def positive_weights(y: np.ndarray, mode: str) -> torch.Tensor | None:
    """sqrt(neg/pos) per label, capped at 10: rare frames count more without swamping precision."""
    if mode == "none":
        return None
    pos = y.sum(0).clip(min=1)
    return torch.tensor(np.sqrt((len(y) - pos) / pos).clip(1.0, 10.0), dtype=torch.float32)


def load_backbone_model(backbone: Backbone, labels: list[str]):
    tokenizer = AutoTokenizer.from_pretrained(backbone.location, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone.location, num_labels=len(labels), problem_type="multi_label_classification",
        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
        use_safetensors=True, trust_remote_code=False)
    return tokenizer, model


def load_init_model(folder: str, labels: list[str]):
    """A published model folder to continue from (weights, head and tokenizer), when it predicts these labels."""
    meta = read_meta(folder)
    if meta.labels != list(labels):
        raise ModelFolderError(f"--init-from {folder} predicts labels {meta.labels}, but data.labels is "
                               f"{list(labels)}. Continue only from a model with the same labels in the same "
                               "order, or drop --init-from to train from the backbone.")
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, problem_type="multi_label_classification", use_safetensors=True, trust_remote_code=False)
    verify_loaded(folder, meta, tokenizer, model.config)
    return tokenizer, model


def to_dataset(split: LabelledSet, tokenizer, max_length: int):
    import datasets

    ds = datasets.Dataset.from_dict({"text": split.texts, "labels": split.y.tolist()})
    # Training truncates at max_length; inference scores longer sentences in windows.
    def encode(batch):
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]  # read by the length-grouped sampler
        return encoded

    return ds.map(encode, batched=True, remove_columns=["text"], desc=f"tokenising {split.name}")


def dev_macro_f1(prediction: EvalPrediction) -> dict[str, float]:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    probs = 1.0 / (1.0 + np.exp(-logits))
    return {"macro_f1": macro_f1(prediction.label_ids.astype(np.int8), binarise(probs, [0.5] * probs.shape[1]))}


def training_precision(requested: str, use_gpu: bool) -> str:
    """Resolve "auto": bf16 autocast where the hardware computes bf16 natively (on this project's
    AVX512-BF16 CPU a training step took 0.30 s against 0.54 s in fp32, benchmarks/train_step.py),
    fp32 elsewhere, where emulated bf16 would be slower than fp32."""
    if requested != "auto":
        return requested
    if use_gpu:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def training_arguments(cfg: Config, checkpoint_dir: Path) -> TrainingArguments:
    t = cfg.training
    strategy = "epoch" if t.eval_every == "epoch" else "steps"
    use_gpu = torch.cuda.is_available() and not t.use_cpu
    precision = training_precision(t.precision, use_gpu)
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=t.epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate, weight_decay=t.weight_decay, warmup_steps=t.warmup_ratio,
        eval_strategy=strategy, save_strategy=strategy, eval_steps=t.eval_steps, save_steps=t.eval_steps,
        save_total_limit=t.save_total_limit, load_best_model_at_end=True,
        metric_for_best_model="macro_f1", greater_is_better=True,
        logging_steps=t.logging_steps, seed=t.seed, data_seed=t.seed,
        # Trainer takes bf16 on a CPU only when told explicitly that it trains on the CPU
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=t.use_cpu or (precision == "bf16" and not use_gpu),
        dataloader_num_workers=t.dataloader_workers, report_to="none",
        train_sampling_strategy="group_by_length" if t.group_by_length else "random", length_column_name="length",
        # pinned host memory only helps copies to a GPU; on CPU torch warns about it
        dataloader_pin_memory=torch.cuda.is_available() and not t.use_cpu,
        ddp_find_unused_parameters=False,
    )


@dataclass
class FitResult:
    trainer: Trainer
    tokenizer: Any
    best_dev: dict[str, float]
    epochs_run: float
    steps: int
    init_from: str | None = None  # the model folder training continued from, if not the backbone


def fit(cfg: Config, backbone: Backbone, train: LabelledSet, dev: LabelledSet, resume: bool,
        init_from: str | None = None) -> FitResult:
    """Run Trainer on train with early stopping on dev macro-F1; the best checkpoint is loaded at the end.
    ``init_from`` continues from a published model folder instead of the backbone (a cheap update)."""
    tokenizer, model = (load_init_model(init_from, cfg.data.labels) if init_from
                        else load_backbone_model(backbone, cfg.data.labels))
    checkpoint_dir = Path(cfg.output.dir) / "checkpoints"
    args = training_arguments(cfg, checkpoint_dir)
    callbacks = ([EarlyStoppingCallback(cfg.training.early_stopping_patience)]
                 if cfg.training.early_stopping_patience > 0 else [])
    trainer = Trainer(
        model=model, args=args,
        train_dataset=to_dataset(train, tokenizer, cfg.model.max_length),
        eval_dataset=to_dataset(dev, tokenizer, cfg.model.max_length),
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
        compute_loss_func=WeightedBCE(positive_weights(train.y, cfg.training.pos_weight)),
        compute_metrics=dev_macro_f1, callbacks=callbacks,
    )
    trainer.loss_is_scaled_for_ga = False  # WeightedBCE returns a per-batch mean
    resume_from = _resume_checkpoint(checkpoint_dir) if resume else None
    output = trainer.train(resume_from_checkpoint=resume_from)
    best = trainer.evaluate()
    return FitResult(trainer, tokenizer, {"macro_f1_at_0.5": best["eval_macro_f1"], "loss": best["eval_loss"]},
                     float(trainer.state.epoch or 0), int(output.global_step), init_from)


def _resume_checkpoint(checkpoint_dir: Path) -> str:
    last = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if last is None:
        raise FramingInputError(f"--resume was given, but {checkpoint_dir} holds no checkpoint-* folder. "
                                "Run without --resume to start fresh.")
    log.info("resuming from %s", last)
    return last

