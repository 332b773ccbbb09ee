// Rich messages for the harness (issue 13): reactions, edits, revokes and polls.
//
// Baileys 6.7.24 builds reactions (`{react}`), edits (`{edit}`), revokes (`{delete}`) and
// polls (`{poll}`) in `sendMessage`, but it has no builder for a poll *vote*, and its own
// vote decryption in processMessage is commented out (Utils/process-message.js): apps call
// `decryptPollVote` with the poll's message secret, keep one update per voter with
// `updateMessageWithPollUpdate` and count with `getAggregateVotesInPollMessage`. This module
// does exactly that with Baileys' exports, and encrypts our own votes as the inverse of
// `decryptPollVote` (same HMAC-based key derivation, AES-256-GCM with the same additional
// data); every vote built here is decrypted again with Baileys' `decryptPollVote` before it
// is sent, so the two can never disagree.

import { createHash, randomBytes } from 'node:crypto';
import {
  aesEncryptGCM,
  decryptPollVote,
  getAggregateVotesInPollMessage,
  getKeyAuthor,
  hmacSign,
  jidNormalizedUser,
  proto,
  updateMessageWithPollUpdate,
} from '@whiskeysockets/baileys';

/** The poll creation inside a (normalised) message, any of the three versions, or null. */
export function pollCreationOf(content) {
  return content?.pollCreationMessage ?? content?.pollCreationMessageV2 ?? content?.pollCreationMessageV3 ?? null;
}

/** Hex SHA-256 of an option name: what a vote carries. */
export function optionHashHex(name) {
  return createHash('sha256').update(Buffer.from(name)).digest('hex');
}

/**
 * What a reaction, edit, revoke, poll or poll vote carries, for a `message` event:
 * `reaction: {text, target}`, `protocol: {type, target, editedText}`,
 * `poll: {name, options, selectable}`, `pollUpdate: {target}`. Empty for anything else.
 */
export function richFields(content) {
  const out = {};
  if (!content) {
    return out;
  }
  if (content.reactionMessage) {
    out.reaction = { text: content.reactionMessage.text ?? '', target: content.reactionMessage.key?.id ?? null };
  }
  const p = content.protocolMessage;
  if (p) {
    const edited = p.editedMessage;
    out.protocol = {
      type: proto.Message.ProtocolMessage.Type[p.type] ?? p.type ?? null,
      target: p.key?.id ?? null,
      editedText: edited ? (edited.conversation ?? edited.extendedTextMessage?.text ?? null) : null,
    };
  }
  const poll = pollCreationOf(content);
  if (poll) {
    out.poll = {
      name: poll.name ?? null,
      options: (poll.options ?? []).map((o) => o.optionName ?? ''),
      selectable: poll.selectableOptionsCount ?? 0,
    };
  }
  if (content.pollUpdateMessage) {
    out.pollUpdate = { target: content.pollUpdateMessage.pollCreationMessageKey?.id ?? null };
  }
  return out;
}

/** The key of a vote message as encrypted: id, creator and voter JIDs (non-AD user JIDs). */
function voteSign(pollMsgId, pollCreatorJid, voterJid) {
  return Buffer.concat([
    Buffer.from(pollMsgId),
    Buffer.from(pollCreatorJid),
    Buffer.from(voterJid),
    Buffer.from('Poll Vote'),
    new Uint8Array([1]),
  ]);
}

/**
 * Encrypts a vote for `names` (option names): the inverse of Baileys' `decryptPollVote`.
 * Returns `{encPayload, encIv}`; throws if Baileys cannot decrypt it back to the same hashes.
 */
export function encryptPollVote(names, { pollEncKey, pollCreatorJid, pollMsgId, voterJid }) {
  const selectedOptions = names.map((n) => createHash('sha256').update(Buffer.from(n)).digest());
  const plain = proto.Message.PollVoteMessage.encode({ selectedOptions }).finish();
  const key0 = hmacSign(pollEncKey, new Uint8Array(32), 'sha256');
  const encKey = hmacSign(voteSign(pollMsgId, pollCreatorJid, voterJid), key0, 'sha256');
  const encIv = randomBytes(12);
  const aad = Buffer.from(`${pollMsgId}\u0000${voterJid}`);
  const encPayload = aesEncryptGCM(Buffer.from(plain), encKey, encIv, aad);
  const check = decryptPollVote({ encPayload, encIv }, { pollEncKey, pollCreatorJid, pollMsgId, voterJid });
  const got = (check.selectedOptions ?? []).map((h) => Buffer.from(h).toString('hex'));
  const want = selectedOptions.map((h) => h.toString('hex'));
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error('built poll vote does not decrypt with Baileys decryptPollVote');
  }
  return { encPayload, encIv };
}

/**
 * Polls this harness knows (sent or received), by message id, with Baileys' poll updates.
 * Each entry: `{key, message, pollUpdates}` (`message` carries `messageContextInfo.messageSecret`).
 */
export class PollBook {
  constructor() {
    /** @type {Map<string, {key: object, message: object, pollUpdates: object[]}>} */
    this.polls = new Map();
  }

  /** Remembers a poll creation message (`content` normalised) under its key. */
  remember(key, content) {
    if (!key?.id || !pollCreationOf(content)) {
      return false;
    }
    if (!this.polls.has(key.id)) {
      this.polls.set(key.id, { key: { ...key }, message: content, pollUpdates: [] });
    }
    return true;
  }

  /**
   * The creator of a poll as the vote key material names it: `getKeyAuthor` of the poll's
   * key, with our own normalised JID for our polls (Baileys' processMessage, commented out).
   */
  static creatorOf(pollKey, meNorm) {
    return jidNormalizedUser(getKeyAuthor(pollKey, meNorm));
  }

  /**
   * Applies a received vote message (`msg` as in messages.upsert, `content` normalised):
   * decrypts it with Baileys' `decryptPollVote` and keeps it with `updateMessageWithPollUpdate`.
   * Returns `{pollId, voter, selected (hex hashes), tally}` or `{pollId, error}`.
   */
  applyReceived(msg, content, meNorm) {
    const update = content.pollUpdateMessage;
    const creationKey = update.pollCreationMessageKey;
    const pollId = creationKey?.id ?? null;
    const poll = pollId ? this.polls.get(pollId) : undefined;
    if (!poll) {
      return { pollId, error: 'unknown poll' };
    }
    const voterJid = jidNormalizedUser(getKeyAuthor(msg.key, meNorm));
    let vote;
    try {
      vote = decryptPollVote(update.vote, {
        pollEncKey: poll.message.messageContextInfo?.messageSecret,
        pollCreatorJid: PollBook.creatorOf(poll.key, meNorm),
        pollMsgId: pollId,
        voterJid,
      });
    } catch (err) {
      return { pollId, voter: voterJid, error: `decryptPollVote: ${err.message}` };
    }
    // Baileys keeps one update per author; a fromMe key aggregates as meId.
    const key = { ...msg.key, participant: msg.key.fromMe ? undefined : voterJid };
    return this.record(pollId, key, vote, update.senderTimestampMs, meNorm, voterJid);
  }

  /** Records our own vote (already sent) the way Baileys would record it. */
  applyOwn(pollId, voteKey, names, meNorm) {
    const vote = { selectedOptions: names.map((n) => createHash('sha256').update(Buffer.from(n)).digest()) };
    return this.record(pollId, { ...voteKey, fromMe: true }, vote, Date.now(), meNorm, meNorm);
  }

  record(pollId, key, vote, senderTimestampMs, meNorm, voterJid) {
    const poll = this.polls.get(pollId);
    updateMessageWithPollUpdate(poll, { pollUpdateMessageKey: key, vote, senderTimestampMs });
    return {
      pollId,
      voter: voterJid,
      selected: (vote.selectedOptions ?? []).map((h) => Buffer.from(h).toString('hex')),
      tally: this.tally(pollId, meNorm),
    };
  }

  /** `getAggregateVotesInPollMessage` of a poll: `[{name, voters}]` in option order. */
  tally(pollId, meNorm) {
    const poll = this.polls.get(pollId);
    if (!poll) {
      return null;
    }
    return getAggregateVotesInPollMessage({ message: poll.message, pollUpdates: poll.pollUpdates }, meNorm).map(
      ({ name, voters }) => ({ name, voters: voters.map((v) => jidNormalizedUser(v)) }),
    );
  }
}
