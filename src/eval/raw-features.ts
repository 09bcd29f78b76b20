import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';

/**
 * The encoder's output before its final L2 normalisation, for the L2-norm baseline. The
 * demo models end in `e / ||e||` (model card: PCA-whitening layer, then Mul, ReduceSum, Sqrt,
 * Clip, Div), so their declared output has norm 1 and the norm carries no information. This
 * reads the ONNX protobuf just far enough to find the node producing the declared output, and
 * declares that node's first input (e, the un-normalised embedding) as an extra graph output
 * of an in-memory copy of the model. Any other final op is refused: then there is no
 * pre-normalisation tensor to read.
 */

interface Field {
  readonly field: number;
  readonly wire: number;
  /** Byte range of the whole field (key included) and of its payload. */
  readonly start: number;
  readonly end: number;
  readonly payloadStart: number;
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined) throw new RangeError('truncated protobuf varint');
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return [value, pos];
    scale *= 128;
  }
}

function encodeVarint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** The top-level fields of one protobuf message. */
function fields(buf: Uint8Array, from = 0, to = buf.length): Field[] {
  const out: Field[] = [];
  let pos = from;
  while (pos < to) {
    const start = pos;
    const [key, p1] = readVarint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let payloadStart = p1;
    let end: number;
    if (wire === 0) end = readVarint(buf, p1)[1];
    else if (wire === 1) end = p1 + 8;
    else if (wire === 5) end = p1 + 4;
    else if (wire === 2) {
      const [len, p2] = readVarint(buf, p1);
      payloadStart = p2;
      end = p2 + len;
    } else throw new RangeError(`unsupported protobuf wire type ${wire}`);
    out.push({ field, wire, start, end, payloadStart });
    pos = end;
  }
  return out;
}

const text = (buf: Uint8Array, f: Field): string => Buffer.from(buf.subarray(f.payloadStart, f.end)).toString('utf8');

function lengthDelimited(field: number, payload: Uint8Array | number[]): number[] {
  return [...encodeVarint(field * 8 + 2), ...encodeVarint(payload.length), ...payload];
}

/** The model bytes with `extraOutput` (a float tensor) added to the graph's outputs. */
export function withExtraOutput(model: Uint8Array, extraOutput: string): Uint8Array {
  const top = fields(model);
  const graph = top.find((f) => f.field === 7 && f.wire === 2);
  if (graph === undefined) throw new Error('ONNX model has no graph');
  const nameField = lengthDelimited(1, [...Buffer.from(extraOutput, 'utf8')]);
  const tensorType = lengthDelimited(1, [8, 1]); // TypeProto.tensor_type { elem_type: FLOAT }
  const valueInfo = lengthDelimited(12, [...nameField, ...lengthDelimited(2, tensorType)]);
  const graphPayload = [...model.subarray(graph.payloadStart, graph.end), ...valueInfo];
  return Uint8Array.from([...model.subarray(0, graph.start), ...lengthDelimited(7, graphPayload), ...model.subarray(graph.end)]);
}

/** Name of the tensor the model L2-normalises into `output`: the first input of the Div producing it. */
export function preNormalisationTensor(model: Uint8Array, output: string): string {
  const graph = fields(model).find((f) => f.field === 7 && f.wire === 2);
  if (graph === undefined) throw new Error('ONNX model has no graph');
  for (const node of fields(model, graph.payloadStart, graph.end).filter((f) => f.field === 1 && f.wire === 2)) {
    const parts = fields(model, node.payloadStart, node.end);
    const outputs = parts.filter((p) => p.field === 2).map((p) => text(model, p));
    if (!outputs.includes(output)) continue;
    const op = parts.find((p) => p.field === 4);
    const inputs = parts.filter((p) => p.field === 1).map((p) => text(model, p));
    if (op === undefined || text(model, op) !== 'Div' || inputs[0] === undefined) {
      throw new Error(`output ${output} is not produced by a Div (an L2 normalisation), so there is no pre-normalisation tensor`);
    }
    return inputs[0];
  }
  throw new Error(`no node produces output ${output}`);
}

/** Runs the model on n rows and returns the un-normalised embedding (n x dim) of its output. */
export async function preNormalisationEmbeddings(modelPath: string, inputName: string, outputName: string, features: Float32Array, n: number, inputDim: number, batch = 512): Promise<{ data: Float32Array; dim: number; tensor: string }> {
  const model = new Uint8Array(await readFile(modelPath));
  const tensor = preNormalisationTensor(model, outputName);
  const session = await ort.InferenceSession.create(withExtraOutput(model, tensor), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const parts: Float32Array[] = [];
    let dim = 0;
    for (let start = 0; start < n; start += batch) {
      const m = Math.min(batch, n - start);
      const input = new ort.Tensor('float32', features.slice(start * inputDim, (start + m) * inputDim), [m, inputDim]);
      const out = await session.run({ [inputName]: input }, [tensor]);
      const t = out[tensor];
      if (t === undefined) throw new Error(`model returned no ${tensor}`);
      dim = t.dims[1] ?? 0;
      parts.push(Float32Array.from(t.data as Float32Array));
    }
    const data = new Float32Array(n * dim);
    let off = 0;
    for (const p of parts) {
      data.set(p, off);
      off += p.length;
    }
    return { data, dim, tensor };
  } finally {
    await session.release();
  }
}
