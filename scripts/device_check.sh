#!/usr/bin/env bash
# The GPU checks, in one short run on a machine with an NVIDIA GPU whose Python already has
# torch, jax (CUDA), flax and optax: the device-parametrized tests (the "gpu" cases), the parity
# report on CPU and GPU, and the same in native precision (TF32) with the first-divergence view.
# The benchmark is separate: python -m frameworks bench --device gpu. Writes to $OUT (default runs/device).
set -uo pipefail
OUT="${OUT:-runs/device}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY="${PYTHON:-python3}"
{
  nvidia-smi -L
  "$PY" -c "import sys, torch, jax, flax, optax; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.is_available(), 'jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__)"
  echo "== device tests (gpu cases)"
  timeout "${TEST_TIMEOUT:-150}" "$PY" -m pytest tests/test_gradients.py tests/test_trajectories.py -q -p no:cacheprovider -k gpu -rs
  echo "== parity, precision highest"
  timeout 60 "$PY" -m frameworks parity --device cpu gpu --out "$OUT/parity"
  echo "== parity on the GPU, native precision"
  timeout 40 "$PY" -m frameworks parity --device gpu --dtype float32 --precision native --out "$OUT/parity_native"
  timeout 30 "$PY" -m frameworks parity --device gpu --dtype float32 --precision native --first-divergence torch/nn jax/flax
} 2>&1 | tee "$OUT/log.txt"
