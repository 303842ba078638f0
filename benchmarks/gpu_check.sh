#!/usr/bin/env bash
# One prepared GPU check of the Triton linear-RNN path (issue 15 item 2), sized for a session's
# device time (about 15 min in all): the step limits add up to under 8 minutes.
#
# With the device tool, from the repository root:
#     run(command="bash benchmarks/gpu_check.sh", timeout_s=540)
# then give_back unless you rerun at once. The device image has python3 with CUDA PyTorch,
# Triton, pytest, einops, typer and rich (everything deepalpha.models and these tests import);
# deepalpha itself runs from the checkout (PYTHONPATH), nothing is installed. The whole output
# also goes to $OUT/gpu_check.log when $OUT is set (the device tool sets it).
#
# Steps (each under its own time limit; a failing step does not stop the later ones, the exit
# status is that of the first failure):
#   1. nvidia-smi, python / torch / triton versions
#   2. pytest -x -q tests/test_models_scan_triton.py tests/test_models_registry.py
#   3. the scan alone, forward + backward: Triton kernels vs the per-step torch loop it replaces
#   4. python benchmarks/bench_models.py --device cuda --quick --skip-scans

set -u
cd "$(dirname "$0")/.."
if [ -n "${OUT:-}" ]; then
    exec > >(tee "$OUT/gpu_check.log") 2>&1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
status=0
step() {  # step SECONDS TITLE COMMAND...
    local limit=$1 title=$2
    shift 2
    echo
    echo "=== $title ($(date +%T), limit ${limit}s)"
    local start=$SECONDS
    timeout "$limit" "$@"
    local rc=$?
    echo "=== $title: exit $rc after $((SECONDS - start))s"
    [ "$status" -eq 0 ] && status=$rc
}

step 30 "device and versions" bash -c "nvidia-smi; $PY - <<'EOF'
import sys, torch
print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda,
      '| device', torch.cuda.get_device_name() if torch.cuda.is_available() else None)
try:
    import triton
    print('triton', triton.__version__)
except ImportError as e:
    print('triton missing:', e)
EOF"

step 200 "pytest" "$PY" -m pytest -x -q -rs tests/test_models_scan_triton.py tests/test_models_registry.py

step 60 "scan alone: Triton vs per-step torch loop" "$PY" - <<'EOF'
import torch
from deepalpha.models.scan import lin_rnn_packed
from deepalpha.models.scan_triton import available, lin_rnn_triton

def timed(fn, z, reps=20):
    for _ in range(3):
        fn(z).sum().backward()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn(z).sum().backward()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps

for t, n, hd in [(60, 3000, 64), (150, 3000, 64), (60, 5000, 56)]:
    z = torch.randn(t, n, 2 * hd, device="cuda").requires_grad_()
    assert available(z)
    err = (lin_rnn_triton(z) - lin_rnn_packed(z)).abs().max().item()
    tri, loop = timed(lin_rnn_triton, z), timed(lin_rnn_packed, z)
    print(f"t={t} n={n} h={hd}: triton {tri:.3f} ms, torch loop {loop:.3f} ms "
          f"({loop / tri:.1f}x), max |diff| {err:.1e}  (forward + backward)")
EOF

step 180 "bench_models --device cuda --quick --skip-scans" \
    "$PY" benchmarks/bench_models.py --device cuda --quick --skip-scans

echo
echo "gpu_check: exit $status"
exit "$status"
