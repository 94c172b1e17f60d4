/**
 * Debug CLI: shows how a tokenizer splits text, or decodes ids.
 *
 * ```sh
 * deno run -A packages/model/cli/tokenize.ts --tokenizer DIR_OR_MODEL "Hello world" [--bos] [--eos] [--special]
 * deno run -A packages/model/cli/tokenize.ts --tokenizer DIR_OR_MODEL --decode 1,15043,3186
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadTokenizer } from "../tokenizer/mod.ts";

const usage =
  "usage: tokenize.ts --tokenizer DIR_OR_MODEL [--bos] [--eos] [--special] TEXT...\n       tokenize.ts --tokenizer DIR_OR_MODEL --decode ID,ID,...";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    tokenizer: { type: "string" },
    decode: { type: "string" },
    bos: { type: "boolean", default: false },
    eos: { type: "boolean", default: false },
    special: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (values.help || !values.tokenizer) {
  console.log(usage);
  Deno.exit(values.help ? 0 : 2);
}
const tokenizer = await loadTokenizer(values.tokenizer);
if (values.decode !== undefined) {
  const ids = values.decode.split(/[\s,]+/).filter((s) => s.length > 0).map((s) => {
    const id = Number(s);
    if (!Number.isInteger(id)) {
      console.error(`--decode: "${s}" is not an integer id`);
      Deno.exit(2);
    }
    return id;
  });
  console.log(JSON.stringify(tokenizer.decode(ids, { skipSpecial: !values.special })));
} else {
  const text = positionals.join(" ");
  const ids = tokenizer.encode(text, {
    addBos: values.bos,
    addEos: values.eos,
    parseSpecial: values.special,
  });
  console.log(`${ids.length} tokens (vocabulary ${tokenizer.vocabSize})`);
  console.log(JSON.stringify(ids));
  console.log(ids.map((id) => tokenizer.idToPiece(id)).join(" | "));
}
