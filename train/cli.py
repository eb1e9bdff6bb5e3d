"""The `framing` command: train, evaluate, predict."""
from __future__ import annotations

import argparse
import json
import logging
import re
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


def int_at_least(minimum: int):
    """An argparse type for a count with a floor: `--chunk-size 0` once wrote an empty file and
    exited 0, and negative counts failed deep inside torch."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value
    return parse


positive_int, non_negative_int = int_at_least(1), int_at_least(0)


def device_name(text: str) -> str:
    """argparse type: auto, cpu, cuda or cuda:N, checked here rather than deep inside torch."""
    if re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N (N = a GPU index), got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framing", description="Frame classification for state-media text.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="fine-tune from a YAML config, tune thresholds, evaluate")
    p.add_argument("config", help="YAML config, e.g. configs/default.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set training.epochs=2 (repeatable)")
    p.add_argument("--output", help="run folder (overrides output.dir)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run folder")
    p.add_argument("--init-from", metavar="MODEL_DIR", help="start from this model folder's weights and tokenizer "
                   "instead of the backbone's (a cheap update, e.g. with --set training.epochs=1)")
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
    p.add_argument("--compare", metavar="OTHER_MODEL_DIR",
                   help="compare with another model: paired-bootstrap CI and permutation p of the difference")
    p.add_argument("--no-baselines", action="store_true", help="skip the TF-IDF, lexicon and zero-shot baselines")
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help="bootstrap seed (default: the training seed recorded in the model folder, else 42)")
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
    p.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-tokens", type=positive_int, default=None,
                   help="padded tokens per batch (default 2048 on CPU, 65536 on GPU)")
    p.add_argument("--chunk-size", type=positive_int, default=2048, help="records per durable output chunk")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--on-bad", choices=["skip", "fail"], default="skip",
                   help="a record with missing/empty/non-string text: write an error row (skip) or stop (fail)")
    p.add_argument("--no-text", action="store_true", help="write ids and scores only, not the input fields")
    p.add_argument("--html", metavar="FILE", help="also write a highlighted HTML view of the first records")
    p.add_argument("--html-limit", type=positive_int, default=200,
                   help="records shown in the HTML view (default 200)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for torch (default: torch's choice, usually one per physical core)")
    p.add_argument("--no-fast-path", dest="fast_path", action="store_const", const=False, default=None,
                   help="run the model's own forward instead of the [CLS]-only pass with packed weights")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: shards scored by actors on a Ray cluster (pip install '.[ray]')")
    p.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="with --engine ray: join this cluster (default: start Ray on this machine)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="with --engine ray: actors, each with one model copy and --threads CPUs (default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=None,
                   help="with --engine ray: GPUs per actor (default: 1 when the cluster has GPUs, else 0)")
    p.set_defaults(func=cmd_predict)

    add_labelling_commands(sub)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .pipeline import train

    overrides = list(args.overrides) + ([f"output.dir={args.output}"] if args.output else [])
    summary = train(load_config(args.config, overrides), resume=args.resume, init_from=args.init_from)
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
    from infer.corpus import PredictOptions, check_paths, predict_file, write_html

    # every path and option is checked before the model loads: a mistake found after the
    # scoring would cost all of it
    opts = PredictOptions(text_field=args.text_field, id_field=args.id_field, articles=args.articles,
                          chunk_size=args.chunk_size, resume=args.resume, on_bad=args.on_bad,
                          keep_text=not args.no_text)
    if args.engine == "ray":
        return _predict_on_ray(args, opts)
    check_paths(args.input, args.output, html=args.html)
    classifier = _load_classifier(args)
    summary = predict_file(classifier, args.input, args.output, opts)
    print(f"{summary.records} records, {summary.scored} scored, {summary.bad} bad -> {summary.output}")
    if args.html:
        shown = write_html(classifier, args.input, args.html, args.text_field, args.html_limit)
        print(f"highlighted view of {shown} record(s) -> {args.html}")
    return 0


def _predict_on_ray(args: argparse.Namespace, opts) -> int:
    from infer.ray_predict import RayCluster, predict_on_ray

    if args.html:
        raise FramingInputError("--html is written by --engine local only; run it on a sample of the corpus.")
    cluster = RayCluster(args.ray_address, args.workers, args.threads or 1, args.gpus_per_worker)
    load = dict(device=args.device, precision=args.precision, batch_tokens=args.batch_tokens, fast_path=args.fast_path)
    summary = predict_on_ray(args.model_dir, args.input, args.output, opts, cluster, load)
    print(f"{summary.records} records, {summary.scored} scored, {summary.bad} bad -> {summary.output}")
    return 0


def _load_classifier(args: argparse.Namespace):
    from infer import FramingClassifier

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return FramingClassifier.from_pretrained(args.model_dir, device=args.device, precision=args.precision,
                                             batch_tokens=args.batch_tokens, fast_path=args.fast_path)


def add_labelling_commands(sub) -> None:
    """`select` and `import-labels`: the analyst's labelling loop (docs/active-learning.md)."""
    p = sub.add_parser("select", help="pick the pool sentences worth labelling, with pre-labels, for annotation")
    p.add_argument("model_dir")
    p.add_argument("--pool", required=True, help="unlabelled sentences: .jsonl, .csv, .parquet or .txt")
    p.add_argument("--n", type=positive_int, required=True, help="how many sentences to pick")
    p.add_argument("--out", required=True, help="file to write (a labelling config is written beside some formats)")
    p.add_argument("--strategy", default="hybrid", choices=["hybrid", "uncertainty", "diversity", "random"],
                   help="hybrid (default): uncertain, spread out, rare labels first; see docs/active-learning.md")
    p.add_argument("--exclude", action="extend", nargs="+", default=[], metavar="FILE",
                   help="skip sentences of these files (already labelled, training data, dev, test)")
    p.add_argument("--format", choices=["label-studio", "argilla", "csv", "jsonl"], default=None,
                   help="default: csv for .csv, jsonl for .jsonl, else label-studio")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default="id", help="pool column with a sentence id (default: file:line)")
    p.add_argument("--device", type=device_name, default="auto")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("import-labels", help="read a Label Studio, Argilla or CSV export back as training data")
    p.add_argument("export", help="Label Studio JSON export, Argilla records JSON, or the filled-in CSV")
    p.add_argument("--out", required=True, help="training records, .jsonl")
    p.add_argument("--format", choices=["auto", "label-studio", "argilla", "csv"], default="auto")
    p.add_argument("--on-conflict", choices=["error", "skip"], default="error",
                   help="sentences labelled differently by several annotators: stop (error) or leave them out")
    p.add_argument("--labels", default=None, help="comma-separated label set (default: the four frames)")
    p.set_defaults(func=cmd_import_labels)


def cmd_select(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infer import FramingClassifier

    from .annotation import export_picks
    from .select import select

    fmt = args.format or {".csv": "csv", ".jsonl": "jsonl"}.get(Path(args.out).suffix.lower(), "label-studio")
    classifier = FramingClassifier.from_pretrained(args.model_dir, device=args.device)
    picks = select(classifier, args.pool, args.n, strategy=args.strategy, exclude=args.exclude, seed=args.seed,
                   text_field=args.text_field, id_field=args.id_field)
    written = export_picks(picks, args.out, fmt, classifier.labels, model_version=str(args.model_dir))
    print(f"{len(picks)} sentence(s) picked ({args.strategy}) -> {', '.join(map(str, written))}")
    return 0


def cmd_import_labels(args: argparse.Namespace) -> int:
    from .annotation import import_labels
    from .config import DEFAULT_LABELS

    labels = [l.strip() for l in args.labels.split(",") if l.strip()] if args.labels else DEFAULT_LABELS
    summary = import_labels(args.export, args.out, fmt=args.format, on_conflict=args.on_conflict, labels=labels)
    print(f"{summary.records} labelled sentence(s) -> {summary.out}; left out {summary.empty} unanswered, "
          f"{summary.skipped} skipped, {len(summary.conflicts)} in conflict")
    return 0


if __name__ == "__main__":
    sys.exit(main())
