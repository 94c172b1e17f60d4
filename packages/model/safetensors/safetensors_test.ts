import assert from "node:assert/strict";
import { join } from "node:path";
import { sharedPathOrSkip } from "@irforge/data/shared-data";
import {
  bf16BitsToF32,
  CheckpointError,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBits,
  openCheckpoint,
  planSafetensors,
  SafetensorsFile,
  saveCheckpoint,
  type TensorToWrite,
  writeSafetensors,
} from "./mod.ts";

const fixtureFiles = [
  ["fixtures", "hf-mistral-tiny", "model.safetensors"],
  ["fixtures", "hf-mistral-tiny", "fixture.safetensors"],
  ["fixtures", "hf-mistral-tiny", "adapter_model.safetensors"],
  ["fixtures", "hf-mistral-tiny", "lora_fixture.safetensors"],
];

/** Header parsed the plain way, as an independent check of the reader. */
function plainHeader(bytes: Uint8Array): { n: number; json: Record<string, unknown> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) };
}

async function readAll(path: string): Promise<[string, TensorToWrite][]> {
  const file = await SafetensorsFile.open(path);
  try {
    const out: [string, TensorToWrite][] = [];
    for (const name of file.names()) {
      const { dtype, shape } = file.info(name);
      out.push([name, { dtype, shape, data: await file.readRaw(name) }]);
    }
    return out;
  } finally {
    file.close();
  }
}

Deno.test("safetensors: reader agrees with a plain parse of the fixtures", async () => {
  for (const parts of fixtureFiles) {
    const path = sharedPathOrSkip("safetensors fixture", ...parts);
    if (!path) return;
    const bytes = await Deno.readFile(path);
    const { n, json } = plainHeader(bytes);
    const file = await SafetensorsFile.open(path);
    try {
      const names = Object.keys(json).filter((k) => k !== "__metadata__");
      assert.deepEqual(new Set(file.names()), new Set(names));
      for (const name of names) {
        const entry = json[name] as {
          dtype: string;
          shape: number[];
          data_offsets: [number, number];
        };
        const info = file.info(name);
        assert.equal(info.dtype, entry.dtype);
        assert.deepEqual(info.shape, entry.shape);
        const [begin, end] = entry.data_offsets;
        const expected = bytes.subarray(8 + n + begin, 8 + n + end);
        assert.deepEqual(await file.read(name, { as: "raw" }), expected, name);
        if (info.dtype === "F32") {
          const values = await file.read(name, { as: "f32" });
          assert.deepEqual(values, new Float32Array(expected.slice().buffer));
          const halves = await file.read(name, { as: "f16" });
          assert.equal(halves[0], f32BitsToF16Bits(f32ToBits(values[0]!)));
        }
      }
    } finally {
      file.close();
    }
  }
});

Deno.test("safetensors: fixture dtypes and shapes", async () => {
  const dir = sharedPathOrSkip("hf-mistral-tiny", "fixtures", "hf-mistral-tiny");
  if (!dir) return;
  const ckpt = await openCheckpoint(join(dir, "fixture.safetensors"));
  try {
    assert.deepEqual(ckpt.info("input_ids").dtype, "I32");
    assert.deepEqual(ckpt.info("input_ids").shape, [2, 24]);
    assert.deepEqual(ckpt.info("logits").shape, [2, 24, 320]);
    const labels = await ckpt.read("labels");
    assert.ok(labels instanceof Int32Array);
    assert.deepEqual([...labels.subarray(0, 5)], [-100, -100, -100, -100, -100]);
    await assert.rejects(() => ckpt.read("labels", { as: "f32" }), /cannot read I32 as f32/);
    assert.throws(
      () => ckpt.info("nope"),
      /fixture\.safetensors \(tensor "nope"\): no such tensor/,
    );
  } finally {
    ckpt.close();
  }
});

Deno.test("safetensors: rewriting the Python-written fixtures is byte-identical", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const parts of fixtureFiles) {
      const path = sharedPathOrSkip("safetensors fixture", ...parts);
      if (!path) return;
      const original = await Deno.readFile(path);
      // Feed tensors in reverse to prove the writer sorts as the Python library does.
      const tensors = (await readAll(path)).reverse();
      const out = join(dir, parts.at(-1)!);
      const size = await writeSafetensors(out, tensors);
      assert.equal(size, original.length);
      assert.deepEqual(await Deno.readFile(out), original, `${parts.at(-1)} differs`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: stories260K (metadata at the end) round-trips tensor by tensor", async () => {
  const path = sharedPathOrSkip("stories260K", "data", "stories260K", "model.safetensors");
  if (!path) return;
  const dir = await Deno.makeTempDir();
  try {
    const source = await SafetensorsFile.open(path);
    const metadata = source.metadata;
    source.close();
    assert.ok(metadata && Object.keys(metadata).length > 0);
    const tensors = await readAll(path);
    const out = join(dir, "model.safetensors");
    await writeSafetensors(out, tensors, { metadata });
    const back = await SafetensorsFile.open(out);
    try {
      assert.deepEqual(back.metadata, metadata);
      assert.deepEqual(back.names(), tensors.map(([name]) => name));
      for (const [name, tensor] of tensors) {
        assert.deepEqual(await back.readRaw(name), tensor.data, name);
      }
    } finally {
      back.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: header bytes match the Rust library's own test vectors", () => {
  const data = new Float32Array([0, 1, 2, 3, 4, 5]);
  // safetensors/src/tensor.rs test_serialization: "attn.0" F32 [1,2,3]
  const a = planSafetensors({ "attn.0": { dtype: "F32", shape: [1, 2, 3], data } });
  assert.deepEqual(
    [...a.header],
    [
      64,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...new TextEncoder().encode(
        `{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`,
      ),
    ],
  );
  // test_serialization_forced_alignement: 7 spaces of padding
  const b = planSafetensors({ attn0: { dtype: "F32", shape: [1, 1, 2, 3], data } });
  assert.equal(b.header.length, 8 + 72);
  assert.deepEqual([...b.header.subarray(8 + 65)], [32, 32, 32, 32, 32, 32, 32]);
  // test_empty, with and without metadata
  assert.deepEqual([...planSafetensors({}).header], [
    8,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    123,
    125,
    32,
    32,
    32,
    32,
    32,
    32,
  ]);
  assert.deepEqual(
    [...planSafetensors({}, { metadata: { framework: "pt" } }).header],
    [
      40,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      123,
      34,
      95,
      95,
      109,
      101,
      116,
      97,
      100,
      97,
      116,
      97,
      95,
      95,
      34,
      58,
      123,
      34,
      102,
      114,
      97,
      109,
      101,
      119,
      111,
      114,
      107,
      34,
      58,
      34,
      112,
      116,
      34,
      125,
      125,
      32,
      32,
      32,
      32,
      32,
    ],
  );
});

Deno.test("safetensors: BF16/F16/F64 tensors convert on read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const values = [
      0,
      -0,
      1,
      -2.5,
      3.14159,
      65504,
      70000,
      1e-6,
      6e-8,
      1e-40,
      Infinity,
      -Infinity,
      1 / 3,
    ];
    const f32 = new Float32Array(values);
    const bf16 = Uint16Array.from(f32, (v) => f32BitsToBf16Bits(f32ToBits(v)));
    const f16 = Uint16Array.from(f32, (v) => f32BitsToF16Bits(f32ToBits(v)));
    const f64 = new Float64Array(values);
    const path = join(dir, "mixed.safetensors");
    let lazyCalls = 0;
    await writeSafetensors(path, {
      b: { dtype: "BF16", shape: [values.length], data: bf16 },
      h: { dtype: "F16", shape: [values.length], data: f16 },
      d: {
        dtype: "F64",
        shape: [values.length],
        data: () => {
          lazyCalls++;
          return f64;
        },
      },
      f: { dtype: "F32", shape: [values.length], data: f32 },
    });
    assert.equal(lazyCalls, 1);
    const ckpt = await openCheckpoint(path);
    try {
      // Data order: F64, F32, BF16, F16 (dtype size descending).
      assert.deepEqual(ckpt.names(), ["d", "f", "b", "h"]);
      assert.deepEqual(await ckpt.read("b", { as: "f32" }), Float32Array.from(bf16, bf16BitsToF32));
      assert.deepEqual(
        await ckpt.read("b", { as: "f16" }),
        Uint16Array.from(bf16, (b) => f32BitsToF16Bits(b << 16)),
      );
      assert.deepEqual(await ckpt.read("h", { as: "f16" }), f16);
      assert.deepEqual(await ckpt.read("f", { as: "f16" }), f16);
      assert.deepEqual(await ckpt.read("d", { as: "f32" }), f32);
      assert.deepEqual(await ckpt.read("d", { as: "native" }), f64);
      const fromHalf = await ckpt.read("h", { as: "f32" });
      assert.equal(fromHalf[5], 65504);
      assert.equal(fromHalf[6], Infinity); // 70000 overflows f16
      assert.equal(fromHalf[9], 0); // 1e-40 underflows
    } finally {
      ckpt.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: sharded save and load, as transformers lays it out", async () => {
  const path = sharedPathOrSkip(
    "hf-mistral-tiny",
    "fixtures",
    "hf-mistral-tiny",
    "model.safetensors",
  );
  if (!path) return;
  const dir = await Deno.makeTempDir();
  try {
    const tensors = await readAll(path);
    const maxShardBytes = 100_000;
    const progress: number[] = [];
    const saved = await saveCheckpoint(dir, tensors, {
      maxShardBytes,
      onProgress: (w) => progress.push(w),
    });
    const totalSize = tensors.reduce((s, [, t]) => s + (t.data as Uint8Array).byteLength, 0);
    assert.equal(saved.totalSize, totalSize);
    assert.equal(progress.at(-1), totalSize);
    assert.ok(saved.files.length > 1);
    assert.match(saved.files[0]!, /^model-00001-of-0000\d\.safetensors$/);
    const index = JSON.parse(await Deno.readTextFile(join(dir, "model.safetensors.index.json")));
    assert.deepEqual(index.metadata, { total_size: totalSize });
    assert.deepEqual(Object.keys(index.weight_map), tensors.map(([n]) => n).sort());
    // Greedy packing in the given order: each shard fits, or holds one oversized tensor.
    for (const file of saved.files) {
      const shard = await SafetensorsFile.open(join(dir, file));
      const bytes = shard.names().reduce((s, n) => s + shard.info(n).byteLength, 0);
      assert.ok(bytes <= maxShardBytes || shard.names().length === 1, `${file} holds ${bytes}`);
      assert.deepEqual(shard.metadata, { format: "pt" });
      shard.close();
    }
    const ckpt = await openCheckpoint(dir);
    try {
      assert.deepEqual(ckpt.names().sort(), tensors.map(([n]) => n).sort());
      assert.equal(ckpt.totalBytes(), totalSize);
      for (const [name, tensor] of tensors) {
        assert.deepEqual(await ckpt.read(name, { as: "raw" }), tensor.data);
      }
    } finally {
      ckpt.close();
    }
    // Saving again unsharded removes the stale shards and index.
    const single = await saveCheckpoint(dir, tensors);
    assert.deepEqual(single, { files: ["model.safetensors"], index: null, totalSize });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Writes a file from a raw header string and `dataBytes` zero bytes. */
async function craft(path: string, header: string, dataBytes: number, lengthOverride?: number) {
  const json = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + json.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(lengthOverride ?? json.length), true);
  bytes.set(json, 8);
  await Deno.writeFile(path, bytes);
}

Deno.test("safetensors: corrupt files name the file and the tensor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "bad.safetensors");
    const expectError = async (pattern: RegExp) => {
      await assert.rejects(() => SafetensorsFile.open(path), (error: unknown) => {
        assert.ok(error instanceof CheckpointError, String(error));
        assert.ok(error.message.startsWith(path), error.message);
        assert.match(error.message, pattern);
        return true;
      });
    };
    const t = (name: string, dtype: string, shape: number[], offsets: [number, number]) =>
      `"${name}":{"dtype":"${dtype}","shape":${JSON.stringify(shape)},"data_offsets":${
        JSON.stringify(offsets)
      }}`;

    await Deno.writeFile(path, new Uint8Array(5));
    await expectError(/too short/);
    await craft(path, `{${t("a", "F32", [2], [0, 8])}}`, 8, 1000);
    await expectError(/header length 1000 runs past the end/);
    await craft(path, `{"a": {`, 0);
    await expectError(/not valid JSON/);
    await craft(path, `{${t("a", "F32", [2], [0, 8])}}`, 4);
    await expectError(/\(tensor "a"\): data ends at byte \d+ but the file has only/);
    await craft(path, `{${t("a", "F32", [3], [0, 8])}}`, 8);
    await expectError(/\(tensor "a"\): data_offsets \[0, 8\] hold 8 bytes but F32 \[3\] needs 12/);
    await craft(path, `{${t("a", "F32", [2], [0, 8])},${t("b", "F32", [2], [4, 12])}}`, 12);
    await expectError(/\(tensor "b"\): .*overlap/);
    await craft(path, `{${t("a", "F32", [1], [0, 4])},${t("b", "F32", [1], [8, 12])}}`, 12);
    await expectError(/\(tensor "b"\): .*gap/);
    await craft(path, `{${t("a", "F8_E4M3", [2], [0, 2])}}`, 2);
    await expectError(/\(tensor "a"\): unsupported dtype "F8_E4M3"/);
    await craft(path, `{${t("a", "F32", [2], [0, 8])}}`, 16);
    await expectError(/cover 8 data bytes but the file holds 16/);
    await craft(path, `{"__metadata__":{"x":1}}`, 0);
    await expectError(/__metadata__/);

    // A real checkpoint cut short: the last tensor in the file is named.
    const fixture = sharedPathOrSkip(
      "hf-mistral-tiny",
      "fixtures",
      "hf-mistral-tiny",
      "model.safetensors",
    );
    if (fixture) {
      const bytes = await Deno.readFile(fixture);
      await Deno.writeFile(path, bytes.subarray(0, bytes.length - 10));
      await expectError(
        /\(tensor "model\.norm\.weight"\): data ends at byte 535880 but the file has only 535870/,
      );
    }

    // A sharded checkpoint with a missing shard.
    const shardDir = join(dir, "sharded");
    const f = new Float32Array(1000);
    await saveCheckpoint(shardDir, {
      x: { dtype: "F32", shape: [1000], data: f },
      y: { dtype: "F32", shape: [1000], data: f },
    }, { maxShardBytes: 4000 });
    await Deno.remove(join(shardDir, "model-00002-of-00002.safetensors"));
    await assert.rejects(
      () => openCheckpoint(shardDir),
      /model\.safetensors\.index\.json \(tensor "y"\): its shard model-00002-of-00002\.safetensors is missing/,
    );
    // Writer refuses data of the wrong size and leaves no file behind.
    const out = join(dir, "w.safetensors");
    await assert.rejects(
      () => writeSafetensors(out, { w: { dtype: "F16", shape: [3], data: new Uint16Array(2) } }),
      /w\.safetensors \(tensor "w"\): data has 4 bytes but F16 \[3\] needs 6/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "bad.safetensors",
      "sharded",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
