#!/bin/bash
# Device call 2 (one H200): final ComfyUI bench (ComfyUI's default allocator, cold start), CLI default vs the
# original in one call, GPU tests, full-size fidelity. Same carried layout as call1.sh.
set -u
BUDGET=${BUDGET:-430}
left() { local cap=$1 rest=$((BUDGET - SECONDS)); [ $rest -lt $cap ] && cap=$rest; [ $cap -lt 5 ] && cap=5; echo $cap; }
cd .gpu13 || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site whl/*.whl || exit 1
export PYTHONPATH=/tmp/site ACESTEP_SHARED_DIR=$PWD/shared PYTHONUNBUFFERED=1
cd pack
R=$OUT
SPIECE=../shared/parity/tokenizer/umt5_standin_spiece.model
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,temperature.gpu,clocks.max.sm --format=csv; cat ../PACK_COMMIT; } > $R/env.txt 2>&1
TORCH_LOGS=recompiles timeout $(left 195) python3 -m bench.bench_comfy --comfyui-root ../comfyui --python python3 \
  --base-dir /tmp/bc --spiece $SPIECE --durations 60,240 --steps 27 --repeats 2 \
  --accel "fastest (default);batched + torch.compile" --cold-start --json $R/comfy_default.json > $R/comfy.log 2>&1
echo "bench_comfy rc=$? t=$SECONDS" >> $R/comfy.log
for f in /tmp/bc/comfyui-main.log /tmp/bc/comfyui-cold.log; do echo "=== $f"; grep -v "^\s*$" $f | tail -c 40000; done >> $R/comfy.log 2>&1
timeout $(left 60) python3 bench/bench_original.py --ace-step-root ../orig --device cuda --durations 60,240 --steps 27 \
  --batch 1 --guidance app --repeats 2 --json $R/orig.json > $R/cli.log 2>&1
echo "bench_original rc=$? t=$SECONDS" >> $R/cli.log
timeout $(left 85) python3 -m bench.bench_generate --device cuda --durations 60,240 --steps 27 --batch 1 --guidance app \
  --accel default,fastest --repeats 2 --json $R/ours.json >> $R/cli.log 2>&1
echo "bench_generate rc=$? t=$SECONDS" >> $R/cli.log
timeout $(left 100) python3 -m pytest -q -p no:cacheprovider -m gpu tests/core/test_accel_gpu.py -rA > $R/pytest_gpu.txt 2>&1
echo "pytest rc=$? t=$SECONDS" >> $R/pytest_gpu.txt
timeout $(left 70) python3 -m bench.fidelity_accel --frames 646 --json $R/fidelity.json >> $R/cli.log 2>&1
echo "fidelity rc=$? t=$SECONDS" >> $R/cli.log
{ grep -h "^|" $R/comfy.log; grep -h "^|\|^GPU\|^allocator" $R/cli.log; tail -3 $R/pytest_gpu.txt; } > $R/summary.md
cat $R/summary.md
