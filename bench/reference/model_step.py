"""Training step of mistral-small (vocab 32768, hidden 768, 12 layers, 12 heads /
4 KV heads of 64, FFN 2048) via transformers' MistralForCausalLM with random
init: forward, LM loss, backward, AdamW; batch 8 × 1024; fp32 (TF32 off) and
bf16 autocast (fp32 master weights). Reports ms/step, tokens/s and peak memory
(torch.cuda.max_memory_allocated).
"""

import torch
from transformers import MistralConfig, MistralForCausalLM

from common import emit, parse_args, require_cuda, time_cuda


def main():
    args = parse_args(__doc__, batch=(int, 8, "sequences"), length=(int, 1024, "tokens per sequence"))
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    config = MistralConfig(vocab_size=32768, hidden_size=768, intermediate_size=2048,
                           num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                           head_dim=64, max_position_embeddings=args.length, sliding_window=None,
                           tie_word_embeddings=False)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.length), device="cuda")
    for mode in ("fp32", "bf16-autocast"):
        torch.manual_seed(0)
        model = MistralForCausalLM._from_config(config, attn_implementation="sdpa").cuda().train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode != "fp32"):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        ms = time_cuda(step, args.reps, args.warmup)
        tokens = args.batch * args.length
        emit("model_step", workload="model_step", model="mistral-small", dtype=mode,
             batch=args.batch, length=args.length,
             parameters=sum(p.numel() for p in model.parameters()), msPerStep=ms,
             tokensPerSecond=tokens / (ms / 1e3), peakBytes=torch.cuda.max_memory_allocated())
        del model, opt
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
