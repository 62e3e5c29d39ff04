#!/usr/bin/env bash
# Runs enamel's GPU checks on a machine with an NVIDIA GPU and no Rust toolchain: the carried
# release binary's self-test (every op on cuda against cpu, f32 and f16, plus a training step
# of nets A and B) at the reference size, then `enamel bench --json` when the binary has it.
#
# Usage: scripts/gpu-check.sh [path/to/enamel] [nvrtc-dir]
#   path/to/enamel  the release binary (default: ./enamel, then target/release/enamel)
#   nvrtc-dir       a `pip install --target` folder of nvidia-cuda-nvrtc-cu12 (default:
#                   $ENAMEL_NVRTC_DIR, else ./nvrtc-cu12, installed there with pip if no
#                   libnvrtc.so.12 is found anywhere)
# Exit status: the self-test's (1 when any check failed).
set -uo pipefail

binary="${1:-}"
if [ -z "$binary" ]; then
    for candidate in ./enamel target/release/enamel; do
        [ -x "$candidate" ] && binary="$candidate" && break
    done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    echo "gpu-check: no enamel binary (give its path as the first argument)" >&2
    exit 2
fi

nvrtc_dir="${2:-${ENAMEL_NVRTC_DIR:-$PWD/nvrtc-cu12}}"
wheel_lib="$nvrtc_dir/nvidia/cuda_nvrtc/lib"
have_nvrtc() {
    [ -e "$wheel_lib/libnvrtc.so.12" ] && return 0
    [ -n "${ENAMEL_NVRTC:-}" ] && [ -e "$ENAMEL_NVRTC" ] && return 0
    ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so\.12'
}
if ! have_nvrtc; then
    echo "gpu-check: no libnvrtc.so.12; installing nvidia-cuda-nvrtc-cu12 into $nvrtc_dir"
    if ! python3 -m pip install --quiet --disable-pip-version-check --target "$nvrtc_dir" \
        'nvidia-cuda-nvrtc-cu12>=12.4,<13'; then
        echo "gpu-check: pip could not install it (offline?). Carry the folder from a machine" \
             "with network: pip install --target nvrtc-cu12 nvidia-cuda-nvrtc-cu12" >&2
        exit 2
    fi
fi
export ENAMEL_NVRTC_DIR="$nvrtc_dir"
export LD_LIBRARY_PATH="$wheel_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
    || echo "(nvidia-smi not available)"
echo "== enamel selftest --device cuda --size reference"
"$binary" selftest --device cuda --size reference
status=$?

if "$binary" bench --help >/dev/null 2>&1; then
    echo "== enamel bench --json"
    "$binary" bench --json || echo "gpu-check: bench failed (exit $?)"
else
    echo "== (this enamel has no bench subcommand; skipped)"
fi
exit "$status"
