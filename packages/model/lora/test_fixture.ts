/**
 * Test helper: the peft parity fixture split over two files (inputs in
 * `fixture.safetensors`, LoRA logits/loss/grads in `lora_fixture.safetensors`)
 * joined into one temporary file that `runParity` can read.
 *
 * @module
 */

import { join } from "node:path";
import { openCheckpoint } from "../safetensors/checkpoint.ts";
import { writeSafetensors } from "../safetensors/writer.ts";

/** Writes inputs + LoRA expectations into a temp file; returns its path. */
export async function joinedLoraFixture(fixtureDir: string): Promise<string> {
  const tensors = new Map<string, { dtype: never; shape: number[]; data: Uint8Array }>();
  for (
    const [file, names] of [
      ["fixture.safetensors", ["input_ids", "labels"]],
      ["lora_fixture.safetensors", null],
    ] as const
  ) {
    const ck = await openCheckpoint(join(fixtureDir, file));
    for (const name of names ?? ck.names()) {
      const info = ck.info(name);
      tensors.set(name, {
        dtype: info.dtype as never,
        shape: info.shape,
        data: await ck.read(name, { as: "raw" }),
      });
    }
    ck.close();
  }
  const out = join(await Deno.makeTempDir({ prefix: "lora-fixture-" }), "joined.safetensors");
  await writeSafetensors(out, tensors);
  return out;
}
