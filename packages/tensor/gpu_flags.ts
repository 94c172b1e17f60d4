/**
 * WebGPU flag values from the specification, defined here because the
 * workspace's TypeScript libs declare the WebGPU types but not the
 * `GPUBufferUsage` / `GPUMapMode` values.
 *
 * @module
 */

/** `GPUBufferUsage` bits. */
export const BufferUsage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  QUERY_RESOLVE: 0x0200,
} as const;

/** `GPUMapMode` bits. */
export const MapMode = { READ: 0x0001, WRITE: 0x0002 } as const;
