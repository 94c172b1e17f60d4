"""7B-shaped LoRA step (hidden 4096, 32 layers, 32 heads / 8 KV heads, FFN 14336,
vocab 32768) with peft LoRA r=16, alpha 32, no dropout, on q,k,v,o; gradient
checkpointing; one sequence of 4096 tokens; bf16 base. Then, if bitsandbytes
is installed, the same with an NF4 base (double quant, bf16 compute), loaded
from the random bf16 model saved to --scratch (about 15 GB of disk).
"""

import os
import shutil

import torch
from peft import LoraConfig, get_peft_model
from transformers import MistralConfig, MistralForCausalLM

from common import emit, parse_args, require_cuda, time_cuda

CONFIG = dict(vocab_size=32768, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
              num_attention_heads=32, num_key_value_heads=8, head_dim=128,
              max_position_embeddings=32768, sliding_window=None, tie_word_embeddings=False)
LORA = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")


def measure(model, base, args):
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model = get_peft_model(model, LORA)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
    ids = torch.randint(0, CONFIG["vocab_size"], (1, args.tokens), device="cuda")

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    ms = time_cuda(step, args.reps, args.warmup)
    emit("lora_step", workload="lora_step", model="mistral-7b-shape", base=base, loraR=16,
         targets="q_proj,k_proj,v_proj,o_proj", tokens=args.tokens, gradientCheckpointing=True,
         trainableParameters=sum(p.numel() for p in trainable), msPerStep=ms,
         tokensPerSecond=args.tokens / (ms / 1e3), peakBytes=torch.cuda.max_memory_allocated())


def main():
    args = parse_args(__doc__, tokens=(int, 4096, "sequence length"),
                      scratch=(str, "/tmp/irforge-random-7b", "where the random bf16 model is saved for NF4"))
    require_cuda()
    config = MistralConfig(**CONFIG)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = MistralForCausalLM._from_config(config, torch_dtype=torch.bfloat16,
                                                attn_implementation="sdpa")
    try:
        import bitsandbytes  # noqa: F401  (only whether it is installed matters here)
        have_bnb = True
    except ImportError:
        have_bnb = False
        print('{"note": "bitsandbytes is not installed: NF4 base skipped"}', flush=True)
    if have_bnb:
        model.save_pretrained(args.scratch, safe_serialization=True)
    measure(model, "bf16", args)
    del model
    torch.cuda.empty_cache()
    if have_bnb:
        from transformers import BitsAndBytesConfig
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                   bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
        model = MistralForCausalLM.from_pretrained(args.scratch, quantization_config=quant,
                                                   torch_dtype=torch.bfloat16, device_map={"": 0},
                                                   attn_implementation="sdpa")
        measure(model, "nf4", args)
        if os.path.isdir(args.scratch):
            shutil.rmtree(args.scratch)


if __name__ == "__main__":
    main()
