// lib/rich.mjs against Baileys' own poll functions (no sandbox needed).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decryptPollVote } from '@whiskeysockets/baileys';
import { encryptPollVote, optionHashHex, PollBook, richFields } from '../lib/rich.mjs';

const ME = '15550000001@s.whatsapp.net';
const OTHER = '15550000002@s.whatsapp.net';

test('a built vote decrypts with Baileys decryptPollVote, and not for another voter', () => {
  const ctx = { pollEncKey: randomBytes(32), pollCreatorJid: OTHER, pollMsgId: 'POLL1', voterJid: ME };
  const vote = encryptPollVote(['b'], ctx);
  const got = decryptPollVote(vote, ctx);
  assert.deepEqual(got.selectedOptions.map((h) => Buffer.from(h).toString('hex')), [optionHashHex('b')]);
  assert.throws(() => decryptPollVote(vote, { ...ctx, voterJid: OTHER }));
});

test('the poll book keeps the latest vote per voter and aggregates like Baileys', () => {
  const book = new PollBook();
  const secret = randomBytes(32);
  const message = {
    messageContextInfo: { messageSecret: secret },
    pollCreationMessage: { name: 'q', options: [{ optionName: 'x' }, { optionName: 'y' }], selectableOptionsCount: 0 },
  };
  assert.ok(book.remember({ remoteJid: OTHER, fromMe: true, id: 'P' }, message));
  assert.equal(book.remember({ remoteJid: OTHER, id: 'T' }, { conversation: 'hi' }), false);
  const received = (names, id) => {
    const vote = encryptPollVote(names, { pollEncKey: secret, pollCreatorJid: ME, pollMsgId: 'P', voterJid: OTHER });
    const msg = { key: { remoteJid: OTHER, fromMe: false, id } };
    const content = { pollUpdateMessage: { pollCreationMessageKey: { remoteJid: OTHER, fromMe: true, id: 'P' }, vote } };
    return book.applyReceived(msg, content, ME);
  };
  let r = received(['x', 'y'], 'V1');
  assert.deepEqual(r.tally, [{ name: 'x', voters: [OTHER] }, { name: 'y', voters: [OTHER] }]);
  r = received(['y'], 'V2');
  assert.deepEqual(r.selected, [optionHashHex('y')]);
  assert.deepEqual(r.tally, [{ name: 'x', voters: [] }, { name: 'y', voters: [OTHER] }]);
  r = book.applyOwn('P', { remoteJid: OTHER, id: 'V3' }, ['x'], ME);
  assert.deepEqual(r.tally, [{ name: 'x', voters: [ME] }, { name: 'y', voters: [OTHER] }]);
  assert.equal(book.applyReceived({ key: { remoteJid: OTHER, id: 'V4' } },
    { pollUpdateMessage: { pollCreationMessageKey: { id: 'NOPE' }, vote: {} } }, ME).error, 'unknown poll');
});

test('rich fields name the target and content', () => {
  assert.deepEqual(richFields({ reactionMessage: { text: '', key: { id: 'A' } } }), { reaction: { text: '', target: 'A' } });
  assert.deepEqual(richFields({ protocolMessage: { type: 0, key: { id: 'B' } } }).protocol,
    { type: 'REVOKE', target: 'B', editedText: null });
  assert.deepEqual(richFields({ protocolMessage: { type: 14, key: { id: 'C' }, editedMessage: { conversation: 'new' } } }).protocol,
    { type: 'MESSAGE_EDIT', target: 'C', editedText: 'new' });
  assert.deepEqual(richFields({ conversation: 'x' }), {});
});

test('rich commands parse, and bad ones are refused', async () => {
  const { parseCommand, CommandError } = await import('../lib/protocol.mjs');
  const parse = (o) => parseCommand(JSON.stringify(o));
  assert.deepEqual(parse({ cmd: 'send_reaction', to: OTHER, target: 'A', emoji: '' }),
    { cmd: 'send_reaction', to: OTHER, target: 'A', fromMe: false, participant: undefined, emoji: '', ref: undefined });
  assert.equal(parse({ cmd: 'send_poll', to: OTHER, name: 'q', options: ['a', 'b'] }).selectable, 0);
  assert.deepEqual(parse({ cmd: 'vote_poll', target: 'P', options: [] }).options, []);
  for (const bad of [
    { cmd: 'send_reaction', to: OTHER, target: 'A' },
    { cmd: 'send_reaction', to: OTHER, target: 'A', emoji: 'x', fromMe: 'yes' },
    { cmd: 'send_edit', to: OTHER, target: 'A' },
    { cmd: 'send_poll', to: OTHER, name: 'q', options: ['a'], selectable: 2 },
    { cmd: 'send_poll', to: OTHER, name: 'q', options: [] },
    { cmd: 'vote_poll', target: 'P', options: [1] },
    { cmd: 'poll_tally' },
  ]) {
    assert.throws(() => parse(bad), CommandError, JSON.stringify(bad));
  }
});
