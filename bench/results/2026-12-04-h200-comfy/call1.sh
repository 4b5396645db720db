#!/bin/bash
# Device call 1 (one H200): capture probe, ComfyUI bench under both allocators with cold starts, GPU tests.
# Run from the checkout root with .gpu13/ carried: pack/ (git archive of the branch), comfyui/ (ComfyUI 0.3.64
# source), whl/ (wheels the image lacks), shared/parity/ (tiny checkpoint + tokenizer data).
# Each stage gets at most its cap and never more than what is left of BUDGET seconds.
set -u
BUDGET=${BUDGET:-575}
left() { local cap=$1 rest=$((BUDGET - SECONDS)); [ $rest -lt $cap ] && cap=$rest; [ $cap -lt 5 ] && cap=5; echo $cap; }
cd .gpu13 || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site whl/*.whl || exit 1
export PYTHONPATH=/tmp/site ACESTEP_SHARED_DIR=$PWD/shared PYTHONUNBUFFERED=1
cd pack
R=$OUT
SPIECE=../shared/parity/tokenizer/umt5_standin_spiece.model
{ date -u; nvidia-smi; python3 -c "import torch, triton, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__, torch.cuda.get_device_name())"; cat ../PACK_COMMIT; } > $R/env_probe.txt 2>&1
for a in cudaMallocAsync native; do
  PYTORCH_CUDA_ALLOC_CONF=backend:$a timeout $(left 45) python3 -m bench.probe_capture >> $R/env_probe.txt 2>&1
  echo "probe $a rc=$? t=$SECONDS" >> $R/env_probe.txt
done
CHECK="batched;batched + CUDA graphs;batched + CUDA graphs + torch.compile;separate passes (original)"
COMMON="--comfyui-root ../comfyui --python python3 --base-dir /tmp/bc --spiece $SPIECE --durations 60,240 --steps 27 --repeats 2"
timeout $(left 210) python3 -m bench.bench_comfy $COMMON --accel "fastest (default)" --check-accel "$CHECK" --cold-start \
  --json $R/comfy_default.json > $R/comfy_default.log 2>&1
echo "bench_comfy default rc=$? t=$SECONDS" >> $R/comfy_default.log
for f in /tmp/bc/comfyui-main.log /tmp/bc/comfyui-cold.log /tmp/bc/comfyui.log; do echo "=== $f"; tail -c 50000 $f; done >> $R/comfy_default.log 2>&1
rm -f /tmp/bc/comfyui-main.log /tmp/bc/comfyui-cold.log
timeout $(left 210) python3 -m bench.bench_comfy $COMMON --accel "fastest (default)" --check-accel "$CHECK" --cold-start \
  --no-native --allocator caching --json $R/comfy_caching.json > $R/comfy_caching.log 2>&1
echo "bench_comfy caching rc=$? t=$SECONDS" >> $R/comfy_caching.log
for f in /tmp/bc/comfyui-main.log /tmp/bc/comfyui-cold.log /tmp/bc/comfyui.log; do echo "=== $f"; tail -c 50000 $f; done >> $R/comfy_caching.log 2>&1
timeout $(left 300) python3 -m pytest -q -p no:cacheprovider -m gpu tests/core/test_accel_gpu.py tests/core/test_accel.py -rA > $R/pytest_gpu.txt 2>&1
echo "pytest rc=$? t=$SECONDS" >> $R/pytest_gpu.txt
grep -h "^|" $R/comfy_default.log $R/comfy_caching.log > $R/summary.md
tail -5 $R/pytest_gpu.txt; cat $R/summary.md; grep -h "^{" $R/env_probe.txt
