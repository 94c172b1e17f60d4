/**
 * A minimal protobuf wire-format reader: enough to walk a message's fields
 * (varint, 64-bit, length-delimited, 32-bit), as SentencePiece's
 * `ModelProto` needs. Unknown fields are skipped by wire type.
 *
 * @module
 */

/** One field of a message: its number, wire type and raw value. */
export type ProtoField =
  | { field: number; wire: 0; value: bigint }
  | { field: number; wire: 1; value: Uint8Array }
  | { field: number; wire: 2; value: Uint8Array }
  | { field: number; wire: 5; value: Uint8Array };

/** Thrown on malformed protobuf bytes; `where` tells which message was being read. */
export class ProtoError extends Error {
  /** Creates an error for a problem at byte `offset`. */
  constructor(where: string, offset: number, problem: string) {
    super(`${where}: malformed protobuf at byte ${offset}: ${problem}`);
    this.name = "ProtoError";
  }
}

/** Iterates over the fields of one serialized message. */
export function* protoFields(bytes: Uint8Array, where: string): Generator<ProtoField> {
  let offset = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (offset >= bytes.length) throw new ProtoError(where, offset, "truncated varint");
      const byte = bytes[offset++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new ProtoError(where, offset, "varint longer than 10 bytes");
    }
  };
  const take = (length: number): Uint8Array => {
    if (offset + length > bytes.length) {
      throw new ProtoError(where, offset, `field of ${length} bytes runs past the end`);
    }
    const out = bytes.subarray(offset, offset + length);
    offset += length;
    return out;
  };
  while (offset < bytes.length) {
    const start = offset;
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new ProtoError(where, start, "field number 0");
    switch (wire) {
      case 0:
        yield { field, wire, value: varint() };
        break;
      case 1:
        yield { field, wire, value: take(8) };
        break;
      case 2:
        yield { field, wire, value: take(Number(varint())) };
        break;
      case 5:
        yield { field, wire, value: take(4) };
        break;
      default:
        throw new ProtoError(where, start, `unsupported wire type ${wire} (field ${field})`);
    }
  }
}

/** Decodes a varint field as a signed 32-bit int (protobuf `int32`: negatives are 10-byte two's complement). */
export function protoInt32(value: bigint): number {
  return Number(BigInt.asIntN(32, value));
}

/** Decodes a 4-byte field as a little-endian float. */
export function protoFloat(value: Uint8Array): number {
  return new DataView(value.buffer, value.byteOffset, 4).getFloat32(0, true);
}

/** Decodes a length-delimited field as UTF-8 text. */
export function protoString(value: Uint8Array): string {
  return new TextDecoder().decode(value);
}
