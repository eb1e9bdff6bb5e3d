"""Cohen's kappa per label between the corpus's first annotation and the blind second one.

Sentences are identified as "batch:n", the n-th sentence of a batch. The first labels are
read from the corpus, except for adjudicated sentences, whose first labels (before
adjudication) are kept in data/annotation/adjudication.jsonl.
Usage: python scripts/agreement.py
"""
import json
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

LABELS = ["martyrdom", "heroism", "triumph", "loss"]
ANN = Path("data/annotation")


def main() -> None:
    corpus, position = {}, {}
    for split in ("train", "dev", "test"):
        for line in Path(f"data/corpus/{split}.jsonl").read_text().splitlines():
            record = json.loads(line)
            position[record["batch"]] = position.get(record["batch"], 0) + 1
            corpus[f"{record['batch']}:{position[record['batch']]}"] = record["labels"]
    adjudicated = {r["id"]: r for r in map(json.loads, (ANN / "adjudication.jsonl").read_text().splitlines())}
    second = {r["id"]: r["labels"] for r in map(json.loads, (ANN / "second_pass.jsonl").read_text().splitlines())}
    ids = list(second)
    first = {i: adjudicated[i]["first"] if i in adjudicated else corpus[i] for i in ids}
    print(f"{len(ids)} sentences double-annotated; {len(adjudicated)} disagreed on at least one label\n")
    print("| label | kappa | first: positives | second: positives | disagreements |\n|---|---|---|---|---|")
    for label in LABELS + ["none"]:
        a = [(label in first[i]) if label != "none" else not first[i] for i in ids]
        b = [(label in second[i]) if label != "none" else not second[i] for i in ids]
        print(f"| {label} | {cohen_kappa_score(a, b):.3f} | {sum(a)} | {sum(b)} | {sum(x != y for x, y in zip(a, b))} |")
    kept = sum(sorted(r["adjudicated"]) == sorted(r["first"]) for r in adjudicated.values())
    print(f"\nAdjudication kept the first labels in {kept} of {len(adjudicated)} cases, "
          f"the second in {sum(sorted(r['adjudicated']) == sorted(r['second']) for r in adjudicated.values())}.")


if __name__ == "__main__":
    main()
