/**
 * Tiny single-node ONNX models written byte by byte (the protobuf wire format of onnx.proto),
 * for tests that need an input or output the committed models do not have: a uint8 input, a
 * token output [batch, tokens, dim], a 4-d image input. onnxruntime runs them like any other.
 */
import { writeFileSync } from 'node:fs';

/** ONNX TensorProto.DataType numbers. */
export const ONNX_TYPES = { float32: 1, uint8: 2, int64: 7 } as const;
export type OnnxType = keyof typeof ONNX_TYPES;

export interface TinyValue {
  readonly name: string;
  readonly type: OnnxType;
  /** A number fixes the dimension, a string names a symbolic one. */
  readonly shape: readonly (number | string)[];
}

export interface TinyNode {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Integer and integer-list attributes (e.g. Cast `to`, ReduceMean `axes`, `keepdims`). */
  readonly attributes?: Readonly<Record<string, number | readonly number[]>>;
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? byte : byte | 0x80);
  } while (v !== 0n);
  return out;
}

const key = (field: number, wire: number): number[] => varint((field << 3) | wire);
const int = (field: number, n: number): number[] => [...key(field, 0), ...varint(n)];
const bytes = (field: number, b: readonly number[]): number[] => [...key(field, 2), ...varint(b.length), ...b];
const str = (field: number, s: string): number[] => bytes(field, [...Buffer.from(s, 'utf8')]);

function valueInfo(v: TinyValue): number[] {
  const dims = v.shape.flatMap((d) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  const tensorType = [...int(1, ONNX_TYPES[v.type]), ...bytes(2, dims)];
  return [...str(1, v.name), ...bytes(2, bytes(1, tensorType))];
}

function attribute(name: string, value: number | readonly number[]): number[] {
  // AttributeProto: name = 1, i = 3, ints = 8, type = 20 (INT = 2, INTS = 7).
  if (typeof value === 'number') return [...str(1, name), ...int(3, value), ...int(20, 2)];
  return [...str(1, name), ...value.flatMap((v) => int(8, v)), ...int(20, 7)];
}

/** The bytes of a model of one graph (opset 13) with these nodes, inputs and outputs. */
export function tinyModel(nodes: readonly TinyNode[], inputs: readonly TinyValue[], outputs: readonly TinyValue[]): Buffer {
  const graph = [
    ...nodes.flatMap((n) =>
      bytes(1, [
        ...n.inputs.flatMap((i) => str(1, i)),
        ...n.outputs.flatMap((o) => str(2, o)),
        ...str(4, n.op),
        ...Object.entries(n.attributes ?? {}).flatMap(([k, v]) => bytes(5, attribute(k, v))),
      ]),
    ),
    ...str(2, 'tiny'),
    ...inputs.flatMap((v) => bytes(11, valueInfo(v))),
    ...outputs.flatMap((v) => bytes(12, valueInfo(v))),
  ];
  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 ({domain 1, version 2}).
  return Buffer.from([...int(1, 7), ...str(2, 'qualm-test'), ...bytes(7, graph), ...bytes(8, [...str(1, ''), ...int(2, 13)])]);
}

export function writeTinyModel(path: string, nodes: readonly TinyNode[], inputs: readonly TinyValue[], outputs: readonly TinyValue[]): string {
  writeFileSync(path, tinyModel(nodes, inputs, outputs));
  return path;
}
