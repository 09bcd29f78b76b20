import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  IMAGE_ERROR_CODES,
  INPUT_ERROR_CODES,
  INPUT_FORMAT_HEADER,
  MAX_META_BYTES,
  MAX_META_DEPTH,
  MAX_TEXT_BYTES,
  depthBeyond,
  encodeFloat32Base64,
  messageFormat,
  parseSample,
  type InputSpec,
  type MessageFormat,
} from '../../../src/contracts/index.js';
import { seededRandom } from '../../../src/util/random.js';

const spec: InputSpec = { inputKind: 'features', inputDim: 4, embeddingDim: 3, maxBytes: 300 };
const textSpec: InputSpec = { inputKind: 'text', embeddingDim: 3, maxBytes: 300, maxTextBytes: 40 };
const imageSpec: InputSpec = { inputKind: 'image', embeddingDim: 3, maxBytes: 300 };
/** The first bytes of a PNG and a little more: parsing does not decode images. */
const PNG_BYTES = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55', 'hex');
const buf = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

/** Every code the failures in this file produced. */
const seen = new Set<string>();

function code(value: Buffer | null, key: Buffer | null = null, s: InputSpec = spec, format: MessageFormat = 'json'): string {
  const r = parseSample(value, key, s, format);
  assert.equal(r.ok, false, 'expected a parse failure');
  if (!r.ok) seen.add(r.code);
  return r.ok ? '' : r.code;
}

test('a well-formed sample parses with id, features and meta', () => {
  const r = parseSample(buf({ id: 's-1', input: { features: [0.1, 0.2, 0.3, 0.4] }, meta: { src: 'x' } }), null, spec);
  assert.ok(r.ok);
  assert.equal(r.sample.id, 's-1');
  assert.equal(r.sample.input.kind, 'features');
  assert.deepEqual(Array.from(r.sample.input.values), Array.from(Float32Array.from([0.1, 0.2, 0.3, 0.4])));
  assert.deepEqual(r.sample.meta, { src: 'x' });
});

test('regression: a blank id falls back to the Kafka key, as the README says (it was refused as a bad schema)', () => {
  for (const blank of ['', '   ', '\t']) {
    const r = parseSample(buf({ id: blank, input: { features: [1, 2, 3, 4] } }), Buffer.from('key-8'), spec);
    assert.ok(r.ok, JSON.stringify(blank));
    assert.equal(r.sample.id, 'key-8');
    assert.equal(code(buf({ id: blank, input: { features: [1, 2, 3, 4] } })), 'QUALM_MISSING_ID');
  }
});

test('regression: a numeric id too large to be read exactly is refused, not rewritten (12345678901234567890 became "12345678901234567000")', () => {
  assert.equal(code(Buffer.from('{"id":12345678901234567890,"input":{"features":[1,2,3,4]}}')), 'QUALM_BAD_SCHEMA');
  const r = parseSample(Buffer.from('{"id":12345678901234567890,"input":{"features":[1,2,3,4]}}'), null, spec);
  assert.ok(!r.ok && /too large to be read exactly .*send it as a string/.test(r.message));
  const safe = parseSample(Buffer.from('{"id":9007199254740991,"input":{"features":[1,2,3,4]}}'), null, spec);
  assert.ok(safe.ok && safe.sample.id === '9007199254740991', 'the largest safe integer is kept as written');
  const str = parseSample(Buffer.from('{"id":"12345678901234567890","input":{"features":[1,2,3,4]}}'), null, spec);
  assert.ok(str.ok && str.sample.id === '12345678901234567890');
});

test('regression: an all-zero embedding is refused under cosine (it was scored as confident), kept under l2 and ip where it is a point like any other', () => {
  const zero = buf({ id: 'z', input: { embedding: [0, 0, 0] } });
  assert.equal(code(zero), 'QUALM_ZERO_EMBEDDING');
  assert.equal(code(zero, null, { ...spec, metric: 'cosine' }), 'QUALM_ZERO_EMBEDDING');
  assert.ok(parseSample(zero, null, { ...spec, metric: 'l2' }).ok);
  assert.ok(parseSample(zero, null, { ...spec, metric: 'ip' }).ok);
  assert.ok(parseSample(buf({ id: 'z', input: { embedding: [0, 1e-30, 0] } }), null, spec).ok, 'only exact zeros');
});

test('the Kafka key is the fallback id', () => {
  const r = parseSample(buf({ input: { features: [1, 2, 3, 4] } }), Buffer.from('key-7'), spec);
  assert.ok(r.ok);
  assert.equal(r.sample.id, 'key-7');
});

test('features_b64 decodes little-endian float32', () => {
  const values = [1.5, -2, 0, 3.25];
  const r = parseSample(buf({ id: 'b', input: { features_b64: encodeFloat32Base64(values) } }), null, spec);
  assert.ok(r.ok && r.sample.input.kind === 'features');
  assert.deepEqual(Array.from(r.sample.input.values), values);
});

test('an embedding input skips the encoder and must have the embedding dimension', () => {
  const r = parseSample(buf({ id: 'e', input: { embedding: [1, 0, 0] } }), null, spec);
  assert.ok(r.ok);
  assert.equal(r.sample.input.kind, 'embedding');
  assert.equal(code(buf({ id: 'e', input: { embedding: [1, 0, 0, 0] } })), 'QUALM_WRONG_LENGTH');
});

test('every kind of bad input gets its own code', () => {
  assert.equal(code(null), 'QUALM_EMPTY');
  assert.equal(code(buf('{"id":"x","input":{"features":[1,2')), 'QUALM_BAD_JSON');
  assert.equal(code(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 'QUALM_BAD_JSON');
  assert.equal(code(buf('{"id":"x","input":{"features":[NaN,1,2,3]}}')), 'QUALM_NON_FINITE');
  assert.equal(code(buf('{"id":"x","input":{"features":[1,-Infinity,2,3]}}')), 'QUALM_NON_FINITE');
  assert.equal(code(buf({ id: 'x', input: { features: [1, null, 2, 3] } })), 'QUALM_NON_FINITE');
  assert.equal(code(buf({ id: 'x', input: { features_b64: encodeFloat32Base64([1, NaN, 2, 3]) } })), 'QUALM_NON_FINITE');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3] } })), 'QUALM_WRONG_LENGTH');
  assert.equal(code(buf({ id: 'x', input: { features: [0, 1, 2, 0.5] } }), null, { ...spec, valueRange: [0, 1] }), 'QUALM_OUT_OF_RANGE');
  assert.equal(code(buf({ input: { features: [1, 2, 3, 4] } })), 'QUALM_MISSING_ID');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4] }, pad: 'y'.repeat(400) })), 'QUALM_OVERSIZE');
  assert.equal(code(buf([1, 2])), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: { features: [1, '2', 3, 4] } })), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: {} })), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4], embedding: [1, 0, 0] } })), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4] }, meta: 'no' })), 'QUALM_BAD_SCHEMA');
  assert.equal(code(buf({ id: 'x', input: { text: 'hello' } })), 'QUALM_UNSUPPORTED_INPUT');
  assert.equal(code(buf({ id: 'x', input: { text: ' \n\t ' } }), null, textSpec), 'QUALM_EMPTY_TEXT');
  assert.equal(code(buf({ id: 'x', input: { text: 'é'.repeat(21) } }), null, textSpec), 'QUALM_TEXT_TOO_LONG');
  assert.equal(code(buf({ id: 'x', input: { embedding: [0, 0, 0] } })), 'QUALM_ZERO_EMBEDDING');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4] }, prediction: { probs: [0.5, 0.6] } })), 'QUALM_BAD_PREDICTION');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4] }, meta: { a: { b: 1 } } }), null, { ...spec, maxMetaDepth: 1 }), 'QUALM_META_TOO_DEEP');
  assert.equal(code(buf({ id: 'x', input: { features: [1, 2, 3, 4] }, meta: { a: 'long' } }), null, { ...spec, maxMetaBytes: 8 }), 'QUALM_META_TOO_LARGE');
  const header = messageFormat({ [INPUT_FORMAT_HEADER]: Buffer.from('png') }, 'json');
  assert.ok(typeof header !== 'string');
  seen.add(header.code);
  // INPUT_ERROR_CODES (the DLQ codes the metrics export from the start) is exactly this set and
  // the image codes, which the image preprocessing gives (test/unit/encoder/image-preprocess.test.ts).
  assert.deepEqual([...seen, ...IMAGE_ERROR_CODES].sort(), [...INPUT_ERROR_CODES].sort());
});

test('regression: raw 0..255 pixels sent to a model that declares [0, 1] go to the DLQ as QUALM_OUT_OF_RANGE (they were scored as confident)', () => {
  const unit: InputSpec = { ...spec, valueRange: [0, 1] };
  const failure = (input: Record<string, unknown>, s: InputSpec = unit): string => {
    const r = parseSample(buf({ id: 'p', input }), null, s);
    assert.ok(!r.ok, JSON.stringify(input));
    assert.equal(r.code, 'QUALM_OUT_OF_RANGE');
    return r.message;
  };
  // The index, the value, the range, and the hint, on both the JSON array and the base64 fast path.
  const hint = /input\.features\[1\] is 183, outside the model's value range \[0, 1\]; the values run 0\.\.255, like raw 0\.\.255 pixels: divide them by 255 before sending$/;
  assert.match(failure({ features: [0, 183, 255, 12] }), hint);
  assert.match(failure({ features_b64: encodeFloat32Base64([0, 183, 255, 12]) }), new RegExp(hint.source.replace('input\\.features', 'input\\.features_b64')));
  // Below the range, or far above 255: no pixel hint.
  assert.equal(failure({ features: [0.5, -0.25, 0, 1] }), "input.features[1] is -0.25, outside the model's value range [0, 1]");
  assert.equal(failure({ features: [0.5, 300, 0, 1] }), "input.features[1] is 300, outside the model's value range [0, 1]");
  assert.equal(failure({ features: [0.5, 1.5, 0, 1] }), "input.features[1] is 1.5, outside the model's value range [0, 1]", 'fractions are not raw pixels');
  // Another unit-size range gets a hint that names it.
  assert.match(failure({ features: [0, 1, 2, 200] }, { ...spec, valueRange: [-1, 1] }), /input\.features\[2\] is 2, .*\[-1, 1\]; .*scale them into \[-1, 1\] before sending$/);
  assert.equal(failure({ features: [10, 5, 300, 0] }, { ...spec, valueRange: [0, 255] }), "input.features[2] is 300, outside the model's value range [0, 255]");

  // In range: the bounds themselves are inside (closed), on both paths.
  for (const input of [{ features: [0, 1, 0.5, 0.1] }, { features_b64: encodeFloat32Base64([0, 1, 0.5, 0.1]) }]) {
    const r = parseSample(buf({ id: 'p', input }), null, unit);
    assert.ok(r.ok && r.sample.input.kind === 'features');
  }
  // Bounds are compared as float32, as the values are: a declared 0.1 admits the float32 0.1 (0.10000000149...).
  const tenth: InputSpec = { ...spec, valueRange: [-0.1, 0.1] };
  assert.ok(parseSample(buf({ id: 'p', input: { features: [0.1, -0.1, 0, 0.05] } }), null, tenth).ok);
  assert.ok(parseSample(buf({ id: 'p', input: { features_b64: encodeFloat32Base64([0.1, -0.1, 0, 0.05]) } }), null, tenth).ok);
  assert.equal(failure({ features: [0.1001, 0, 0, 0] }, tenth), "input.features[0] is 0.1001, outside the model's value range [-0.1, 0.1]");
  // Without a range, any finite value passes as before; NaN is still QUALM_NON_FINITE with a range.
  assert.ok(parseSample(buf({ id: 'p', input: { features: [0, 183, 255, 12] } }), null, spec).ok);
  assert.equal(code(buf({ id: 'p', input: { features_b64: encodeFloat32Base64([0.5, NaN, 0, 0]) } }), null, unit), 'QUALM_NON_FINITE');
  // The range bounds features, not an upstream embedding.
  assert.ok(parseSample(buf({ id: 'p', input: { embedding: [5, 0, 0] } }), null, unit).ok);
});

test('failure messages are readable and specific', () => {
  const r = parseSample(buf({ id: 'x', input: { features: [1, 2, 3] } }), null, spec);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.message, 'input.features has 3 values, the model expects 4');
});

test('a text model takes input.text, passed through as given', () => {
  const r = parseSample(buf({ id: 't-1', input: { text: '  A fine film, <br />really.\n' }, meta: { src: 'imdb' } }), null, textSpec);
  assert.ok(r.ok);
  assert.deepEqual(r.sample.input, { kind: 'text', text: '  A fine film, <br />really.\n' });
  assert.deepEqual(r.sample.meta, { src: 'imdb' });
  // An upstream embedding is still accepted, and the Kafka key is still the fallback id.
  const e = parseSample(buf({ input: { embedding: [0, 1, 0] } }), Buffer.from('k'), textSpec);
  assert.ok(e.ok && e.sample.id === 'k' && e.sample.input.kind === 'embedding');
});

test('bad text inputs get their codes and say what is wrong', () => {
  const failure = (input: unknown): [string, string] => {
    const r = parseSample(buf({ id: 'x', input }), null, textSpec);
    assert.equal(r.ok, false, JSON.stringify(input));
    return r.ok ? ['', ''] : [r.code, r.message];
  };
  assert.deepEqual(failure({ text: 42 }), ['QUALM_BAD_SCHEMA', 'input.text must be a string, got number']);
  assert.deepEqual(failure({ text: ['a', 'b'] }), ['QUALM_BAD_SCHEMA', 'input.text must be a string, got array']);
  assert.deepEqual(failure({ text: null }), ['QUALM_BAD_SCHEMA', 'input.text must be a string, got null']);
  assert.deepEqual(failure({ text: { en: 'hi' } }), ['QUALM_BAD_SCHEMA', 'input.text must be a string, got object']);
  assert.deepEqual(failure({ text: '' }), ['QUALM_EMPTY_TEXT', 'input.text is empty']);
  assert.deepEqual(failure({ text: '\u00a0 \r\n' }), ['QUALM_EMPTY_TEXT', 'input.text is only whitespace']);
  // The limit counts UTF-8 bytes, not characters: 20 two-byte characters fit in 40 bytes, 21 do not.
  assert.equal(parseSample(buf({ id: 'x', input: { text: 'é'.repeat(20) } }), null, textSpec).ok, true);
  assert.deepEqual(failure({ text: 'é'.repeat(21) }), ['QUALM_TEXT_TOO_LONG', 'input.text is 42 bytes of UTF-8, the limit is 40']);
  assert.deepEqual(failure({ features: [1, 2, 3, 4] }), [
    'QUALM_UNSUPPORTED_INPUT',
    'input kind features is not accepted by this model (it takes text, or embedding)',
  ]);
  assert.deepEqual(failure({}), ['QUALM_BAD_SCHEMA', 'input must hold one of text or embedding']);
  assert.deepEqual(failure({ text: 'a', embedding: [1, 0, 0] }), ['QUALM_BAD_SCHEMA', 'input must hold exactly one kind, got embedding, text']);
});

test('the default text limit is MAX_TEXT_BYTES', () => {
  const spec64k: InputSpec = { inputKind: 'text', embeddingDim: 3, maxBytes: 1_000_000 };
  assert.equal(parseSample(buf({ id: 'x', input: { text: 'a'.repeat(MAX_TEXT_BYTES) } }), null, spec64k).ok, true);
  const r = parseSample(buf({ id: 'x', input: { text: 'a'.repeat(MAX_TEXT_BYTES + 1) } }), null, spec64k);
  assert.ok(!r.ok && r.code === 'QUALM_TEXT_TOO_LONG');
});

test('an image model takes input.image_b64 as strict base64, decoded to the bytes', () => {
  const r = parseSample(buf({ id: 'i-1', input: { image_b64: PNG_BYTES.toString('base64') }, meta: { cam: 3 } }), null, imageSpec);
  assert.ok(r.ok && r.sample.input.kind === 'image');
  assert.deepEqual(r.sample.input.bytes, PNG_BYTES);
  assert.deepEqual(r.sample.meta, { cam: 3 });
  const failure = (input: unknown, s: InputSpec = imageSpec): [string, string] => {
    const f = parseSample(buf({ id: 'x', input }), null, s);
    assert.equal(f.ok, false, JSON.stringify(input));
    return f.ok ? ['', ''] : [f.code, f.message];
  };
  const strict = 'input.image_b64 must be standard base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters)';
  assert.deepEqual(failure({ image_b64: '' }), ['QUALM_BAD_SCHEMA', 'input.image_b64 is empty']);
  assert.deepEqual(failure({ image_b64: 42 }), ['QUALM_BAD_SCHEMA', 'input.image_b64 must be a base64 string, got number']);
  assert.deepEqual(failure({ image_b64: 'iVBORw0KGgo' }), ['QUALM_BAD_SCHEMA', strict], 'unpadded');
  assert.deepEqual(failure({ image_b64: 'iVBO Rw0K' }), ['QUALM_BAD_SCHEMA', strict], 'whitespace');
  assert.deepEqual(failure({ image_b64: '-_8A' }), ['QUALM_BAD_SCHEMA', strict], 'url-safe alphabet');
  assert.deepEqual(failure({}), ['QUALM_BAD_SCHEMA', 'input must hold one of image_b64 or embedding']);
  assert.deepEqual(failure({ features: [1, 2, 3, 4] }), ['QUALM_UNSUPPORTED_INPUT', 'input kind features is not accepted by this model (it takes image_b64, or embedding)']);
  assert.deepEqual(failure({ image_b64: 'AAAA' }, spec), ['QUALM_UNSUPPORTED_INPUT', 'input kind image_b64 is not accepted by this model (it takes features or features_b64, or embedding)']);
  // An upstream embedding still skips the encoder.
  assert.ok(parseSample(buf({ id: 'e', input: { embedding: [0, 0, 1] } }), null, imageSpec).ok);
});

test('a raw image message: the value is the image, the Kafka key its id, no meta; oversize still applies', () => {
  const r = parseSample(PNG_BYTES, Buffer.from('img-9'), imageSpec, 'image');
  assert.ok(r.ok);
  assert.deepEqual(r.sample, { id: 'img-9', meta: undefined, input: { kind: 'image', bytes: PNG_BYTES } });
  assert.equal(code(PNG_BYTES, null, imageSpec, 'image'), 'QUALM_MISSING_ID');
  assert.equal(code(PNG_BYTES, Buffer.alloc(0), imageSpec, 'image'), 'QUALM_MISSING_ID');
  assert.equal(code(null, Buffer.from('k'), imageSpec, 'image'), 'QUALM_EMPTY');
  assert.equal(code(Buffer.alloc(301, 1), Buffer.from('k'), imageSpec, 'image'), 'QUALM_OVERSIZE');
  assert.equal(code(PNG_BYTES, Buffer.from('k'), spec, 'image'), 'QUALM_UNSUPPORTED_INPUT');
  assert.equal(code(PNG_BYTES, Buffer.from('x'.repeat(513)), imageSpec, 'image'), 'QUALM_BAD_SCHEMA');
  // The same bytes read as JSON are not JSON: the format decides.
  assert.equal(code(PNG_BYTES, Buffer.from('k'), imageSpec), 'QUALM_BAD_JSON');
});

test('messageFormat reads the qualm-input-format header, else the fallback; an unknown value is a DLQ verdict', () => {
  assert.equal(messageFormat(undefined, 'json'), 'json');
  assert.equal(messageFormat({}, 'image'), 'image');
  assert.equal(messageFormat({ other: 'image' }, 'json'), 'json');
  assert.equal(messageFormat({ [INPUT_FORMAT_HEADER]: Buffer.from('image') }, 'json'), 'image');
  assert.equal(messageFormat({ [INPUT_FORMAT_HEADER]: ' JSON ' }, 'image'), 'json');
  assert.equal(messageFormat({ [INPUT_FORMAT_HEADER]: [Buffer.from('image'), 'image'] }, 'json'), 'image');
  assert.deepEqual(messageFormat({ [INPUT_FORMAT_HEADER]: Buffer.from('png') }, 'json'), {
    ok: false,
    code: 'QUALM_BAD_INPUT_FORMAT',
    message: 'header qualm-input-format is "png", expected json or image',
  });
  const mixed = messageFormat({ [INPUT_FORMAT_HEADER]: ['json', 'image'] }, 'json');
  assert.ok(typeof mixed !== 'string' && mixed.code === 'QUALM_BAD_INPUT_FORMAT' && mixed.message.includes('"json", "image"'));
});

/** A JSON object `levels` deep: {"a":{"a":...{"a":1}}}. */
const nested = (levels: number): string => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

test('meta is refused past its depth (QUALM_META_TOO_DEEP) and size (QUALM_META_TOO_LARGE) limits, by default and as set', () => {
  const withMeta = (meta: string): Buffer => Buffer.from(`{"id":"m","input":{"features":[1,2,3,4]},"meta":${meta}}`);
  const big: InputSpec = { ...spec, maxBytes: 1_000_000 };
  assert.ok(parseSample(withMeta(nested(MAX_META_DEPTH)), null, big).ok, 'exactly the default depth');
  assert.equal(code(withMeta(nested(MAX_META_DEPTH + 1)), null, big), 'QUALM_META_TOO_DEEP');
  // The regression of a batch that stopped its partition: 5,000 levels, well under the size limit.
  assert.equal(code(withMeta(nested(5000)), null, big), 'QUALM_META_TOO_DEEP');
  assert.equal(code(withMeta('{"a":[[[1]]]}'), null, { ...big, maxMetaDepth: 3 }), 'QUALM_META_TOO_DEEP');
  assert.ok(parseSample(withMeta('{"a":[[1]]}'), null, { ...big, maxMetaDepth: 3 }).ok);
  const long = JSON.stringify({ note: 'x'.repeat(MAX_META_BYTES) });
  assert.equal(code(withMeta(long), null, big), 'QUALM_META_TOO_LARGE');
  assert.ok(parseSample(withMeta(long), null, { ...big, maxMetaBytes: long.length }).ok);
  assert.equal(code(withMeta(long), null, { ...big, maxMetaBytes: long.length - 1 }), 'QUALM_META_TOO_LARGE');
});

test('depthBeyond is the nesting depth of a JSON value, checked against a recursive reference on random values', () => {
  const reference = (v: unknown): number => (typeof v !== 'object' || v === null ? 0 : 1 + Math.max(0, ...(Array.isArray(v) ? v : Object.values(v)).map(reference)));
  const rnd = seededRandom(5);
  const make = (d: number): unknown => {
    const r = rnd();
    if (d === 0 || r < 0.25) return r < 0.1 ? null : Math.round(r * 100);
    if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => make(d - 1));
    return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, (_, i) => [`k${i}`, make(d - 1)]));
  };
  for (let t = 0; t < 300; t++) {
    const v = make(8);
    const d = reference(v);
    assert.equal(depthBeyond(v, 20), d, JSON.stringify(v));
    if (d > 0) assert.equal(depthBeyond(v, d - 1), d, 'gives up just past the limit');
  }
  assert.equal(depthBeyond(JSON.parse(nested(100_000)), 32), 33, 'a value far too deep for recursion costs no stack');
});
