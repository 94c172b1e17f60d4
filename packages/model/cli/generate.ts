/**
 * `deno task generate --model DIR [--prompt TEXT] [--max-new-tokens N]
 * [--temperature T] [--top-k K] [--top-p P] [--seed S]`: decodes from a Hugging
 * Face Mistral/Llama directory with a KV cache, streaming text as it goes.
 * Without `--prompt` it starts from BOS alone. Out-of-range settings stop
 * before the model loads; generation stops at the model's
 * `max_position_embeddings` and says so.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { describeNoGpu, getDevice } from "@irforge/tensor";
import { generate } from "../generate.ts";
import { GenerateFlagError, generationBudget, parseGenerateFlags } from "../generate_options.ts";
import { loadCausalLM } from "../load.ts";
import { loadTokenizer } from "../tokenizer/load.ts";

const usage =
  "usage: deno task generate --model DIR [--prompt TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]";

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      prompt: { type: "string" },
      "max-new-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.model) {
    console.error(usage);
    return values.help ? 0 : 2;
  }
  const flags = parseGenerateFlags({
    "max-new-tokens": values["max-new-tokens"],
    temperature: values.temperature,
    "top-k": values["top-k"],
    "top-p": values["top-p"],
    seed: values.seed,
  });
  await getDevice();
  const [model, tokenizer] = await Promise.all([
    loadCausalLM(values.model),
    loadTokenizer(values.model),
  ]);
  const prompt = tokenizer.encode(values.prompt ?? "", { addBos: true });
  const limit = model.config.maxPositionEmbeddings;
  const budget = generationBudget(prompt.length, flags.maxNewTokens, limit);
  if (budget.capped) {
    console.error(
      `generate: the model's max_position_embeddings is ${limit}; stopping after ` +
        `${budget.maxNewTokens} new tokens (the prompt takes ${prompt.length})`,
    );
  }
  const encoder = new TextEncoder();
  let shown = "";
  const produced: number[] = [];
  await Deno.stdout.write(encoder.encode(values.prompt ?? ""));
  await generate(model, prompt, {
    maxNewTokens: budget.maxNewTokens,
    temperature: flags.temperature,
    topK: flags.topK,
    topP: flags.topP,
    seed: flags.seed,
    onToken: (id) => {
      produced.push(id);
      // Decode the whole continuation so multi-byte pieces print once complete.
      const text = tokenizer.decode(produced);
      const prefix = values.prompt ? " " : "";
      const full = (values.prompt && text.length > 0 ? prefix : "") + text;
      if (full.startsWith(shown) && !full.endsWith("\uFFFD")) {
        Deno.stdout.writeSync(encoder.encode(full.slice(shown.length)));
        shown = full;
      }
    },
  });
  console.log();
  model.dispose();
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    const message = describeNoGpu(e) ?? (e instanceof Error ? e.message : String(e));
    console.error(e instanceof GenerateFlagError ? `generate: error: ${message}` : message);
    Deno.exit(1);
  }
}
