"""Shared helpers of the PyTorch references: CUDA-event timing and JSON lines.

Every measurement is one JSON line on stdout with the suite, device name,
torch/CUDA versions and date, so `bench/compare.ts` can read a file made with
`python3 bench/reference/<suite>.py > bench/results/torch-<suite>.jsonl`.
"""

import argparse
import datetime
import json
import platform
import statistics

import torch


def parse_args(description, **extra):
    """--reps/--warmup (and suite options given as name=(type, default, help))."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--reps", type=int, default=10, help="timed repetitions (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed repetitions first")
    for name, (kind, default, help_text) in extra.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default, help=help_text)
    return p.parse_args()


def environment():
    """Where the measurement ran."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }


def time_cuda(fn, reps, warmup):
    """Median milliseconds of fn() between CUDA events, after warmup calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end))
    return statistics.median(samples)


def emit(suite, **fields):
    """Prints one measurement as a JSON line."""
    print(json.dumps({"suite": suite, "framework": "pytorch", **environment(), **fields}), flush=True)


def require_cuda():
    if not torch.cuda.is_available():
        raise SystemExit("these references time CUDA kernels: no CUDA device is visible to torch")
