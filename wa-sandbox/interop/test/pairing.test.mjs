// The harness against test/fake-server.mjs: QR → scan → pair-success → 515 →
// login → open, plus the certificate check. This pins the behaviour that
// BAILEYS_NOTES.md describes, using the installed Baileys.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getBinaryNodeChild, getBinaryNodeChildren } from '@whiskeysockets/baileys';
import { EXIT } from '../lib/protocol.mjs';
import { FakeServer } from './support/fake-server.mjs';

const CLIENT = join(dirname(fileURLToPath(import.meta.url)), '..', 'client.mjs');
const tmpDirs = [];
after(() => {
  for (const d of tmpDirs) {
    rmSync(d, { recursive: true, force: true });
  }
});

function authDir() {
  const d = mkdtempSync(join(tmpdir(), 'wa-interop-pair-'));
  tmpDirs.push(d);
  return join(d, 'auth');
}

/** Runs the harness; `onEvent(event, child)` drives it. Resolves on exit. */
function runClient(args, onEvent) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLIENT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const events = [];
    let buf = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const event = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        events.push(event);
        Promise.resolve(onEvent(event, child)).catch(reject);
      }
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, events, stderr }));
  });
}

const stanzas = (server, n) => server.transcript.filter((t) => t.n === n).map((t) => t.node);

describe('pairing against the fake server', () => {
  it('shows a QR, pairs, restarts on 515 and reaches open', async () => {
    const server = new FakeServer();
    const upgrades = [];
    server.on('connection', (c) => upgrades.push(c));
    const url = await server.listen();
    try {
      let scanned = false;
      const { code, events, stderr } = await runClient(
        ['--ws-url', url, '--auth-dir', authDir(), '--timeout-ms', '60000', '--log-level', 'warn'],
        async (event, child) => {
          if (event.event === 'qr' && !scanned) {
            scanned = true;
            await server.scan(event.qr);
          }
          if (event.event === 'connection' && event.connection === 'open') {
            // Let the post-open IQs (props, blocklist, privacy) reach the server.
            setTimeout(() => child.stdin.write('{"cmd":"quit"}\n'), 300);
          }
        },
      );
      assert.equal(code, EXIT.OK, stderr);

      // WebSocket upgrade: path kept, Origin set by Baileys.
      assert.equal(upgrades.length, 2);
      assert.equal(upgrades[0].url, '/ws/chat');
      assert.equal(upgrades[0].headers.origin, 'https://web.whatsapp.com');

      // QR: exactly 4 comma-separated fields, first is the first <ref>.
      const qr = events.find((e) => e.event === 'qr');
      const fields = qr.qr.split(',');
      assert.equal(fields.length, 4);
      assert.match(fields[0], /^2@fake-ref-1-/);
      assert.equal(Buffer.from(fields[1], 'base64').length, 32);
      assert.equal(Buffer.from(fields[2], 'base64').length, 32);
      assert.equal(Buffer.from(fields[3], 'base64').length, 32);

      // Registration payload, then login payload with the same noise key.
      const [reg, login] = server.payloads;
      assert.ok(reg.payload.devicePairingData, 'first connection registers');
      assert.equal(reg.payload.passive, false);
      assert.equal(reg.payload.pull, false);
      assert.equal(reg.payload.devicePairingData.eKeytype[0], 5);
      assert.equal(reg.payload.devicePairingData.eRegid.length, 4);
      assert.equal(reg.payload.devicePairingData.eSkeyId.length, 3);
      assert.equal(reg.payload.devicePairingData.eSkeySig.length, 64);
      assert.equal(String(login.payload.username), '15550001111');
      assert.equal(login.payload.device, 5);
      assert.equal(login.payload.passive, false, 'Baileys 6.7.24 logs in with passive=false');
      assert.equal(login.payload.pull, true);
      assert.ok(!login.payload.devicePairingData);
      assert.deepEqual(login.clientStatic, reg.clientStatic);
      assert.equal(login.payload.userAgent.platform, 14, 'UserAgent.Platform.WEB');
      assert.deepEqual([login.payload.userAgent.appVersion.primary, login.payload.userAgent.appVersion.secondary], [2, 3000]);
      assert.equal(login.payload.webInfo.webSubPlatform, 0, 'WEB_BROWSER');

      // Registration connection: pair-device ack, then the signed reply. Nothing else.
      const first = stanzas(server, 1);
      assert.deepEqual(first.map((n) => `${n.tag}/${n.attrs.type}`), ['iq/result', 'iq/result']);
      assert.equal(first[0].content, undefined, 'pair-device ack has no children');
      assert.deepEqual(server.pairReply, { keyIndex: '3', hasAccountSignatureKey: false, deviceSignatureValid: true, detailsUnchanged: true });

      // Events: creds with the paired JID, close 515 with restart, open on attempt 2.
      const creds = events.find((e) => e.event === 'creds' && e.me?.id);
      assert.equal(creds.me.id, '15550001111:5@s.whatsapp.net');
      const close = events.find((e) => e.event === 'connection' && e.connection === 'close');
      assert.equal(close.statusCode, 515);
      assert.equal(close.reason, 'restartRequired');
      assert.equal(close.willReconnect, true);
      const open = events.find((e) => e.event === 'connection' && e.connection === 'open');
      assert.equal(open.attempt, 2);
      assert.equal(open.me.id, '15550001111:5@s.whatsapp.net');
      assert.equal(open.me.lid, '100000000000001:5@lid', 'lid comes from <success lid>');

      // Login connection: count, prekey upload (30 keys), passive active — in that order — then the init queries.
      const second = stanzas(server, 2).filter((n) => n.tag === 'iq');
      const names = second.map((n) => `${n.attrs.xmlns}/${n.attrs.type}/${Array.isArray(n.content) ? n.content[0]?.tag : ''}`);
      assert.deepEqual(names.slice(0, 3), ['encrypt/get/count', 'encrypt/set/registration', 'passive/set/active']);
      const upload = second[1];
      assert.equal(getBinaryNodeChildren(getBinaryNodeChild(upload, 'list'), 'key').length, 30);
      assert.ok(getBinaryNodeChild(upload, 'skey'));
      const after = new Set(names.slice(3));
      for (const expected of ['w/get/props', 'blocklist/get/', 'privacy/get/privacy']) {
        assert.ok(after.has(expected), `${expected} sent after open; got ${[...after]}`);
      }
      // No presence: a fresh QR pairing has no push name (chats.js:485-490).
      assert.ok(!stanzas(server, 2).some((n) => n.tag === 'presence'));
    } finally {
      server.close();
    }
  });

  for (const [mode, why] of [
    ['no-issuer-serial', 'issuerSerial absent decodes as null, not 0'],
    ['wrong-issuer-serial', 'issuerSerial 7'],
  ]) {
    it(`closes with 400 "certification match failed" when the intermediate cert has ${why}`, async () => {
      const server = new FakeServer({ certMode: mode });
      const url = await server.listen();
      try {
        const { code, events } = await runClient(['--ws-url', url, '--auth-dir', authDir(), '--timeout-ms', '30000', '--log-level', 'silent'], () => {});
        assert.equal(code, EXIT.CLOSED);
        const close = events.find((e) => e.event === 'connection' && e.connection === 'close');
        assert.equal(close.statusCode, 400);
        assert.equal(close.lastDisconnect.message, 'certification match failed');
        assert.equal(server.payloads.length, 0, 'no ClientFinish is sent');
      } finally {
        server.close();
      }
    });
  }

  it('with --push-name announces the name and presence available after open', async () => {
    const server = new FakeServer();
    const url = await server.listen();
    try {
      let scanned = false;
      const { code, events } = await runClient(
        ['--ws-url', url, '--auth-dir', authDir(), '--timeout-ms', '30000', '--log-level', 'silent', '--push-name', 'Sandbox Bot'],
        async (event, child) => {
          if (event.event === 'qr' && !scanned) {
            scanned = true;
            await server.scan(event.qr);
          }
          if (event.event === 'connection' && event.connection === 'open') {
            setTimeout(() => child.stdin.write('{"cmd":"quit"}\n'), 300);
          }
        },
      );
      assert.equal(code, EXIT.OK);
      const presences = stanzas(server, 2).filter((n) => n.tag === 'presence').map((n) => n.attrs);
      assert.deepEqual(presences, [{ name: 'Sandbox Bot' }, { name: 'Sandbox Bot', type: 'available' }]);
      assert.ok(events.some((e) => e.event === 'creds' && e.me?.name === 'Sandbox Bot'));
    } finally {
      server.close();
    }
  });

  for (const countReply of ['error', 'empty']) {
    it(`never opens when the prekey-count IQ gets ${countReply === 'error' ? 'an error' : 'a result without <count>'}`, async () => {
      const server = new FakeServer({ countReply });
      const url = await server.listen();
      try {
        let scanned = false;
        const { code, events } = await runClient(
          ['--ws-url', url, '--auth-dir', authDir(), '--timeout-ms', '30000', '--log-level', 'silent'],
          async (event, child) => {
            if (event.event === 'qr' && !scanned) {
              scanned = true;
              await server.scan(event.qr);
            }
            if (event.event === 'error' && event.source === 'unhandledRejection') {
              setTimeout(() => child.stdin.write('{"cmd":"quit"}\n'), 300);
            }
          },
        );
        assert.equal(code, EXIT.OK);
        assert.ok(!events.some((e) => e.event === 'connection' && e.connection === 'open'), 'no open');
        const second = stanzas(server, 2).filter((n) => n.tag === 'iq');
        assert.deepEqual(second.map((n) => n.attrs.xmlns), ['encrypt'], 'nothing after the count IQ: no upload, no passive');
      } finally {
        server.close();
      }
    });
  }

  it('pairs even with a wrong accountSignature: Baileys 6.7.24 does not really verify it', async () => {
    const server = new FakeServer({ badAccountSignature: true });
    const url = await server.listen();
    try {
      let scanned = false;
      const { code, events } = await runClient(
        ['--ws-url', url, '--auth-dir', authDir(), '--timeout-ms', '30000', '--log-level', 'silent'],
        async (event, child) => {
          if (event.event === 'qr' && !scanned) {
            scanned = true;
            await server.scan(event.qr);
          }
          if (event.event === 'connection' && event.connection === 'open') {
            child.stdin.write('{"cmd":"quit"}\n');
          }
        },
      );
      assert.equal(code, EXIT.OK);
      assert.ok(events.some((e) => e.event === 'connection' && e.connection === 'open'));
      assert.equal(server.pairReply.deviceSignatureValid, true, 'its own device signature is still real');
    } finally {
      server.close();
    }
  });

  it('closes without replying when the pair-success HMAC is wrong', async () => {
    const server = new FakeServer({ badHmac: true });
    const url = await server.listen();
    try {
      let scanned = false;
      const { code, events } = await runClient(
        ['--ws-url', url, '--auth-dir', authDir(), '--timeout-ms', '30000', '--log-level', 'silent'],
        async (event) => {
          if (event.event === 'qr' && !scanned) {
            scanned = true;
            await server.scan(event.qr);
          }
        },
      );
      assert.equal(code, EXIT.CLOSED);
      const close = events.find((e) => e.event === 'connection' && e.connection === 'close');
      assert.equal(close.lastDisconnect.message, 'Invalid account signature');
      assert.equal(close.statusCode, 500);
      assert.equal(server.pairReply, undefined, 'no pair-device-sign reply, no error IQ');
      assert.equal(stanzas(server, 1).length, 1, 'only the pair-device ack was sent');
    } finally {
      server.close();
    }
  });
});
