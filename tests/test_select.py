"""`framing select`: each strategy's defining property, exclusion, determinism, bad pools."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from infer import FramingClassifier
from infer.readers import DataError
from train.cli import main
from train.select import k_center_greedy, select, threshold_closeness

LABELS = ["martyrdom", "heroism", "triumph", "loss"]
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"


class StubClassifier:
    """Fixed scores and embeddings per sentence, so a strategy's choice can be known in advance."""

    labels = LABELS
    thresholds = np.array([0.5, 0.4, 0.3, 0.6], dtype=np.float32)
    labels_from_proba = FramingClassifier.labels_from_proba

    def __init__(self, probs: dict[str, list[float]], vectors: dict[str, list[float]] | None = None):
        self.probs, self.vectors = probs, vectors or {}

    def predict_proba(self, texts):
        return np.array([self.probs[t] for t in texts], dtype=np.float32)

    def embed(self, texts):
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def example_texts() -> list[str]:
    return [json.loads(line)["text"] for name in ("train", "dev", "test")
            for line in (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def pool(tmp_path) -> Path:
    return write_jsonl(tmp_path / "pool.jsonl", [{"id": f"p{i}", "text": t} for i, t in enumerate(example_texts())])


def test_closeness_is_one_at_a_threshold_and_scaled_by_the_room_on_each_side():
    probs = np.array([[0.5, 0.1], [0.9, 0.9]])
    closeness = threshold_closeness(probs, np.array([0.5, 0.2]))
    # row 1: label 0 is 0.4 above 0.5 with 0.5 of room (0.2 left), label 1 0.7 above 0.2 with 0.8 (0.125)
    np.testing.assert_allclose(closeness, [[1.0, 0.5], [0.2, 0.125]], atol=1e-6)


def test_uncertainty_picks_the_rows_nearest_a_threshold(tmp_path):
    probs = {"far": [0.01, 0.99, 0.0, 0.99], "near loss": [0.0, 0.99, 0.0, 0.58],
             "near martyrdom": [0.51, 0.0, 0.0, 0.0], "middling": [0.8, 0.1, 0.1, 0.1]}
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": t} for t in probs])
    picks = select(StubClassifier(probs), path, 2, strategy="uncertainty")
    assert [p.text for p in picks] == ["near martyrdom", "near loss"]
    assert picks[0].pre_labels == ["martyrdom"] and picks[1].pre_labels == ["heroism"]
    assert picks[0].scores["martyrdom"] == pytest.approx(0.51)
    assert picks[0].uncertainty > picks[1].uncertainty > 0.9


def test_k_center_greedy_never_repeats_an_exact_duplicate_before_every_distinct_row():
    vectors = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [-1, 0]], dtype=np.float32)
    picked = k_center_greedy(vectors, 3, first=0)
    assert sorted(map(tuple, vectors[picked])) == [(-1, 0), (0, 1), (1, 0)]
    assert len(set(k_center_greedy(vectors, 6, first=1))) == 6


def test_diversity_takes_one_sentence_from_each_cluster(tmp_path):
    clusters = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "c": [0.0, 0.0, 1.0]}
    vectors = {f"{c} variant {k}": np.add(v, 0.01 * k).tolist() for c, v in clusters.items() for k in range(5)}
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": t} for t in vectors])
    stub = StubClassifier({t: [0.1] * 4 for t in vectors}, vectors)
    for seed in range(3):
        picks = select(stub, path, 3, strategy="diversity", seed=seed)
        assert sorted(p.text[0] for p in picks) == ["a", "b", "c"]


def test_hybrid_spreads_its_picks_and_favours_labels_rare_in_what_is_labelled(tmp_path):
    # two equally uncertain clusters, one near the heroism threshold and one near loss; the labelled
    # file already holds many heroism examples and no loss, so hybrid starts with loss, then spreads
    probs = {**{f"hero {k}": [0.0, 0.4, 0.0, 0.0] for k in range(4)},
             **{f"loss {k}": [0.0, 0.0, 0.0, 0.6] for k in range(4)}}
    vectors = {t: [1.0, 0.01 * k] if t.startswith("hero") else [0.0, 1.0 + 0.01 * k]
               for k, t in enumerate(probs)}
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": t} for t in probs])
    labelled = write_jsonl(tmp_path / "labelled.jsonl", [{"text": f"old {i}", "labels": ["heroism"]} for i in range(9)])
    picks = select(StubClassifier(probs, vectors), path, 2, strategy="hybrid", exclude=[labelled])
    assert picks[0].text.startswith("loss") and picks[1].text.startswith("hero")


def test_exclusion_matches_normalised_text_and_repeated_pool_rows_are_picked_once(tmp_path, caplog):
    probs = {t: [0.5, 0.0, 0.0, 0.0] for t in ("One sentence.", "Two sentence.", "Three sentence.")}
    stub = StubClassifier({**probs, "one  SENTENCE.": probs["One sentence."]})
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": t} for t in [*probs, "one  SENTENCE.", "Three sentence."]])
    exclude = write_jsonl(tmp_path / "dev.jsonl", [{"text": "  ONE sentence. ", "labels": []}])
    with caplog.at_level(logging.INFO, logger="train.select"):
        picks = select(stub, path, 10, strategy="uncertainty", exclude=[exclude])
    assert sorted(p.text for p in picks) == ["Three sentence.", "Two sentence."]
    assert "2 excluded, 1 repeated" in caplog.text


def test_random_and_diversity_are_deterministic_for_a_seed(model_dir, pool):
    classifier = FramingClassifier.from_pretrained(model_dir, device="cpu")
    for strategy in ("random", "diversity"):
        first = [p.source_id for p in select(classifier, pool, 6, strategy=strategy, seed=3)]
        assert first == [p.source_id for p in select(classifier, pool, 6, strategy=strategy, seed=3)]
        assert first != [p.source_id for p in select(classifier, pool, 6, strategy=strategy, seed=4)]


def test_every_strategy_on_the_real_model_gives_distinct_picks_with_prelabels(model_dir, pool):
    classifier = FramingClassifier.from_pretrained(model_dir, device="cpu")
    for strategy in ("hybrid", "uncertainty", "diversity", "random"):
        picks = select(classifier, pool, 5, strategy=strategy)
        assert len({p.text for p in picks}) == 5
        for p in picks:
            assert list(p.scores) == classifier.labels
            assert p.pre_labels == classifier.predict(p.text)


def test_empty_rows_are_counted_and_odd_text_does_not_crash(model_dir, tmp_path, caplog):
    path = tmp_path / "pool.jsonl"
    path.write_text('{"text": "The heroes fought \\ud800 bravely."}\n{"text": ""}\n{"text": null}\n'
                    '{"text": "   "}\n{"text": "A \\u0000 control and \\ud83d\\ude00 an emoji."}\n', encoding="utf-8")
    classifier = FramingClassifier.from_pretrained(model_dir, device="cpu")
    with caplog.at_level(logging.INFO, logger="train.select"):
        picks = select(classifier, path, 5)
    assert sorted(p.source_id for p in picks) == ["pool.jsonl:1", "pool.jsonl:5"]
    assert "\ufffd" in next(p.text for p in picks if p.source_id == "pool.jsonl:1")
    assert "skipped 3 empty" in caplog.text


def test_bad_pools_and_options_name_what_is_wrong(tmp_path):
    stub = StubClassifier({})
    broken = tmp_path / "pool.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"pool.jsonl:2: not valid JSON"):
        select(stub, broken, 1)
    wrong_column = write_jsonl(tmp_path / "cols.jsonl", [{"sentence": "x"}])
    with pytest.raises(DataError, match=r"cols.jsonl:1: no 'text' column; found \['sentence'\]"):
        select(stub, wrong_column, 1)
    with pytest.raises(DataError, match=r"Unknown selection strategy 'smart'; choose one of hybrid"):
        select(stub, wrong_column, 1, strategy="smart")
    everything_excluded = write_jsonl(tmp_path / "done.jsonl", [{"text": "x"}])
    with pytest.raises(DataError, match=r"no sentence left to pick \(0 empty, 1 excluded"):
        select(stub, everything_excluded, 1, exclude=[everything_excluded])


def test_cli_select_writes_every_format(model_dir, pool, tmp_path, capsys):
    for name in ("tasks.json", "picks.csv", "picks.jsonl"):
        assert main(["select", str(model_dir), "--pool", str(pool), "--n", "4", "--out", str(tmp_path / name)]) == 0
    assert len(json.loads((tmp_path / "tasks.json").read_text())) == 4
    assert (tmp_path / "tasks.label_config.xml").is_file()
    assert len((tmp_path / "picks.csv").read_text().splitlines()) == 5
    assert all(set(json.loads(l)) >= {"source_id", "text", "pre_labels", "scores"}
               for l in (tmp_path / "picks.jsonl").read_text().splitlines())
    assert main(["select", str(model_dir), "--pool", str(tmp_path / "missing.jsonl"), "--n", "4",
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "missing.jsonl does not exist" in capsys.readouterr().err
