/**
 * Checked field access for decoded protobuf messages. protobufjs decodes into
 * loosely typed objects; these helpers turn a missing or mistyped field into a
 * BAD_FRAME error at the edge instead of an undefined deep inside Raft.
 */
import protobuf from 'protobufjs';
import { PlinthError } from '../../common/plinth-error.js';

export type WireObject = Readonly<Record<string, unknown>>;

/** Decode `frame` as `type` and convert 64-bit integers to JS numbers. */
export function decodeWire(type: protobuf.Type, frame: Uint8Array): WireObject {
  try {
    const message = type.decode(frame);
    const object: Record<string, unknown> = type.toObject(message, { longs: Number, defaults: true, arrays: true });
    return object;
  } catch (err) {
    throw new PlinthError('BAD_FRAME', `undecodable ${type.name} frame`, { type: type.name }, { cause: err });
  }
}

export function encodeWire(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

export function wireString(object: WireObject, field: string): string {
  const value = object[field];
  if (typeof value !== 'string') throw badField(field, 'string');
  return value;
}

export function wireBytes(object: WireObject, field: string): Buffer {
  const value = object[field];
  if (!(value instanceof Uint8Array)) throw badField(field, 'bytes');
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
}

export function wireNumber(object: WireObject, field: string): number {
  const value = object[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw badField(field, 'safe unsigned integer');
  return value;
}

export function wireBoolean(object: WireObject, field: string): boolean {
  const value = object[field];
  if (typeof value !== 'boolean') throw badField(field, 'boolean');
  return value;
}

export function wireArray(object: WireObject, field: string): readonly unknown[] {
  const value = object[field];
  if (!Array.isArray(value)) throw badField(field, 'array');
  return value;
}

/** A nested message field, or undefined when absent. */
export function wireOptionalObject(object: WireObject, field: string): WireObject | undefined {
  const value = object[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw badField(field, 'message');
  return value as WireObject;
}

function badField(field: string, expected: string): PlinthError {
  return new PlinthError('BAD_FRAME', `wire field ${field} is not a ${expected}`, { field, expected });
}
