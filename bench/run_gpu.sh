#!/usr/bin/env bash
# The GPU figures of the speed issue in one call (ceilings, the paper configurations' steps
# with their profiles, a CIFAR-100 ResNet-20 epoch, the batched evaluation against the loop),
# each bench's JSON written to OUT (default results/bench_gpu). Uses the python3 on the PATH;
# where the machine lacks the project's pure-Python needs, set WHEELS to a folder of wheels.
#
#     bash bench/run_gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/bench_gpu}
mkdir -p "$OUT"
if [ -n "${WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
step() { python3 bench/bench_train_step.py --device cuda "$@"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv
python3 -m pytest -q -p no:cacheprovider tests/test_graphs.py 2>&1 | tail -5 || echo "tests/test_graphs.py FAILED"
python3 bench/bench_gpu_ceilings.py > "$OUT/gpu_ceilings.json"
step --configs permuted_mnist cifar100_resnet20 --profile > "$OUT/gpu_step.json"
step --configs permuted_mnist --task 9 > "$OUT/gpu_step_task9.json"
python3 bench/bench_eval_masks.py --experiment permuted_mnist --device cuda > "$OUT/gpu_eval_permuted_mnist.json"
python3 bench/bench_eval_masks.py --experiment cifar100_resnet20 --device cuda > "$OUT/gpu_eval_cifar100_resnet20.json"
python3 bench/gpu_summary.py "$OUT"
