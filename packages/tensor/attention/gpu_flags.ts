/**
 * WebGPU usage and map-mode flag values from the WebGPU specification. The
 * workspace's TypeScript libs type `GPUDevice` but not the `GPUBufferUsage`
 * and `GPUMapMode` globals, so the values are spelled out here.
 *
 * @module
 */

/** `GPUBufferUsage` flags. */
export const BufferUsage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;

/** `GPUMapMode` flags. */
export const MapMode = { READ: 0x0001, WRITE: 0x0002 } as const;
