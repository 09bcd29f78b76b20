import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SPAM_ASSASSIN_LABELS, loadSpamAssassin, mailBody } from '../../../src/datasets/index.js';

test('mailBody drops the header block (LF or CRLF) and trims', () => {
  assert.equal(mailBody('From a@b\nSubject: hi\n  continued\n\nHello,\n\nworld.\n'), 'Hello,\n\nworld.');
  assert.equal(mailBody('Subject: x\r\nTo: y\r\n\r\n  body\r\n'), 'body');
  assert.equal(mailBody('Subject: only headers\n'), '');
  assert.equal(mailBody('Subject: empty body\n\n \n'), '');
});

test('SpamAssassin: 6,046 bodies without headers, ham (0) and spam (1) by group', () => {
  const all = loadSpamAssassin();
  assert.equal(all.n, 6046);
  assert.deepEqual(all.labelNames, SPAM_ASSASSIN_LABELS);
  assert.equal(new Set(all.ids).size, all.n);
  assert.equal(all.ids[0], 'spam-assassin/easy-ham-1/00001');
  const spam = all.labels.reduce((a, b) => a + b, 0);
  assert.equal(spam, 500 + 1396);
  for (let i = 0; i < all.n; i++) {
    const text = all.texts[i] ?? '';
    assert.ok(text.length > 0 && text === text.trim(), `${all.ids[i]} has a trimmed body`);
    assert.equal(all.labels[i], (all.ids[i] ?? '').startsWith('spam-assassin/spam-') ? 1 : 0);
  }
  // Headers are gone: every raw message starts with them, but only one body does (spam-2/00403
  // carries a second header block in its body, as the corpus has it).
  const headed = all.ids.filter((_, i) => /^(Return-Path|Received|Delivered-To):/.test(all.texts[i] ?? ''));
  assert.deepEqual(headed, ['spam-assassin/spam-2/00403']);

  const spamOnly = loadSpamAssassin(['spam-1', 'spam-2']);
  assert.equal(spamOnly.n, spam);
  assert.equal(spamOnly.name, 'spam-assassin[spam-1,spam-2]');
  assert.ok(spamOnly.labels.every((l) => l === 1));
});
