/**
 * A Hugging Face checkpoint as one object: a single `model.safetensors`, or
 * shards listed by `model.safetensors.index.json` (`weight_map`: tensor name →
 * shard file). Tensors are read one at a time, on demand.
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CheckpointError } from "./checkpoint_error.ts";
import { type ReadAs, type ReadResult, SafetensorsFile, type TensorInfo } from "./reader.ts";

/** Name of the single-file checkpoint transformers writes. */
export const singleCheckpointName = "model.safetensors";
/** Name of the index of a sharded checkpoint. */
export const checkpointIndexName = "model.safetensors.index.json";

/** An open checkpoint (one or many safetensors files). */
export interface Checkpoint {
  /** The file or index the checkpoint was opened from. */
  readonly path: string;
  /** Every tensor name, in index order (or file order for a single file). */
  names(): string[];
  /** `true` when the checkpoint holds `name`. */
  has(name: string): boolean;
  /** Dtype, shape and size of `name`; throws {@link CheckpointError} when absent. */
  info(name: string): TensorInfo & { file: string };
  /** Reads `name`, converting as `options.as` says (default `native`). */
  read<A extends ReadAs = "native">(name: string, options?: { as?: A }): Promise<ReadResult[A]>;
  /** Total bytes of tensor data. */
  totalBytes(): number;
  /** Closes every file. */
  close(): void;
}

/**
 * Opens a checkpoint from a directory (prefers `model.safetensors.index.json`,
 * else `model.safetensors`, else the only `*.safetensors` file), a
 * `.safetensors` file, or an `.index.json` file. Every shard is opened and its
 * header validated up front; a missing shard or a tensor the index places in
 * a shard that lacks it is an error naming both.
 */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  let target = path;
  if (existsSync(path) && statSync(path).isDirectory()) {
    const index = join(path, checkpointIndexName);
    const single = join(path, singleCheckpointName);
    if (existsSync(index)) target = index;
    else if (existsSync(single)) target = single;
    else {
      const candidates = [...Deno.readDirSync(path)]
        .filter((e) => e.isFile && e.name.endsWith(".safetensors"))
        .map((e) => e.name)
        .sort();
      if (candidates.length !== 1) {
        throw new CheckpointError(
          path,
          undefined,
          candidates.length === 0
            ? `no ${singleCheckpointName}, ${checkpointIndexName} or other .safetensors file`
            : `several .safetensors files (${candidates.join(", ")}) and no ${checkpointIndexName}`,
        );
      }
      target = join(path, candidates[0]!);
    }
  }
  if (target.endsWith(".json")) return await openSharded(target);
  const file = await SafetensorsFile.open(target);
  return {
    path: target,
    names: () => file.names(),
    has: (name) => file.has(name),
    info: (name) => ({ ...file.info(name), file: target }),
    read: (name, options) => file.read(name, options),
    totalBytes: () => file.names().reduce((sum, n) => sum + file.info(n).byteLength, 0),
    close: () => file.close(),
  };
}

async function openSharded(indexPath: string): Promise<Checkpoint> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (error) {
    throw new CheckpointError(
      indexPath,
      undefined,
      `cannot read index: ${(error as Error).message}`,
    );
  }
  const weightMap = (json as Record<string, unknown> | null)?.["weight_map"];
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointError(indexPath, undefined, `missing "weight_map" object`);
  }
  const placement = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard.length === 0 || basename(shard) !== shard) {
      throw new CheckpointError(
        indexPath,
        name,
        `weight_map value ${JSON.stringify(shard)} is not a file name`,
      );
    }
    placement.set(name, shard);
  }
  const dir = dirname(indexPath);
  const shards = new Map<string, SafetensorsFile>();
  const closeAll = () => {
    for (const shard of shards.values()) shard.close();
  };
  try {
    for (const [name, shardName] of placement) {
      if (shards.has(shardName)) continue;
      const shardPath = join(dir, shardName);
      if (!existsSync(shardPath)) {
        throw new CheckpointError(
          indexPath,
          name,
          `its shard ${shardName} is missing (${shardPath})`,
        );
      }
      shards.set(shardName, await SafetensorsFile.open(shardPath));
    }
    for (const [name, shardName] of placement) {
      const shard = shards.get(shardName)!;
      if (!shard.has(name)) {
        throw new CheckpointError(
          shard.path,
          name,
          `listed in ${basename(indexPath)} but absent from this shard`,
        );
      }
    }
  } catch (error) {
    closeAll();
    throw error;
  }
  const shardOf = (name: string): SafetensorsFile => {
    const shardName = placement.get(name);
    if (shardName === undefined) {
      throw new CheckpointError(indexPath, name, "no such tensor in this checkpoint");
    }
    return shards.get(shardName)!;
  };
  return {
    path: indexPath,
    names: () => [...placement.keys()],
    has: (name) => placement.has(name),
    info: (name) => {
      const shard = shardOf(name);
      return { ...shard.info(name), file: shard.path };
    },
    read: (name, options) => shardOf(name).read(name, options),
    totalBytes: () => [...placement.keys()].reduce((s, n) => s + shardOf(n).info(n).byteLength, 0),
    close: closeAll,
  };
}
