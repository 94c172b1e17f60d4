/**
 * `deno task parity --model DIR --fixture FILE [--adapter DIR]`: runs the
 * fixture's inputs forward and backward and prints one JSON line
 * `{logits_rel_err, logits_positions, logits_pad_positions,
 * logits_rel_err_incl_pads, loss_abs_err, grad_max_rel_err, worst_grad}`;
 * logits are held to the tolerance where `attention_mask` is 1 only (see
 * `parity.ts` for why pads differ from transformers); exits 1 past tolerance.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { describeNoGpu, getDevice } from "@irforge/tensor";
import { loadCausalLM } from "../load.ts";
import { runParity } from "../parity.ts";
import { attachAdapterForParity } from "../lora/parity_adapter.ts";

const usage = "usage: deno task parity --model DIR --fixture FILE [--adapter DIR]";

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      fixture: { type: "string" },
      adapter: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.model || !values.fixture) {
    console.error(usage);
    return values.help ? 0 : 2;
  }
  await getDevice();
  const model = await loadCausalLM(values.model);
  let gradients = model.params;
  if (values.adapter) {
    gradients = await attachAdapterForParity(model, values.adapter);
  } else {
    model.setTrainable(true);
  }
  const report = await runParity(model, values.fixture, gradients);
  const { passed, grads_compared: _, ...line } = report;
  console.log(JSON.stringify(line));
  if (report.logits_pad_positions > 0) {
    console.error(
      `parity: logits compared at the ${report.logits_positions} positions where attention_mask ` +
        `is 1; the ${report.logits_pad_positions} pad positions are left out (transformers' pad ` +
        `queries attend to the tokens before them, irforge's to nothing; no loss reads them)`,
    );
  }
  if (!passed) console.error("parity: past tolerance");
  return passed ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(describeNoGpu(e) ?? (e instanceof Error ? e.message : String(e)));
    Deno.exit(1);
  }
}
