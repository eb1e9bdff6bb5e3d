"""Shared fixtures: a tiny random BERT with a locally built tokenizer (no downloads), and one
tiny training run reused by the tests that need a trained model folder."""
from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test that tries the network fails fast instead of hanging
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLES = ROOT / "data" / "examples"


def _vocab_words() -> list[str]:
    words = set()
    for path in EXAMPLES.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            words.update(re.findall(r"[a-z]+", json.loads(line)["text"].lower()))
    return sorted(words)


def build_tiny_tokenizer(vocab: list[str]):
    """A BERT-style WordPiece tokenizer built with the ``tokenizers`` library itself.

    Passing a vocab file to ``BertTokenizerFast`` stopped working in transformers 5.x (5.25
    ignores ``vocab_file`` and keeps its 5-token default vocabulary, so every word became
    [UNK]); a ``tokenizers.Tokenizer`` object is wrapped the same way across 5.x."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    ids = {token: i for i, token in enumerate(vocab)}
    core = Tokenizer(WordPiece(ids, unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece(prefix="##")
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)


def build_tiny_backbone(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT, randomly initialised, with a WordPiece vocabulary that covers
    the example data and (through single letters) any lowercase text."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    letters = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + letters + [f"##{c}" for c in letters] + _vocab_words()
    vocab = list(dict.fromkeys(vocab))
    build_tiny_tokenizer(vocab).save_pretrained(str(folder))
    reloaded = AutoTokenizer.from_pretrained(str(folder))
    # the fixture is only useful if the saved tokenizer really has the vocabulary: a silent
    # fallback to a 5-token default once made every test sentence the same row of [UNK]s
    assert len(reloaded) == len(vocab), f"tiny tokenizer reloads with {len(reloaded)} tokens, expected {len(vocab)}"
    assert reloaded.unk_token_id not in reloaded("the nation", add_special_tokens=False)["input_ids"]
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("backbone"))


def tiny_overrides(backbone: Path, out: Path, *extra: str) -> list[str]:
    return [f"model.backbone={backbone}", f"output.dir={out}", "training.max_steps=2",
            "evaluation.bootstrap=50", "training.use_cpu=true", *extra]


@pytest.fixture(scope="session")
def trained_run(tiny_backbone, tmp_path_factory) -> dict:
    """One tiny end-to-end training run through the CLI: returns its summary."""
    from train.config import load_config
    from train.pipeline import train

    out = tmp_path_factory.mktemp("run")
    return train(load_config(ROOT / "configs" / "tiny.yaml", tiny_overrides(tiny_backbone, out)))


@pytest.fixture(scope="session")
def model_dir(trained_run) -> Path:
    return Path(trained_run["model_dir"])
