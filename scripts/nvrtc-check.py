#!/usr/bin/env python3
"""Compile CUDA kernel files with NVRTC, as enamel's `cuda` backend does, and check what ptxas
reports for every kernel.

Each file is compiled to a cubin for every architecture asked for (default sm_61 and sm_90)
with no include path: the headers under kernels/common/ are handed to NVRTC in memory, named as
the kernels include them ("common/half.cuh"). With --ptxas-options=-v the NVRTC log carries
ptxas's registers, spills and shared memory per kernel; they are printed, and the run fails on

  * a compile error,
  * any register spill (spill stores or loads above 0 bytes),
  * static shared memory above 48 KB,
  * more registers than a budget written next to the kernel, as a comment line
    `// register-budget: N` in the comment block right above `extern "C" __global__`.

libnvrtc.so.12 is looked for in --nvrtc, $ENAMEL_NVRTC, the `nvidia-cuda-nvrtc-cu12` wheel
(on sys.path, or installed with `pip install --target DIR`, then pass DIR via --nvrtc-dir),
and the system library path. Without it the check says it was skipped and exits 0, unless
--require is given (CI).

Usage: scripts/nvrtc-check.py [--arch sm_61,sm_90] [--option=OPT ...] [--require] FILE.cu ...
"""

import argparse
import ctypes
import glob
import os
import re
import sys

STATIC_SHARED_LIMIT = 48 * 1024
DEFAULT_OPTIONS = ["--std=c++17"]
KERNEL_DECLARATION = re.compile(
    r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s*)?(\w+)\s*\('
)
SPILLS = re.compile(
    r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads"
)


def find_nvrtc(explicit, search_dirs):
    candidates = []
    if explicit:
        candidates.append(explicit)
    if os.environ.get("ENAMEL_NVRTC"):
        candidates.append(os.environ["ENAMEL_NVRTC"])
    for root in search_dirs + sys.path:
        candidates += glob.glob(os.path.join(root, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.12"))
    candidates += ["libnvrtc.so.12", "libnvrtc.so"]
    for path in candidates:
        try:
            return ctypes.CDLL(path), path
        except OSError:
            continue
    return None, None


class Nvrtc:
    def __init__(self, lib):
        self.lib = lib
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: {self.lib.nvrtcGetErrorString(status).decode()}")

    def compile(self, source, name, headers, options):
        """Returns (ok, log, cubin size in bytes)."""
        prog = ctypes.c_void_p()
        header_names = list(headers)
        n = len(header_names)
        sources = (ctypes.c_char_p * n)(*[headers[h].encode() for h in header_names])
        names = (ctypes.c_char_p * n)(*[h.encode() for h in header_names])
        self.check(
            self.lib.nvrtcCreateProgram(
                ctypes.byref(prog), source.encode(), name.encode(), n, sources, names
            ),
            "nvrtcCreateProgram",
        )
        try:
            opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
            status = self.lib.nvrtcCompileProgram(prog, len(options), opts)
            size = ctypes.c_size_t()
            self.check(self.lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "log size")
            log = ctypes.create_string_buffer(size.value)
            self.check(self.lib.nvrtcGetProgramLog(prog, log), "log")
            cubin = 0
            if status == 0:
                cubin_size = ctypes.c_size_t()
                self.check(self.lib.nvrtcGetCUBINSize(prog, ctypes.byref(cubin_size)), "cubin")
                cubin = cubin_size.value
            return status == 0, log.value.decode(errors="replace"), cubin
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(prog))


def load_headers(kernels_dir):
    headers = {}
    for path in sorted(glob.glob(os.path.join(kernels_dir, "common", "*.cuh"))):
        with open(path, encoding="utf-8") as f:
            headers[os.path.relpath(path, kernels_dir).replace(os.sep, "/")] = f.read()
    return headers


def register_budgets(source):
    """Kernel name -> register budget from `// register-budget: N` above the kernel."""
    budgets = {}
    lines = source.splitlines()
    for i, line in enumerate(lines):
        match = KERNEL_DECLARATION.search(line)
        if not match:
            continue
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("//"):
            budget = re.search(r"register-budget:\s*(\d+)", lines[j])
            if budget:
                budgets[match.group(1)] = int(budget.group(1))
            j -= 1
    return budgets


def parse_ptxas(log):
    """Kernel name -> {registers, spill_stores, spill_loads, smem, stack} from a ptxas -v log."""
    kernels = {}
    current = None
    for line in log.splitlines():
        entry = re.search(r"Compiling entry function '(\w+)'", line)
        if entry:
            current = kernels.setdefault(entry.group(1), {"registers": 0, "smem": 0})
            continue
        if current is None:
            continue
        frame = SPILLS.search(line)
        if frame:
            current["stack"] = int(frame.group(1))
            current["spill_stores"] = int(frame.group(2))
            current["spill_loads"] = int(frame.group(3))
        used = re.search(r"Used (\d+) registers", line)
        if used:
            current["registers"] = int(used.group(1))
            smem = re.search(r"(\d+) bytes smem", line)
            current["smem"] = int(smem.group(1)) if smem else 0
    return kernels


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="kernel .cu files")
    parser.add_argument("--arch", default="sm_61,sm_90", help="comma-separated sm_XY list")
    parser.add_argument("--option", action="append", default=[], help="extra NVRTC option")
    parser.add_argument(
        "--kernels-dir", help="folder holding common/ (default: the file's kernels/ root)"
    )
    parser.add_argument("--nvrtc", help="path of libnvrtc.so.12")
    parser.add_argument("--nvrtc-dir", action="append", default=[], help="a pip --target folder")
    parser.add_argument("--require", action="store_true", help="fail when NVRTC is missing")
    args = parser.parse_args()

    lib, lib_path = find_nvrtc(args.nvrtc, args.nvrtc_dir)
    if lib is None:
        print("nvrtc-check: skipped, libnvrtc.so.12 not found "
              "(pip install nvidia-cuda-nvrtc-cu12, or pass --nvrtc)")
        return 1 if args.require else 0
    nvrtc = Nvrtc(lib)
    print(f"nvrtc-check: using {lib_path}")

    failures = []
    for path in args.files:
        kernels_dir = args.kernels_dir
        if kernels_dir is None:
            parts = os.path.abspath(path).split(os.sep)
            kernels_dir = os.sep.join(parts[: len(parts) - parts[::-1].index("kernels")]) \
                if "kernels" in parts else os.path.dirname(path)
        headers = load_headers(kernels_dir)
        with open(path, encoding="utf-8") as f:
            source = f.read()
        budgets = register_budgets(source)

        for arch in [a.strip() for a in args.arch.split(",") if a.strip()]:
            options = DEFAULT_OPTIONS + args.option + [
                f"--gpu-architecture={arch}",
                "--ptxas-options=-v",
            ]
            ok, log, cubin = nvrtc.compile(source, os.path.basename(path), headers, options)
            if not ok:
                failures.append(f"{path} ({arch}): compile failed")
                print(f"{path} ({arch}): COMPILE FAILED\n{log}")
                continue
            kernels = parse_ptxas(log)
            print(f"{path} ({arch}): {len(kernels)} kernels, cubin {cubin} bytes")
            for name, k in sorted(kernels.items()):
                budget = budgets.get(name)
                verdict = []
                if k.get("spill_stores", 0) or k.get("spill_loads", 0):
                    verdict.append("SPILLS")
                if k["smem"] > STATIC_SHARED_LIMIT:
                    verdict.append(f"STATIC SHARED > {STATIC_SHARED_LIMIT}")
                if budget is not None and k["registers"] > budget:
                    verdict.append(f"OVER REGISTER BUDGET {budget}")
                print(
                    f"  {name:40s} {k['registers']:4d} registers"
                    f" (budget {budget if budget is not None else '-'}),"
                    f" {k.get('spill_stores', 0)}/{k.get('spill_loads', 0)} bytes spilled (st/ld),"
                    f" {k['smem']} bytes smem, {k.get('stack', 0)} bytes stack"
                    + (f"  <- {', '.join(verdict)}" if verdict else "")
                )
                if verdict:
                    failures.append(f"{path} ({arch}) {name}: {', '.join(verdict)}")

    if failures:
        print("nvrtc-check: FAILED")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print("nvrtc-check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
