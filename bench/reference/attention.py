"""Attention forward and backward: SDPA dense causal vs flex-attention with the
BlockRank mask, at 10, 30 and 100 documents of 160 tokens plus a 32-token
instruction and a 32-token query; 32 query heads × 128, 8 KV heads (GQA);
bf16 and fp32. The same FLOP convention as bench/attention.ts: visible
(query, key) pairs only, 4·D per pair and head forward, 10·D backward.
Backward time = (forward + backward) − forward.
"""

import torch
import torch.nn.functional as F

from common import emit, parse_args, require_cuda, time_cuda

HEADS, KV_HEADS, HEAD_DIM, DOC, INSTRUCTION, QUERY = 32, 8, 128, 160, 32, 32
PREFIX, LOCAL, GLOBAL = 0, 1, 2


def blockrank_layout(n):
    """Per-token block id and kind of [instruction][doc 1]…[doc n][query]."""
    block, kind = [0] * INSTRUCTION, [PREFIX] * INSTRUCTION
    for d in range(n):
        block += [d + 1] * DOC
        kind += [LOCAL] * DOC
    block += [n + 1] * QUERY
    kind += [GLOBAL] * QUERY
    return torch.tensor(block, device="cuda"), torch.tensor(kind, device="cuda")


def visible_pairs(layout, n):
    t = INSTRUCTION + n * DOC + QUERY
    if layout == "sdpa-causal":
        return t * (t + 1) // 2
    return (INSTRUCTION * (INSTRUCTION + 1) // 2 + n * (DOC * INSTRUCTION + DOC * (DOC + 1) // 2)
            + QUERY * (INSTRUCTION + n * DOC) + QUERY * (QUERY + 1) // 2)


def main():
    args = parse_args(__doc__, docs=(str, "10,30,100", "document counts"))
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    flex = torch.compile(flex_attention)
    counts = [int(x) for x in args.docs.split(",")]
    for dtype_name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        totals = {}
        for layout in ("sdpa-causal", "flex-blockrank"):
            for n in counts:
                t = INSTRUCTION + n * DOC + QUERY
                q = torch.randn(1, HEADS, t, HEAD_DIM, device="cuda", dtype=dtype, requires_grad=True)
                k = torch.randn(1, KV_HEADS, t, HEAD_DIM, device="cuda", dtype=dtype, requires_grad=True)
                v = torch.randn(1, KV_HEADS, t, HEAD_DIM, device="cuda", dtype=dtype, requires_grad=True)
                d_out = torch.randn(1, HEADS, t, HEAD_DIM, device="cuda", dtype=dtype)
                if layout == "sdpa-causal":
                    def attend():
                        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                else:
                    block, kind = blockrank_layout(n)

                    def mask_mod(b, h, qi, ki):
                        same = (kind[qi] == GLOBAL) | (kind[ki] == PREFIX) | (block[ki] == block[qi])
                        return (ki <= qi) & same

                    mask = create_block_mask(mask_mod, 1, None, t, t, device="cuda")

                    def attend():
                        return flex(q, k, v, block_mask=mask, enable_gqa=True)

                def forward():
                    with torch.no_grad():
                        attend()

                def forward_backward():
                    attend().backward(d_out)
                    q.grad = k.grad = v.grad = None

                fwd = time_cuda(forward, args.reps, args.warmup)
                both = time_cuda(forward_backward, args.reps, args.warmup)
                bwd = both - fwd
                pairs = visible_pairs(layout, n)
                totals[(layout, n)] = both
                emit("attention", workload="attention", layout=layout, documents=n, tokens=t,
                     dtype=dtype_name, visiblePairs=pairs, forwardMs=fwd, backwardMs=bwd,
                     forwardTflops=4 * HEAD_DIM * HEADS * pairs / (fwd / 1e3) / 1e12,
                     backwardTflops=10 * HEAD_DIM * HEADS * pairs / (bwd / 1e3) / 1e12)
                del q, k, v, d_out
        first, last = counts[0], counts[-1]
        for layout in ("sdpa-causal", "flex-blockrank"):
            if first != last:
                emit("attention", workload="attention-growth", layout=layout, dtype=dtype_name,
                     documentsFrom=first, documentsTo=last,
                     timeGrowth=totals[(layout, last)] / totals[(layout, first)])


if __name__ == "__main__":
    main()
