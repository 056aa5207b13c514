#!/usr/bin/env bash
# The GPU figures in one run, for a machine that has JAX but not TensorFlow or Keras.
#
#   bash benchmarks/device.sh [run.py arguments]   (default: --cases 2 5 1)
#
# Keras and its pure-Python needs come as wheels in .whl/ (see the device notes:
# keras, namex, optree for the machine's Python). The JSON and RESULTS.md go to
# $OUT when it is set (the device tool brings them back), else benchmarks/results.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import keras" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 MPLBACKEND=Agg
output=${OUT:-benchmarks/results}
if [ -n "${OUT:-}" ]; then cp benchmarks/results/*.json "$OUT"/; fi  # merge with the rows there
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
if [ $# -eq 0 ]; then set -- --cases 2 5 1; fi
python3 benchmarks/run.py --output "$output" "$@"
