#!/bin/bash
# Device call 1 (one H200): capture probe, GPU tests, ComfyUI bench under both allocators with cold starts.
# Run from the checkout root with .gpu13/ carried: pack/ (git archive of the branch), comfyui/ (ComfyUI 0.3.64
# source), whl/ (wheels the image lacks), shared/parity/ (tiny checkpoint + tokenizer data).
set -u
cd .gpu13 || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site whl/*.whl || exit 1
export PYTHONPATH=/tmp/site ACESTEP_SHARED_DIR=$PWD/shared PYTHONUNBUFFERED=1
cd pack
R=$OUT
SPIECE=../shared/parity/tokenizer/umt5_standin_spiece.model
{ date -u; nvidia-smi; python3 -c "import torch, triton, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__, torch.cuda.get_device_name())"; git log -1 --format=%H 2>/dev/null; cat ../PACK_COMMIT; } > $R/env_probe.txt 2>&1
for a in cudaMallocAsync native; do
  PYTORCH_CUDA_ALLOC_CONF=backend:$a timeout 120 python3 -m bench.probe_capture >> $R/env_probe.txt 2>&1
  echo "probe $a rc=$?" >> $R/env_probe.txt
done
timeout 420 python3 -m pytest -q -p no:cacheprovider -m gpu tests/core/test_accel_gpu.py tests/core/test_accel.py -rA > $R/pytest_gpu.txt 2>&1
echo "pytest rc=$?" >> $R/pytest_gpu.txt
CHECK="batched;batched + CUDA graphs;batched + CUDA graphs + torch.compile;separate passes (original)"
timeout 360 python3 -m bench.bench_comfy --comfyui-root ../comfyui --python python3 --base-dir /tmp/bc --spiece $SPIECE \
  --durations 60,240 --steps 27 --repeats 2 --accel "fastest (default)" --check-accel "$CHECK" --cold-start \
  --json $R/comfy_default.json > $R/comfy_default.log 2>&1
echo "bench_comfy default rc=$?" >> $R/comfy_default.log
for f in /tmp/bc/comfyui-main.log /tmp/bc/comfyui-cold.log /tmp/bc/comfyui.log; do echo "=== $f"; tail -c 60000 $f; done >> $R/comfy_default.log 2>&1
timeout 330 python3 -m bench.bench_comfy --comfyui-root ../comfyui --python python3 --base-dir /tmp/bc --spiece $SPIECE \
  --durations 60,240 --steps 27 --repeats 2 --accel "fastest (default)" --check-accel "$CHECK" --cold-start --no-native \
  --allocator caching --json $R/comfy_caching.json > $R/comfy_caching.log 2>&1
echo "bench_comfy caching rc=$?" >> $R/comfy_caching.log
for f in /tmp/bc/comfyui-main.log /tmp/bc/comfyui-cold.log /tmp/bc/comfyui.log; do echo "=== $f"; tail -c 60000 $f; done >> $R/comfy_caching.log 2>&1
grep -h "^|" $R/comfy_default.log $R/comfy_caching.log > $R/summary.md
tail -5 $R/pytest_gpu.txt; cat $R/summary.md
