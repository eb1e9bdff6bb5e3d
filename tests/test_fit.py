"""Training batches: length grouping reaches Trainer's sampler and cuts the padding."""
import numpy as np
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler

from train.backbone import resolve_backbone
from train.config import load_config
from train.data import LabelledSet
from train.fit import load_backbone_model, to_dataset, training_arguments

from conftest import ROOT


def _padded_tokens(lengths, order, batch_size):
    return sum(max(lengths[i] for i in order[k:k + batch_size]) * len(order[k:k + batch_size])
               for k in range(0, len(order), batch_size))


def test_group_by_length_gives_trainer_a_length_grouped_sampler(tiny_backbone, tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [f"model.backbone={tiny_backbone}", f"output.dir={tmp_path}",
                                                        "training.group_by_length=true", "training.batch_size=4"])
    tokenizer, model = load_backbone_model(resolve_backbone(str(tiny_backbone)), cfg.data.labels)
    rng = np.random.default_rng(0)
    texts = [" ".join(["the"] * int(n)) for n in rng.integers(1, 100, size=200)]  # "the" is one token
    split = LabelledSet("train", texts, np.zeros((200, 4), dtype=np.float32), cfg.data.labels)
    dataset = to_dataset(split, tokenizer, 128)
    assert dataset["length"] == [len(ids) for ids in dataset["input_ids"]]
    trainer = Trainer(model=model, args=training_arguments(cfg, tmp_path / "ck"), train_dataset=dataset,
                      eval_dataset=dataset)
    sampler = trainer._get_train_sampler(dataset)
    assert isinstance(sampler, LengthGroupedSampler)
    lengths, order = dataset["length"], list(sampler)
    assert sorted(order) == list(range(200))  # every sentence once per epoch
    shuffled = list(rng.permutation(200))
    assert _padded_tokens(lengths, order, 4) < 0.8 * _padded_tokens(lengths, shuffled, 4)


def test_group_by_length_false_draws_random_batches(tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [f"output.dir={tmp_path}", "training.group_by_length=false"])
    assert training_arguments(cfg, tmp_path).train_sampling_strategy == "random"
    assert load_config(ROOT / "configs" / "default.yaml").training.group_by_length  # the shipped default groups


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch):
    import train.fit as fit

    assert fit.training_precision("fp32", use_gpu=False) == "fp32"
    monkeypatch.setattr(fit, "cpu_has_fast_bf16", lambda: True)
    assert fit.training_precision("auto", use_gpu=False) == "bf16"
    monkeypatch.setattr(fit, "cpu_has_fast_bf16", lambda: False)
    assert fit.training_precision("auto", use_gpu=False) == "fp32"
