"""Domain adaptation on a tiny model: a loadable backbone folder with provenance."""
import json

import pytest
from transformers import AutoModelForSequenceClassification

from infer.readers import DataError
from train.adapt import adapt
from train.backbone import resolve_backbone
from train.config import load_config

from conftest import ROOT

SENTENCES = ["The workers completed the dam ahead of schedule.", "Delegations met in the capital.",
             "The veterans laid wreaths at the cemetery.", "Floods destroyed the harvest in the east.",
             "The team won three gold medals.", "The ministry published the sowing schedule."]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "unlabelled.jsonl"
    path.write_text("".join(json.dumps({"text": t, "date": "2012-01-01"}) + "\n" for t in SENTENCES * 3))
    return path


@pytest.mark.parametrize("method", ["simcse", "mlm"])
def test_adapt_writes_a_loadable_backbone(tiny_backbone, corpus, tmp_path, method):
    out = tmp_path / f"adapted-{method}"
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [
        f"model.backbone={tiny_backbone}", f"adapt.corpus={corpus}", f"adapt.method={method}",
        f"adapt.output={out}", "adapt.max_steps=2", "adapt.batch_size=4", "training.use_cpu=true"])
    info = adapt(cfg)
    assert info["steps"] == 2 and info["n_sentences"] == len(SENTENCES)  # duplicates dropped
    provenance = json.loads((out / "adaptation.json").read_text())
    assert provenance["method"] == method and len(provenance["corpus_sha256"]) == 64
    assert provenance["base_backbone"]["location"] == str(tiny_backbone.resolve())
    assert not list(out.glob("*.bin"))
    backbone = resolve_backbone(str(out))
    assert backbone.source == "local"
    model = AutoModelForSequenceClassification.from_pretrained(out, num_labels=4, use_safetensors=True)
    assert model.config.num_labels == 4


def test_missing_or_empty_corpus_is_a_clear_error(tiny_backbone, tmp_path):
    base = [f"model.backbone={tiny_backbone}", f"adapt.output={tmp_path / 'x'}"]
    with pytest.raises(DataError, match="does not exist"):
        adapt(load_config(ROOT / "configs" / "tiny.yaml", base + [f"adapt.corpus={tmp_path / 'none.jsonl'}"]))
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"text": "  "}) + "\n")
    with pytest.raises(DataError, match="holds no usable sentences"):
        adapt(load_config(ROOT / "configs" / "tiny.yaml", base + [f"adapt.corpus={empty}"]))
    with pytest.raises(DataError, match="No unlabelled corpus given"):
        adapt(load_config(ROOT / "configs" / "tiny.yaml", base))
