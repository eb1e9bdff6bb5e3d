"""Throughput of our batch engine against `transformers.pipeline("text-classification")`,
on the same model and the same sentences, in one process.

Usage: python benchmarks/throughput.py --model runs/dev-real/model [--n 2000] [--device cpu|cuda]
                                      [--input sentences.jsonl]

Sentences come from --input (a .jsonl/.csv/.parquet/.txt file with a "text" field) or else
the project's corpus (its real length mix), repeated to N. Prints sentences/s per system,
the ratio to the pipeline, label agreement with our fp32 mode, macro-F1 on dev_real where
present, peak RSS, and on GPU peak GPU memory; then the path each mode ran (fast path,
packed weights). The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infer import FramingClassifier  # noqa: E402
from infer.engine import Runtime  # noqa: E402
from infer.model_folder import read_meta  # noqa: E402
from infer.readers import iter_records  # noqa: E402
from train.metrics import binarise, macro_f1  # noqa: E402


def file_sentences(path: str, n: int) -> list[str]:
    """The first N texts of a record file, repeated to N if it holds fewer."""
    texts = []
    for _, record in iter_records(path):
        if isinstance(record.get("text"), str) and record["text"].strip():
            texts.append(record["text"])
        if len(texts) == n:
            break
    if not texts:
        sys.exit(f"error: {path} holds no records with a non-empty 'text' field")
    return [texts[i % len(texts)] for i in range(n)]


def corpus_sentences(n: int) -> list[str]:
    texts = []
    for split in ("test", "dev", "train"):
        path = ROOT / "data" / "corpus" / f"{split}.jsonl"
        if path.is_file():
            texts += [json.loads(l)["text"] for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    if not texts:
        texts = [json.loads(l)["text"] for l in (ROOT / "data/examples/train.jsonl").read_text().splitlines()]
    return [texts[i % len(texts)] for i in range(n)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_gpu_mb() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def start_stage() -> None:
    """Free what the last system left behind and restart the peak-RSS and GPU-memory counts, so
    that each system's peak is what a process running it alone would need (plus the interpreter
    and the sentences). glibc keeps freed heap pages mapped unless asked to return them, and
    Linux resets the peak on writing 5 to /proc/self/clear_refs; elsewhere, peaks add up."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def time_pipeline(model_dir: str, texts: list[str], device: str, labels: list[str],
                  repeats: int) -> tuple[float, np.ndarray]:
    from transformers import pipeline

    pipe = pipeline("text-classification", model=model_dir, device=device, batch_size=64, top_k=None,
                    function_to_apply="sigmoid", truncation=True)
    pipe(texts[:64])  # warm-up
    elapsed, out = best_of(repeats, lambda: pipe(texts))
    probs = np.array([[{d["label"]: d["score"] for d in row}[l] for l in labels] for row in out], dtype=np.float32)
    return elapsed, probs


def time_engine(clf: FramingClassifier, texts: list[str], repeats: int) -> tuple[float, np.ndarray]:
    clf.predict_proba(texts[:64])  # warm-up

    def run():
        probs = clf.predict_proba(texts)
        if clf.device.type == "cuda":
            torch.cuda.synchronize()
        return probs

    return best_of(repeats, run)


def best_of(repeats: int, run):
    """The fastest of `repeats` timed runs, and its result. Every system gets the same number of
    tries: on a shared machine the minimum is the least noisy estimate of its speed."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def dev_real_f1(clf: FramingClassifier, path: Path) -> float | None:
    if not path.is_file():
        return None
    rows = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    y = np.array([[l in r["labels"] for l in clf.labels] for r in rows], dtype=np.int8)
    return macro_f1(y, binarise(clf.predict_proba([r["text"] for r in rows]), clf.thresholds))


COLUMNS = f"{'system':<12}{'sent/s':>10}{'x pipeline':>12}{'agree fp32':>12}{'dev_real F1':>13}{'peak RSS MB':>13}"


def row(name: str, entry: dict) -> str:
    agree, f1, gpu = (entry.get(k) for k in ("label_agreement_fp32", "dev_real_macro_f1", "peak_gpu_mb"))
    return (f"{name:<12}{entry['sent_per_s']:>10.1f}{entry['ratio']:>12.2f}"
            f"{'' if agree is None else f'{agree:.4f}':>12}{'' if f1 is None else f'{f1:.4f}':>13}"
            f"{entry['peak_rss_mb']:>13.0f}" + ("" if gpu is None else f"{gpu:>14.0f}"))


def time_modes(args, texts: list[str], pipe_s: float, pipe_probs: np.ndarray) -> dict[str, dict]:
    """Our classifier in each precision mode, loaded one at a time, against the pipeline's time."""
    modes = ["fp32", "bf16", "int8"] if args.device == "cpu" else ["fp32", "fp16", "bf16"]
    results, fp32_labels = {}, None
    for mode in modes:
        start_stage()
        clf = FramingClassifier.from_pretrained(args.model, device=args.device, precision=mode,
                                                batch_tokens=args.batch_tokens)
        seconds, probs = time_engine(clf, texts, args.repeats)
        labels = probs >= clf.thresholds
        fp32_labels = labels if fp32_labels is None else fp32_labels
        entry = {"sent_per_s": args.n / seconds, "ratio": pipe_s / seconds,
                 "label_agreement_fp32": float((labels == fp32_labels).all(1).mean()),
                 "dev_real_macro_f1": dev_real_f1(clf, Path(args.dev_real)), "peak_rss_mb": peak_rss_mb(),
                 "peak_gpu_mb": peak_gpu_mb(), "runtime": dataclasses.asdict(clf.runtime)}
        if mode == "fp32":
            entry["max_abs_diff_vs_pipeline"] = float(np.abs(probs - pipe_probs).max())
        results[mode] = entry
        print(row(mode, entry))
        del clf
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--input", default=None, help="sentences to time (a \"text\" field per record); "
                        "default: the project's corpus")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-tokens", type=int, default=None, help="default: the engine's per-device default")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per system; the fastest counts")
    parser.add_argument("--dev-real", default=str(ROOT.parent / "shared/framing/dev_real.jsonl"))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"error: --device cuda, but this torch ({torch.__version__}) sees no CUDA GPU")
    texts = file_sentences(args.input, args.n) if args.input else corpus_sentences(args.n)
    from transformers import AutoTokenizer

    tokens = np.mean([len(ids) for ids in AutoTokenizer.from_pretrained(args.model)(texts[:2000])["input_ids"]])
    gpu = f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""
    print(f"device {args.device}{gpu}, torch {torch.__version__}, threads {torch.get_num_threads()}, {args.n} "
          f"sentences from {args.input or 'the corpus'}, best of {args.repeats}, "
          f"mean {np.mean([len(t.split()) for t in texts]):.1f} words / {tokens:.1f} tokens")
    start_stage()
    pipe_s, pipe_probs = time_pipeline(args.model, texts, args.device, read_meta(args.model).labels, args.repeats)
    results = {"pipeline": {"sent_per_s": args.n / pipe_s, "ratio": 1.0, "peak_rss_mb": peak_rss_mb(),
                            "peak_gpu_mb": peak_gpu_mb()}}
    print(COLUMNS + (f"{'peak GPU MB':>14}" if args.device == "cuda" else ""))
    print(row("pipeline", results["pipeline"]))
    results.update(time_modes(args, texts, pipe_s, pipe_probs))
    for mode, entry in results.items():
        if "runtime" in entry:
            print(f"{mode} ran on {Runtime(**entry['runtime']).describe()}")
    summary = {"device": args.device, "n": args.n, "input": args.input, "repeats": args.repeats,
               "mean_tokens": float(tokens), "threads": torch.get_num_threads(), "torch": torch.__version__,
               "peak_rss_mb": max(entry["peak_rss_mb"] for entry in results.values()), "results": results}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
