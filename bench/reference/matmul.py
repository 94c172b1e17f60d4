"""x·Wᵀ at 4096³ and the transformer shapes, fp32 (TF32 off), tf32 and bf16.

Shapes are M×K×N with x [M, K] and W [N, K], as in bench/kernels.ts and
bench/peers/workloads.ts; 2·M·N·K FLOPs.
"""

import torch

from common import emit, parse_args, require_cuda, time_cuda

SHAPES = [(4096, 4096, 4096), (8192, 768, 2048), (8192, 2048, 768), (8192, 768, 32768)]
MODES = {"fp32": (torch.float32, False), "tf32": (torch.float32, True), "bf16": (torch.bfloat16, False)}


def main():
    args = parse_args(__doc__)
    require_cuda()
    for mode, (dtype, tf32) in MODES.items():
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        for m, k, n in SHAPES:
            x = torch.randn(m, k, device="cuda", dtype=dtype)
            w = torch.randn(n, k, device="cuda", dtype=dtype)
            ms = time_cuda(lambda: x @ w.t(), args.reps, args.warmup)
            emit("matmul", workload="matmul", shape=f"{m}×{k}×{n}", dtype=mode, ms=ms,
                 tflops=2 * m * n * k / (ms / 1e3) / 1e12)
            del x, w
    torch.backends.cuda.matmul.allow_tf32 = False


if __name__ == "__main__":
    main()
