"""What a training step costs, lever by lever: fp32 against bf16 autocast, and batches drawn at
random against batches grouped by length (both pad dynamically), on the default backbone and
the corpus's own sentences.

Usage: python benchmarks/train_step.py [--steps 10] [--rounds 3] [--batch-size 16] [--threads N]

The variants run interleaved, round by round, in one process, so a load that comes and goes on
the machine hits them alike; each prints seconds per optimizer step (median over rounds) and its
ratio to fp32 with random batches, the baseline of `make run`. Padded tokens per step are
printed too: they are what length grouping saves. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from train.backbone import resolve_backbone  # noqa: E402
from train.fit import load_backbone_model  # noqa: E402

LABELS = ["martyrdom", "heroism", "triumph", "loss"]
VARIANTS = {  # name: (bf16 autocast, length-grouped batches)
    "fp32/random": (False, False),
    "fp32/grouped": (False, True),
    "bf16/random": (True, False),
    "bf16/grouped": (True, True),
}


def corpus_texts() -> list[str]:
    path = ROOT / "data" / "corpus" / "train.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def batch_orders(lengths: np.ndarray, batch_size: int, grouped: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches, or Trainer-style length grouping: shuffle, cut into mega-batches of 50
    batches, sort each by length, then shuffle the batches."""
    order = rng.permutation(len(lengths))
    if grouped:
        mega = batch_size * 50
        order = np.concatenate([chunk[np.argsort(-lengths[chunk], kind="stable")]
                                for chunk in np.array_split(order, max(1, len(order) // mega))])
    batches = [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    if grouped:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def run_steps(model, optimiser, ids: list[list[int]], batches: list[np.ndarray], bf16: bool,
              pad_id: int) -> tuple[float, int]:
    """Seconds per step and padded tokens per step over the given batches."""
    padded = 0
    start = time.perf_counter()
    for batch in batches:
        width = max(len(ids[i]) for i in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, i in enumerate(batch):
            input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
            mask[row, :len(ids[i])] = 1
        labels = torch.randint(0, 2, (len(batch), len(LABELS))).float()
        context = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with context:
            logits = model(input_ids=input_ids, attention_mask=mask).logits
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        padded += input_ids.numel()
    return (time.perf_counter() - start) / len(batches), padded // len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, model = load_backbone_model(resolve_backbone("sentence-transformers/all-MiniLM-L6-v2"), LABELS)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-6)  # tiny steps: the weights barely move between variants
    ids = tokenizer(corpus_texts(), truncation=True, max_length=128)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    rng = np.random.default_rng(0)
    seconds = {name: [] for name in VARIANTS}
    tokens = {name: [] for name in VARIANTS}
    run_steps(model, optimiser, ids, batch_orders(lengths, args.batch_size, False, rng)[:2], False,
              tokenizer.pad_token_id)  # warm-up: first-call allocations and oneDNN primitive creation
    for r in range(args.rounds):
        for name, (bf16, grouped) in VARIANTS.items():
            batches = batch_orders(lengths, args.batch_size, grouped, rng)[:args.steps]
            step_s, padded = run_steps(model, optimiser, ids, batches, bf16, tokenizer.pad_token_id)
            seconds[name].append(step_s)
            tokens[name].append(padded)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {seconds[n][-1]:.3f} s" for n in VARIANTS),
              file=sys.stderr)
    base = statistics.median(seconds["fp32/random"])
    results = {}
    print(f"{'variant':14s} {'s/step':>8s} {'x fp32/random':>14s} {'padded tokens/step':>19s}")
    for name in VARIANTS:
        med = statistics.median(seconds[name])
        results[name] = {"s_per_step": round(med, 4), "speedup": round(base / med, 3),
                         "padded_tokens_per_step": int(statistics.mean(tokens[name]))}
        print(f"{name:14s} {med:8.3f} {base / med:14.2f} {results[name]['padded_tokens_per_step']:19d}")
    print(json.dumps({"threads": torch.get_num_threads(), "batch_size": args.batch_size, "steps": args.steps,
                      "rounds": args.rounds, "mean_tokens": float(lengths.mean()), "results": results}))


if __name__ == "__main__":
    main()
