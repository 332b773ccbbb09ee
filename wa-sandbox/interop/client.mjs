#!/usr/bin/env node
// Baileys harness for wa-sandbox interop tests.
//
// Runs a real Baileys socket (the pinned npm version) against the sandbox and
// speaks JSON lines: events on stdout, commands on stdin, Baileys' own log on
// stderr. See README.md for the protocol and BAILEYS_NOTES.md for what Baileys
// expects from a server.
//
//   node client.mjs --ws-url ws://127.0.0.1:PORT/ws/chat --auth-dir /tmp/auth
import './lib/stdio.mjs';

import { createInterface } from 'node:readline';
import makeWASocket, {
  DisconnectReason,
  generateMessageIDV2,
  getContentType,
  jidNormalizedUser,
  normalizeMessageContent,
  proto,
  useMultiFileAuthState,
} from '@whiskeysockets/baileys';
import pino from 'pino';
import { describeMedia, downloadMedia, downloadWithBaileys, sandboxMediaAgent } from './lib/media.mjs';
import { encryptPollVote, PollBook, richFields } from './lib/rich.mjs';
import {
  CommandError,
  encodeEvent,
  EXIT,
  messageText,
  parseArgs,
  parseCommand,
  USAGE,
  UsageError,
} from './lib/protocol.mjs';

/** Delay before a --reconnect attempt, milliseconds. */
const RECONNECT_DELAY_MS = 1000;

let finishing = false;

function emit(event) {
  process.stdout.write(`${encodeEvent(event)}\n`);
}

function fail(message) {
  process.stderr.write(`client.mjs: ${message}\n`);
}

let config;
try {
  config = parseArgs(process.argv.slice(2), process.env);
} catch (err) {
  if (err instanceof UsageError) {
    fail(err.message);
    process.stderr.write(USAGE);
    process.exit(EXIT.USAGE);
  }
  throw err;
}
if (config.help) {
  process.stdout.write(USAGE);
  process.exit(EXIT.OK);
}

/** Routes Baileys' HTTPS media connections to the sandbox (--media-host), or undefined. */
const mediaAgent = config.mediaHost ? sandboxMediaAgent(config.mediaHost) : undefined;

const logger = pino({ level: config.logLevel }, pino.destination({ dest: 2, sync: true }));

/** The live socket; replaced on every (re)connect. */
let sock;
let isOpen = false;
/** 1 for the first socket, +1 per restart/reconnect. */
let attempt = 0;
let reconnectsLeft = config.reconnect;
let reconnectTimer;
/** Every message seen in messages.upsert, by id (for download_media). */
const seenMessages = new Map();
/** Messages we sent, by id: Baileys' getMessage for retry receipts. */
const sentMessages = new Map();
/** Polls sent or received, with their decrypted votes (lib/rich.mjs). */
const polls = new PollBook();

/** Our own account as a non-AD user JID (poll vote key material). */
function meNorm() {
  const id = auth.state.creds.me?.id;
  return id ? jidNormalizedUser(id) : undefined;
}

function finish(code, event) {
  if (finishing) {
    return;
  }
  finishing = true;
  clearTimeout(overallTimer);
  clearTimeout(reconnectTimer);
  try {
    // Reported as a last close event (willReconnect: false) before `event`.
    sock?.end(undefined);
  } catch {
    // the socket may already be gone
  }
  if (event) {
    emit(event);
  }
  // Let stdout drain before exiting so the last event is not lost.
  process.stdout.write('', () => process.exit(code));
}

const overallTimer = setTimeout(() => {
  fail(`overall timeout of ${config.timeoutMs} ms reached, exiting`);
  finish(EXIT.TIMEOUT, { event: 'timeout', timeoutMs: config.timeoutMs });
}, config.timeoutMs);

process.on('unhandledRejection', (err) => {
  // Baileys runs async stanza handlers from EventEmitter callbacks (e.g. the
  // `<success>` handler waiting on the prekey-count IQ); their failures surface
  // here. Report them instead of crashing: they explain a missing 'open'.
  fail(`unhandled rejection: ${err?.stack ?? err}`);
  emit({ event: 'error', source: 'unhandledRejection', message: String(err?.message ?? err), error: err });
});
process.on('uncaughtException', (err) => {
  fail(`uncaught exception: ${err?.stack ?? err}`);
  emit({ event: 'error', source: 'uncaughtException', message: String(err?.message ?? err) });
  finish(EXIT.INTERNAL);
});

let auth;
try {
  auth = await useMultiFileAuthState(config.authDir);
} catch (err) {
  fail(`cannot use auth dir ${JSON.stringify(config.authDir)}: ${err.message}`);
  process.exit(EXIT.USAGE);
}

function summarizeDisconnect(lastDisconnect) {
  const error = lastDisconnect?.error;
  return {
    message: error?.message ?? null,
    statusCode: error?.output?.statusCode ?? null,
    data: error?.data ?? null,
    date: lastDisconnect?.date ?? null,
  };
}

function onConnectionUpdate(update) {
  const { connection, lastDisconnect, qr, isNewLogin, receivedPendingNotifications } = update;
  if (qr) {
    emit({ event: 'qr', qr, attempt });
  }
  if (isNewLogin) {
    emit({ event: 'new_login', attempt });
  }
  if (connection === 'connecting') {
    emit({ event: 'connection', connection, attempt });
  }
  if (connection === 'open') {
    isOpen = true;
    reconnectsLeft = config.reconnect;
    // Not sock.user: Baileys spreads the socket object layer by layer, which
    // snapshots that getter at construction time (before <success lid=...>).
    emit({ event: 'connection', connection, attempt, me: auth.state.creds.me ?? null });
    if (config.pushName) {
      setPushName(sock, config.pushName).catch((err) => {
        emit({ event: 'error', source: 'push_name', message: err.message });
      });
    }
  }
  if (receivedPendingNotifications) {
    emit({ event: 'pending_notifications_done', attempt });
  }
  if (connection === 'close') {
    isOpen = false;
    const statusCode = lastDisconnect?.error?.output?.statusCode ?? null;
    const restart = statusCode === DisconnectReason.restartRequired;
    const reconnect =
      !restart && statusCode !== DisconnectReason.loggedOut && reconnectsLeft > 0 && !finishing;
    emit({
      event: 'connection',
      connection,
      attempt,
      statusCode,
      reason: statusCode === null ? null : (DisconnectReason[statusCode] ?? null),
      lastDisconnect: summarizeDisconnect(lastDisconnect),
      willReconnect: !finishing && (restart || reconnect),
    });
    if (finishing) {
      return;
    }
    if (restart) {
      // What every Baileys app does: after `<stream:error code="515"/>` open a
      // new socket with the same (now paired) auth state; it logs in.
      start();
    } else if (reconnect) {
      reconnectsLeft -= 1;
      reconnectTimer = setTimeout(start, RECONNECT_DELAY_MS);
    } else {
      finish(EXIT.CLOSED, { event: 'exit', reason: 'connection closed', statusCode });
    }
  }
}

/**
 * Gives the account a push name the way Baileys learns one (creds.update with
 * me.name; socket.js:558-571 then sends `<presence name=…/>`), then marks the
 * client available: chats.js:484-495 only sends `<presence type="available">`
 * with a name, and messages-recv.js:687-689 sends `type="inactive"` delivery
 * receipts until it has.
 */
async function setPushName(thisSock, name) {
  const me = auth.state.creds.me;
  if (me && me.name !== name) {
    thisSock.ev.emit('creds.update', { me: { ...me, name } });
  }
  await thisSock.sendPresenceUpdate('available');
}

function onMessagesUpsert({ messages, type }) {
  for (const msg of messages) {
    const id = msg.key?.id;
    if (id) {
      seenMessages.set(id, msg);
    }
    const content = normalizeMessageContent(msg.message);
    const media = describeMedia(msg);
    polls.remember(msg.key, content);
    emit({
      event: 'message',
      upsertType: type,
      from: msg.key?.remoteJid ?? null,
      participant: msg.key?.participant ?? null,
      id: id ?? null,
      fromMe: Boolean(msg.key?.fromMe),
      text: messageText(content),
      contentType: content ? (getContentType(content) ?? null) : null,
      pushName: msg.pushName ?? null,
      timestamp: msg.messageTimestamp ?? null,
      stubType: msg.messageStubType ?? null,
      stubParameters: msg.messageStubParameters ?? null,
      media: media
        ? {
            mediaType: media.mediaType,
            mimetype: media.media.mimetype ?? null,
            fileLength: media.media.fileLength ?? null,
            directPath: media.media.directPath ?? null,
          }
        : null,
      ...richFields(content),
    });
    if (content?.pollUpdateMessage) {
      // Baileys 6.7.24 leaves vote decryption to the app (process-message.js); do it the
      // documented way: decryptPollVote + updateMessageWithPollUpdate + aggregate.
      emit({ event: 'poll_vote', id: id ?? null, from: msg.key?.remoteJid ?? null, ...polls.applyReceived(msg, content, meNorm()) });
    }
  }
}

function onMessagesUpdate(updates) {
  for (const { key, update } of updates) {
    if (update?.status === undefined || update?.status === null) {
      continue;
    }
    emit({
      event: 'receipt',
      source: 'messages.update',
      id: key?.id ?? null,
      remoteJid: key?.remoteJid ?? null,
      participant: key?.participant ?? null,
      fromMe: Boolean(key?.fromMe),
      status: update.status,
      statusName: proto.WebMessageInfo.Status[update.status] ?? null,
      stubParameters: update.messageStubParameters ?? null,
    });
  }
}

function onMessageReceiptUpdate(updates) {
  for (const { key, receipt } of updates) {
    emit({
      event: 'receipt',
      source: 'message-receipt.update',
      id: key?.id ?? null,
      remoteJid: key?.remoteJid ?? null,
      participant: key?.participant ?? null,
      fromMe: Boolean(key?.fromMe),
      userJid: receipt?.userJid ?? null,
      receiptTimestamp: receipt?.receiptTimestamp ?? null,
      readTimestamp: receipt?.readTimestamp ?? null,
    });
  }
}

function start() {
  attempt += 1;
  isOpen = false;
  const thisSock = makeWASocket({
    waWebSocketUrl: config.wsUrl,
    auth: auth.state,
    logger,
    printQRInTerminal: false,
    syncFullHistory: false,
    shouldSyncHistoryMessage: () => false,
    fireInitQueries: config.fireInitQueries,
    ...(config.qrTimeoutMs ? { qrTimeout: config.qrTimeoutMs } : {}),
    ...(config.connectTimeoutMs ? { connectTimeoutMs: config.connectTimeoutMs } : {}),
    ...(config.queryTimeoutMs ? { defaultQueryTimeoutMs: config.queryTimeoutMs } : {}),
    getMessage: async (key) => sentMessages.get(key.id),
    ...(mediaAgent ? { fetchAgent: mediaAgent } : {}),
  });
  sock = thisSock;
  const current = (fn) => (arg) => {
    if (thisSock === sock) {
      fn(arg);
    }
  };
  thisSock.ev.on('creds.update', async (update) => {
    try {
      await auth.saveCreds();
    } catch (err) {
      emit({ event: 'error', source: 'saveCreds', message: err.message });
    }
    if (thisSock === sock && update && 'me' in update) {
      emit({ event: 'creds', me: auth.state.creds.me ?? null, registered: Boolean(auth.state.creds.registered) });
    }
  });
  thisSock.ev.on('connection.update', current(onConnectionUpdate));
  thisSock.ev.on('messages.upsert', current(onMessagesUpsert));
  thisSock.ev.on('messages.update', current(onMessagesUpdate));
  thisSock.ev.on('message-receipt.update', current(onMessageReceiptUpdate));
  thisSock.ev.on('presence.update', current(onPresenceUpdate));
  thisSock.ev.on('call', current(onCall));
}

// Presence and chat states: Baileys' presence.update {id, presences: {participant:
// {lastKnownPresence, lastSeen}}}, one event per participant.
function onPresenceUpdate({ id, presences }) {
  for (const [participant, p] of Object.entries(presences ?? {})) {
    emit({
      event: 'presence',
      id: id ?? null,
      participant,
      lastKnownPresence: p?.lastKnownPresence ?? null,
      lastSeen: p?.lastSeen ?? null,
    });
  }
}

// Calls: Baileys' call event, one per call stanza (offer, reject, terminate, ...).
function onCall(calls) {
  for (const c of calls ?? []) {
    emit({
      event: 'call',
      chatId: c.chatId ?? null,
      from: c.from ?? null,
      id: c.id ?? null,
      status: c.status ?? null,
      isVideo: c.isVideo ?? null,
    });
  }
}

async function runCommand(command) {
  const { cmd, ref } = command;
  switch (cmd) {
    case 'quit':
      finish(EXIT.OK, { event: 'exit', reason: 'quit', ref });
      return;
    case 'send_text': {
      if (!isOpen) {
        throw new CommandError('not connected (wait for {"event":"connection","connection":"open"})');
      }
      // linkPreview: null stops Baileys from fetching URLs found in the text.
      const msg = await sock.sendMessage(command.to, { text: command.text, linkPreview: null });
      sentMessages.set(msg.key.id, msg.message);
      emit({ event: 'sent', id: msg.key.id, to: msg.key.remoteJid, ref });
      return;
    }
    case 'send_image': {
      if (!isOpen) {
        throw new CommandError('not connected (wait for {"event":"connection","connection":"open"})');
      }
      if (!mediaAgent) {
        throw new CommandError('send_image needs --media-host (the harness never contacts a real media host)');
      }
      const content = { image: { url: command.path } };
      if (command.mimetype) {
        content.mimetype = command.mimetype;
      }
      if (command.caption !== undefined) {
        content.caption = command.caption;
      }
      const msg = await sock.sendMessage(command.to, content);
      sentMessages.set(msg.key.id, msg.message);
      const image = msg.message?.imageMessage ?? {};
      const hex = (b) => (b ? Buffer.from(b).toString('hex') : null);
      emit({
        event: 'sent',
        id: msg.key.id,
        to: msg.key.remoteJid,
        media: {
          mimetype: image.mimetype ?? null,
          fileLength: image.fileLength ?? null,
          directPath: image.directPath ?? null,
          url: image.url ?? null,
          fileSha256: hex(image.fileSha256),
          fileEncSha256: hex(image.fileEncSha256),
        },
        ref,
      });
      return;
    }
    case 'download_media': {
      const msg = seenMessages.get(command.id);
      if (!msg) {
        throw new CommandError(`no received message with id ${JSON.stringify(command.id)}`);
      }
      if (mediaAgent) {
        const result = await downloadWithBaileys(msg, mediaAgent);
        emit({ event: 'media', id: command.id, ...result, ref });
        return;
      }
      if (!config.mediaBase) {
        throw new CommandError('download_media needs --media-base (the harness never contacts mmg.whatsapp.net)');
      }
      const result = await downloadMedia(msg, config.mediaBase);
      emit({ event: 'media', id: command.id, ...result, ref });
      return;
    }
    case 'send_presence': {
      if (!isOpen) {
        throw new CommandError('not connected (wait for {"event":"connection","connection":"open"})');
      }
      await sock.sendPresenceUpdate(command.type, command.to);
      emit({ event: 'presence_sent', type: command.type, to: command.to ?? null, ref });
      return;
    }
    case 'presence_subscribe': {
      if (!isOpen) {
        throw new CommandError('not connected (wait for {"event":"connection","connection":"open"})');
      }
      await sock.presenceSubscribe(command.to);
      emit({ event: 'subscribed', to: command.to, ref });
      return;
    }
    case 'reject_call': {
      if (!isOpen) {
        throw new CommandError('not connected (wait for {"event":"connection","connection":"open"})');
      }
      await sock.rejectCall(command.id, command.to);
      emit({ event: 'call_rejected', id: command.id, to: command.to, ref });
      return;
    }
    case 'send_reaction':
    case 'send_edit':
    case 'send_revoke':
    case 'send_poll':
    case 'vote_poll':
      await sendRich(command);
      return;
    case 'poll_tally':
      emit({ event: 'poll_tally', pollId: command.target, tally: polls.tally(command.target, meNorm()), ref });
      return;
    default:
      throw new CommandError(`unhandled cmd ${cmd}`);
  }
}

/**
 * Reactions, edits, revokes and polls with Baileys' own `sendMessage` content (`react`,
 * `edit`, `delete`, `poll`); poll votes, which Baileys 6.7.24 cannot build, encrypted by
 * lib/rich.mjs and sent with `relayMessage` plus `<meta polltype="vote"/>` (as whatsmeow's
 * send.go does). Emits `sent` with the message id.
 */
async function sendRich(command) {
  const { cmd, ref } = command;
  if (!isOpen) {
    throw new CommandError('not connected (wait for {"event":"connection","connection":"open"})');
  }
  const targetKey = () => ({
    remoteJid: command.to,
    fromMe: Boolean(command.fromMe),
    id: command.target,
    ...(command.participant ? { participant: command.participant } : {}),
  });
  let content;
  switch (cmd) {
    case 'send_reaction':
      content = { react: { text: command.emoji, key: targetKey() } };
      break;
    case 'send_edit':
      content = { text: command.text, edit: { ...targetKey(), fromMe: true }, linkPreview: null };
      break;
    case 'send_revoke':
      content = { delete: targetKey() };
      break;
    case 'send_poll':
      content = { poll: { name: command.name, values: command.options, selectableCount: command.selectable } };
      break;
    case 'vote_poll': {
      const poll = polls.polls.get(command.target);
      if (!poll) {
        throw new CommandError(`vote_poll: no poll with id ${JSON.stringify(command.target)}`);
      }
      const me = meNorm();
      const chat = poll.key.remoteJid;
      const vote = encryptPollVote(command.options, {
        pollEncKey: poll.message.messageContextInfo?.messageSecret,
        pollCreatorJid: PollBook.creatorOf(poll.key, me),
        pollMsgId: command.target,
        voterJid: me,
      });
      const message = {
        pollUpdateMessage: {
          pollCreationMessageKey: {
            remoteJid: chat,
            fromMe: Boolean(poll.key.fromMe),
            id: command.target,
            ...(poll.key.participant ? { participant: poll.key.participant } : {}),
          },
          vote,
          senderTimestampMs: Date.now(),
        },
      };
      const messageId = generateMessageIDV2(sock.user?.id);
      await sock.relayMessage(chat, message, {
        messageId,
        additionalNodes: [{ tag: 'meta', attrs: { polltype: 'vote' } }],
      });
      sentMessages.set(messageId, message);
      const result = polls.applyOwn(command.target, { remoteJid: chat, id: messageId }, command.options, me);
      emit({ event: 'sent', id: messageId, to: chat, ref });
      emit({ event: 'poll_vote', id: messageId, from: chat, own: true, ...result });
      return;
    }
    default:
      throw new CommandError(`unhandled cmd ${cmd}`);
  }
  const msg = await sock.sendMessage(command.to, content);
  sentMessages.set(msg.key.id, msg.message);
  if (cmd === 'send_poll') {
    polls.remember(msg.key, msg.message);
  }
  emit({ event: 'sent', id: msg.key.id, to: msg.key.remoteJid, ref });
}

const stdin = createInterface({ input: process.stdin, crlfDelay: Infinity });
stdin.on('line', (line) => {
  let command;
  try {
    command = parseCommand(line);
  } catch (err) {
    emit({ event: 'error', source: 'command', message: err.message, line });
    return;
  }
  if (!command) {
    return;
  }
  runCommand(command).catch((err) => {
    emit({ event: 'error', source: 'command', cmd: command.cmd, message: err.message, ref: command.ref });
  });
});
stdin.on('close', () => {
  // A test may spawn us with stdin closed; keep running until quit, a final
  // close or the overall timeout.
  logger.debug('stdin closed; no more commands');
});

start();
