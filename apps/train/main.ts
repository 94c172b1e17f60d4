/**
 * `deno task train`: the irforge training entry point.
 *
 * @module
 */

import { parseArgs } from "node:util";

const usage =
  `Usage: deno task train [--config cfg.yaml] [--set section.key=value ...] [--resume DIR]

Trains a retrieval or ranking model from a YAML recipe (blockrank, biencoder,
listwise, crossencoder, distill, sft). With no --config it trains a small
built-in reranker on a dataset that ships with the repository.`;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string" },
      set: { type: "string", multiple: true },
      resume: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  console.log(usage);
  if (!values.help) {
    console.log(
      "\nNot built yet: the trainer (packages/trainer) has not landed, so no recipe can run.\n" +
        "What works today: deno task eval, deno task bm25, deno task convert (see README).",
    );
  }
}
