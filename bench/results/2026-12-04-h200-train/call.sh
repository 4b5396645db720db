#!/usr/bin/env bash
# One device call (one H200, <= 570 s): our training step (bench_train), the original trainer's step
# (bench_train_original) and the REPA teachers (bench_teachers), all at 240 s, JSON + logs into $OUT (7 files),
# then the targets table (bench.train_targets) on stdout.
# Needs the ignored folder .trainbench/ (bash bench/stage_trainbench.sh MIRROR) carried: run(carry=[".trainbench"],
# command="bash bench/results/2026-12-04-h200-train/call.sh"). Each benchmark has a --time-budget (it skips the
# cases that would end later) and a hard timeout above it: 10 + 5 + 265 + 118 + 40 s at most.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
commit=$(cat .trainbench/COMMIT 2>/dev/null || echo unknown)

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .trainbench/whl/*.whl || exit 1
{
    nvidia-smi
    python3 -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda,
"gpus", torch.cuda.device_count())'
    PYTHONPATH=/tmp/site python3 -c 'import diffusers, transformers, peft, pytorch_lightning as pl
print("diffusers", diffusers.__version__, "transformers", transformers.__version__, "peft", peft.__version__,
      "pytorch_lightning", pl.__version__)'
    echo "ours: $commit; original: $(cat .trainbench/orig/REVISION 2>/dev/null)"
} 2>&1 | tee "$OUT/env.txt"

# ours: the image's packages only (no PYTHONPATH)
timeout 265 python3 -m bench.bench_train --device cuda --seconds 240 --time-budget 250 --commit "$commit" \
    --json "$OUT/train.json" 2>&1 | tee "$OUT/train.log"
# the original trainer, with the carried wheels
PYTHONPATH=/tmp/site timeout 118 python3 bench/bench_train_original.py --ace-step-root .trainbench/orig \
    --device cuda --seconds 240 --ranks 256,64 --time-budget 105 --commit "$commit" \
    --json "$OUT/train_original.json" 2>&1 | tee "$OUT/train_original.log"
timeout 40 python3 -m bench.bench_teachers --device cuda --seconds 240 --precisions fp32,bf16 --max-chunks all,8 \
    --repeats 3 --json "$OUT/teachers.json" 2>&1 | tee "$OUT/teachers.log"
ls -la "$OUT"
python3 -m bench.train_targets "$OUT/train.json" "$OUT/train_original.json"  # the targets, on stdout
