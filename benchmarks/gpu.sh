#!/usr/bin/env bash
# The GPU figures in one run, under 8 minutes on one H100:
#   1. check the Python: a CUDA build of torch, and this project importable;
#   2. train the default job with the GPU settings (configs/gpu.yaml), timing the fit;
#   3. time our classifier in fp32, fp16 and bf16 against transformers.pipeline on 20,000 real
#      sentences (benchmarks/throughput.py --device cuda), with peak GPU memory.
# Everything it reports goes to $OUT (default ./gpu-out): env.txt, train.log, the run's reports,
# throughput.txt, throughput.json and summary.json. The trained run itself (weights, checkpoints)
# stays in $RUN_DIR, outside $OUT, as it is too big to carry back.
#
#   bash benchmarks/gpu.sh                       # on the GPU machine, from any folder
#   SETUP=1 bash benchmarks/gpu.sh               # first build .venv-gpu (needs PyPI; see below)
#
# Which Python: $PYTHON, else .venv/bin/python. The device machines reach no network, so this
# script installs nothing unless SETUP=1. Note that the .venv that `make setup` builds on this
# project's CPU machines holds a CPU-only torch (2.13.0+cpu): step 1 stops with a clear message
# then. SETUP=1 builds .venv-gpu with `make setup VENV=.venv-gpu` and PyPI's torch, which is a
# CUDA build on x86 Linux; that needs PyPI, so run it once where the network is reachable.
#
# Knobs, for a dry run of the wiring on CPU with a small model: DEVICE (cuda), N (20000), INPUT
# (../shared/framing/unlabeled_real.jsonl, else the project's corpus), CONFIG (configs/gpu.yaml),
# TRAIN_SET (extra KEY=VALUE overrides, space separated), MODEL (skip training, time this folder),
# REPEATS (3), TRAIN_TIMEOUT (240) and BENCH_TIMEOUT (210) seconds: together under 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-./gpu-out}
DEVICE=${DEVICE:-cuda}
N=${N:-20000}
INPUT=${INPUT:-../shared/framing/unlabeled_real.jsonl}
CONFIG=${CONFIG:-configs/gpu.yaml}
RUN_DIR=${RUN_DIR:-runs/gpu-timing}
MODEL=${MODEL:-}
mkdir -p "$OUT"

if [ "${SETUP:-0}" = 1 ]; then
    make setup VENV=.venv-gpu TORCH="${TORCH:-torch==2.13.0}"
    PYTHON=${PYTHON:-.venv-gpu/bin/python}
fi
PYTHON=${PYTHON:-.venv/bin/python}

echo "== 1/3 environment ($PYTHON, device $DEVICE)"
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } \
    > "$OUT/env.txt" 2>&1 || true
DEVICE=$DEVICE "$PYTHON" - >> "$OUT/env.txt" <<'PY'
import os, sys
import torch, transformers
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"transformers {transformers.__version__}")
if os.environ["DEVICE"] == "cuda" and not torch.cuda.is_available():
    sys.exit(f"error: torch {torch.__version__} sees no CUDA GPU. The CPU machines' .venv has a CPU-only "
             "torch: set PYTHON to a Python with a CUDA torch, or run once with SETUP=1 where PyPI is reachable.")
if torch.cuda.is_available():
    print(f"GPU {torch.cuda.get_device_name()}, bf16 supported: {torch.cuda.is_bf16_supported()}")
PY
cat "$OUT/env.txt"

if [ -z "$MODEL" ]; then
    echo "== 2/3 train $CONFIG into $RUN_DIR"
    sets=(--set output.overwrite=true)
    for kv in ${TRAIN_SET:-}; do sets+=(--set "$kv"); done
    started=$SECONDS
    timeout "${TRAIN_TIMEOUT:-240}" "$PYTHON" -m train.cli train "$CONFIG" --output "$RUN_DIR" "${sets[@]}" \
        2>&1 | tee "$OUT/train.log"
    echo "train wall-clock: $((SECONDS - started)) s" | tee -a "$OUT/train.log"
    rm -rf "$OUT/reports" && cp -r "$RUN_DIR/reports" "$OUT/reports"
    cp "$RUN_DIR/model/framing.json" "$OUT/framing.json"
    MODEL=$RUN_DIR/model
fi

echo "== 3/3 throughput on $DEVICE: $N sentences"
input_args=()
if [ -f "$INPUT" ]; then input_args=(--input "$INPUT"); else echo "($INPUT absent: the project's corpus is used)"; fi
timeout "${BENCH_TIMEOUT:-210}" "$PYTHON" benchmarks/throughput.py --model "$MODEL" --device "$DEVICE" --n "$N" \
    --repeats "${REPEATS:-3}" "${input_args[@]}" | tee "$OUT/throughput.txt"
tail -n 1 "$OUT/throughput.txt" > "$OUT/throughput.json"

"$PYTHON" - "$OUT" <<'PY'
"""summary.json: the fit's seconds (from the log's stage timestamps and the Trainer's own
train_runtime) beside the throughput figures."""
import json, re, sys
from pathlib import Path

out = Path(sys.argv[1])
log = (out / "train.log").read_text() if (out / "train.log").is_file() else ""
stamps = {stage: clock for clock, stage in re.findall(r"^(\d\d:\d\d:\d\d) INFO train\.pipeline: stage (\d)/5", log, re.M)}
seconds = lambda clock: sum(int(part) * 60 ** (2 - i) for i, part in enumerate(clock.split(":")))
fit_s = (seconds(stamps["5"]) - seconds(stamps["3"])) % 86400 if {"3", "5"} <= set(stamps) else None
runtime = re.findall(r"'train_runtime': '?([\d.]+)", log)
summary = {"fit_s_stage_3_to_5": fit_s, "trainer_train_runtime_s": float(runtime[-1]) if runtime else None,
           "throughput": json.loads((out / "throughput.json").read_text())}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({k: v for k, v in summary.items() if k != "throughput"}))
PY
echo "done: $OUT"
