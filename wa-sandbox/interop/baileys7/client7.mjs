#!/usr/bin/env node
// Baileys 7.0.0-rc14 harness (pinned in this directory's package.json, a sibling of the
// 6.7.24 harness `../client.mjs`) for the app-state interop test (issue 11): a companion
// on a sandbox account that performs `chatModify` (archive, mute, mark read) and reports
// the chat updates Baileys decoded from other devices' patches.
//
// JSON lines: events on stdout, commands on stdin, Baileys' log on stderr.
//
//   node client7.mjs --ws-url ws://127.0.0.1:PORT/ws/chat --auth-dir DIR --cert-root B64
//
// Baileys 7 checks the server's certificate chain against its built-in WhatsApp root
// (`Defaults` `WA_CERT_DETAILS.PUBLIC_KEY`, read at handshake time); --cert-root replaces
// the bytes of that key in this process with the sandbox's root, so the chain check runs
// unchanged against the sandbox. Only loopback URLs are accepted.
//
// Events: {event:"qr",qr}, {event:"connection",connection,me?,statusCode?},
//   {event:"chats_update",updates:[{id,archived?,muteEndTime?,unreadCount?,pinned?}]},
//   {event:"app_state_key",keyId} (the phone's key share arrived),
//   {event:"app_state_synced",names}, {event:"chat_modified",mod,jid,ref},
//   {event:"error",source,message,ref?}, {event:"exit"}
// Commands: {cmd:"resync_app_state",ref}, {cmd:"chat_modify",mod:"archive"|"mute"|"read"
//   |"unread",jid,ref}, {cmd:"quit"}
import '../lib/stdio.mjs';

import { createInterface } from 'node:readline';
import makeWASocket, { DisconnectReason, useMultiFileAuthState } from 'baileys';
import { WA_CERT_DETAILS } from 'baileys/lib/Defaults/index.js';
import pino from 'pino';

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) {
    return process.argv[i + 1];
  }
  if (fallback === undefined) {
    process.stderr.write(`client7.mjs: --${name} is required\n`);
    process.exit(2);
  }
  return fallback;
}

const wsUrl = arg('ws-url');
const authDir = arg('auth-dir');
const certRoot = Buffer.from(arg('cert-root'), 'base64');
const logLevel = arg('log-level', 'warn');
const { hostname } = new URL(wsUrl);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) {
  process.stderr.write(`client7.mjs: refusing non-loopback URL ${wsUrl}\n`);
  process.exit(2);
}
if (certRoot.length !== 32 || WA_CERT_DETAILS.PUBLIC_KEY.length !== 32) {
  process.stderr.write('client7.mjs: --cert-root must be 32 bytes (base64)\n');
  process.exit(2);
}
WA_CERT_DETAILS.PUBLIC_KEY.set(certRoot);

const logger = pino({ level: logLevel }, pino.destination({ dest: 2, sync: true }));
const auth = await useMultiFileAuthState(authDir);
let sock;

process.on('unhandledRejection', (err) => {
  emit({ event: 'error', source: 'unhandledRejection', message: String(err?.message ?? err) });
});

function connect() {
  const thisSock = makeWASocket({
    waWebSocketUrl: wsUrl,
    auth: auth.state,
    logger,
    syncFullHistory: false,
    // The history blob lives on the sandbox media host (plain HTTP here); the test needs
    // app state only, which `resync_app_state` fetches.
    shouldSyncHistoryMessage: () => false,
    fireInitQueries: false,
    markOnlineOnConnect: false,
  });
  sock = thisSock;
  thisSock.ev.on('creds.update', async (update) => {
    await auth.saveCreds();
    if (update?.myAppStateKeyId) {
      emit({ event: 'app_state_key', keyId: update.myAppStateKeyId });
    }
  });
  thisSock.ev.on('connection.update', (u) => {
    if (thisSock !== sock) {
      return;
    }
    if (u.qr) {
      emit({ event: 'qr', qr: u.qr });
    }
    if (u.connection === 'open') {
      emit({ event: 'connection', connection: 'open', me: auth.state.creds.me ?? null });
    }
    if (u.connection === 'close') {
      const statusCode = u.lastDisconnect?.error?.output?.statusCode;
      emit({ event: 'connection', connection: 'close', statusCode });
      if (statusCode === DisconnectReason.restartRequired) {
        connect();
      }
    }
  });
  thisSock.ev.on('chats.update', (updates) => {
    emit({
      event: 'chats_update',
      updates: updates.map(({ id, archived, muteEndTime, unreadCount, pinned }) => ({
        id,
        archived,
        muteEndTime,
        unreadCount,
        pinned,
      })),
    });
  });
}

async function run(c) {
  switch (c.cmd) {
    case 'quit':
      sock?.end(undefined);
      emit({ event: 'exit' });
      process.stdout.write('', () => process.exit(0));
      return;
    case 'resync_app_state': {
      const names = ['critical_block', 'critical_unblock_low', 'regular_high', 'regular_low', 'regular'];
      await sock.resyncAppState(names, true);
      emit({ event: 'app_state_synced', names, ref: c.ref });
      return;
    }
    case 'chat_modify': {
      let mod;
      switch (c.mod) {
        case 'archive':
          mod = { archive: true, lastMessages: [] };
          break;
        case 'mute':
          mod = { mute: Date.now() + 8 * 60 * 60 * 1000 };
          break;
        case 'read':
          mod = { markRead: true, lastMessages: [] };
          break;
        case 'unread':
          mod = { markRead: false, lastMessages: [] };
          break;
        default:
          throw new Error(`unknown mod ${c.mod}`);
      }
      await sock.chatModify(mod, c.jid);
      emit({ event: 'chat_modified', mod: c.mod, jid: c.jid, muteEnd: mod.mute, ref: c.ref });
      return;
    }
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let c;
  try {
    c = JSON.parse(line);
  } catch (err) {
    emit({ event: 'error', source: 'command', message: `not JSON: ${err.message}` });
    return;
  }
  run(c).catch((err) => {
    emit({ event: 'error', source: 'command', cmd: c.cmd, message: String(err?.message ?? err), ref: c.ref });
  });
});
rl.on('close', () => process.exit(0));

connect();
