import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

const QUOTE = 34;
const BACKSLASH = 92;

function skipWhitespace(text: string, i: number): number {
  let j = i;
  for (;;) {
    const c = text.charCodeAt(j);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) return j;
    j++;
  }
}

/** Index just past the closing quote of the JSON string that opens at `i`, or -1. */
function endOfString(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    let k = q - 1;
    while (text.charCodeAt(k) === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/**
 * A large JSON array of strings (a bundle's ids.json) parsed in slices, yielding to the event
 * loop between them, or undefined when the text is not such an array. Each slice is cut at an
 * element boundary and parsed by JSON.parse, which also checks every string's escapes.
 */
async function parseStringArraySliced(text: string, sliceChars: number): Promise<string[] | undefined> {
  const out: string[] = [];
  let i = skipWhitespace(text, 0);
  if (text[i] !== '[') return undefined;
  i = skipWhitespace(text, i + 1);
  if (text[i] === ']') return skipWhitespace(text, i + 1) === text.length ? out : undefined;
  let start = i;
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return undefined;
    const end = endOfString(text, i);
    if (end < 0) return undefined;
    i = skipWhitespace(text, end);
    const c = text[i];
    if (c !== ',' && c !== ']') return undefined;
    if (c === ']' || end - start >= sliceChars) {
      let part: unknown;
      try {
        part = JSON.parse(`[${text.slice(start, end)}]`);
      } catch {
        return undefined;
      }
      for (const s of part as string[]) out.push(s);
      if (c === ']') return skipWhitespace(text, i + 1) === text.length ? out : undefined;
      await yieldToEventLoop();
      start = skipWhitespace(text, i + 1);
    }
    i = skipWhitespace(text, i + 1);
  }
}

/**
 * JSON.parse that does not hold the event loop for long on a large array of strings (it is
 * parsed in slices of about `sliceChars` characters with a yield between them). Any other
 * document, or one that is not valid JSON, goes to JSON.parse whole, with its usual result
 * or error.
 */
export async function parseJsonYielding(text: string, sliceChars = 16 * 1024): Promise<unknown> {
  if (text.length > sliceChars) {
    const sliced = await parseStringArraySliced(text, sliceChars);
    if (sliced !== undefined) return sliced;
  }
  return JSON.parse(text) as unknown;
}
