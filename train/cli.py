"""The `framing` command: train, evaluate, predict."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from infer.errors import FramingInputError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return args.func(args)
    except FramingInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framing", description="Frame classification for state-media text.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="fine-tune from a YAML config, tune thresholds, evaluate")
    p.add_argument("config", help="YAML config, e.g. configs/default.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set training.epochs=2 (repeatable)")
    p.add_argument("--output", help="run folder (overrides output.dir)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run folder")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("adapt", help="adapt the backbone to an unlabelled corpus (the config's adapt: section)")
    p.add_argument("config", help="YAML config with an adapt: section")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser("evaluate", help="evaluate a model folder on labelled files and write a report")
    p.add_argument("model_dir")
    p.add_argument("data", nargs="+", help="labelled JSONL/CSV/Parquet files")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--by", action="append", default=[], metavar="FIELD", help="also report per value of FIELD")
    p.add_argument("--compare", metavar="OTHER_MODEL_DIR", help="paired bootstrap test against another model")
    p.add_argument("--no-baselines", action="store_true", help="skip the TF-IDF, lexicon and zero-shot baselines")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="label every record of a corpus file, streaming, resumable")
    p.add_argument("model_dir")
    p.add_argument("--input", required=True, help="corpus .jsonl, .csv, .parquet or .txt (one text per line)")
    p.add_argument("--output", required=True, help="output .jsonl or .parquet")
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default=None)
    p.add_argument("--articles", action="store_true", help="records are articles: split into sentences, "
                   "write per-sentence rows and one profile row per article")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16", "int8"],
                   help="auto = bf16 on CPUs with native bf16 and on GPUs, else fp32")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-tokens", type=int, default=None,
                   help="padded tokens per batch (default 2048 on CPU, 65536 on GPU)")
    p.add_argument("--chunk-size", type=int, default=2048, help="records per durable output chunk")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--on-bad", choices=["skip", "fail"], default="skip",
                   help="a record with missing/empty/non-string text: write an error row (skip) or stop (fail)")
    p.add_argument("--no-text", action="store_true", help="write ids and scores only, not the input fields")
    p.add_argument("--html", metavar="FILE", help="also write a highlighted HTML view of the first records")
    p.add_argument("--html-limit", type=int, default=200, help="records shown in the HTML view (default 200)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice, usually one per physical core)")
    p.set_defaults(func=cmd_predict)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .pipeline import train

    overrides = list(args.overrides) + ([f"output.dir={args.output}"] if args.output else [])
    summary = train(load_config(args.config, overrides), resume=args.resume)
    if summary:
        print(json.dumps(summary, indent=2))
        print(f"\nModel folder: {summary['model_dir']}\nReports:      {summary['reports_dir']}")
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    from .adapt import adapt
    from .config import load_config

    info = adapt(load_config(args.config, args.overrides))
    print(json.dumps(info, indent=2))
    print(f"\nAdapted backbone: {info['backbone_dir']}  (set model.backbone to it)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    figures = evaluate(args.model_dir, args.data, args.out, by=args.by, compare=args.compare,
                       baselines=not args.no_baselines, bootstrap=args.bootstrap, seed=args.seed)
    for name, m in figures.items():
        lo, hi = m["macro_f1_ci"]
        print(f"{name}: macro-F1 {m['macro_f1']:.3f} [{lo:.3f}, {hi:.3f}], micro-F1 {m['micro_f1']:.3f}")
    print(f"Report: {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from infer import FramingClassifier
    from infer.corpus import PredictOptions, predict_file, write_html

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    classifier = FramingClassifier.from_pretrained(args.model_dir, device=args.device, precision=args.precision,
                                                   batch_tokens=args.batch_tokens)
    opts = PredictOptions(text_field=args.text_field, id_field=args.id_field, articles=args.articles,
                          chunk_size=args.chunk_size, resume=args.resume, on_bad=args.on_bad,
                          keep_text=not args.no_text)
    summary = predict_file(classifier, args.input, args.output, opts)
    print(f"{summary.records} records, {summary.scored} scored, {summary.bad} bad -> {summary.output}")
    if args.html:
        shown = write_html(classifier, args.input, args.html, args.text_field, args.html_limit)
        print(f"highlighted view of {shown} record(s) -> {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
