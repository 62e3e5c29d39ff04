#!/usr/bin/env bash
# Runs the criterion benches with the libtorch baseline and prints the enamel/libtorch table
# (one row per benchmark and device; the bench binaries print it after criterion's report and
# write it to target/criterion/ratios-<bench>.md).
#
# Usage: scripts/bench-table.sh [TORCH_VENV] [-- criterion arguments, e.g. a group filter]
#   TORCH_VENV: a venv with torch 2.11 (default /work/torch-venv; see README "Benchmarks").
#   ENAMEL_BENCH_PATCH=small shrinks the whole-network shapes for a quick check.
set -euo pipefail

venv=/work/torch-venv
if [[ $# -gt 0 && $1 != "--" ]]; then
  venv=$1
  shift
fi
[[ ${1:-} == "--" ]] && shift

python=$venv/bin/python
if ! "$python" -c "import torch" 2>/dev/null; then
  echo "bench-table: no torch in $venv (python -m venv $venv && $venv/bin/pip install 'torch==2.11.*')" >&2
  exit 1
fi
torch_lib=$("$python" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")

export PATH=$venv/bin:$PATH
export LIBTORCH_USE_PYTORCH=1
export LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load: $(uptime)"
cargo bench --features libtorch --bench ops --bench train_step -- "$@"
echo
for table in target/criterion/ratios-ops.md target/criterion/ratios-train_step.md; do
  [[ -f $table ]] && cat "$table"
done
echo "load after: $(uptime)"
