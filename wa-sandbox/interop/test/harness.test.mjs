// End-to-end checks of client.mjs as a process, without a sandbox: dead ports,
// a silent server, bad arguments and stdin commands. Every child gets a short
// --timeout-ms, so no test can hang.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../lib/protocol.mjs';

const CLIENT = join(dirname(fileURLToPath(import.meta.url)), '..', 'client.mjs');
const tmpDirs = [];
after(() => {
  for (const d of tmpDirs) {
    rmSync(d, { recursive: true, force: true });
  }
});

function authDir() {
  const d = mkdtempSync(join(tmpdir(), 'wa-interop-test-'));
  tmpDirs.push(d);
  return join(d, 'auth');
}

/** A loopback port with nothing listening (bind, read the port, close). */
async function deadPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Accepts TCP connections and never answers (not even the HTTP upgrade). */
async function silentServer() {
  const sockets = new Set();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    close: () => {
      for (const s of sockets) {
        s.destroy();
      }
      server.close();
    },
  };
}

/**
 * Spawns client.mjs; resolves with { code, events, stderr } when it exits.
 * `onEvent(event, child)` may write commands to child.stdin.
 */
function runClient(args, { onEvent, stdinLines = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLIENT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const events = [];
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      let nl;
      while ((nl = stdout.indexOf('\n')) >= 0) {
        const line = stdout.slice(0, nl);
        stdout = stdout.slice(nl + 1);
        let event;
        try {
          event = JSON.parse(line);
        } catch {
          reject(new Error(`stdout line is not JSON: ${JSON.stringify(line)}`));
          return;
        }
        events.push(event);
        onEvent?.(event, child);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    for (const line of stdinLines) {
      child.stdin.write(`${line}\n`);
    }
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, events, stderr, rest: stdout }));
  });
}

describe('client.mjs', () => {
  it('reports a close and exits with code 4 when the sandbox port is dead', async () => {
    const port = await deadPort();
    const { code, events, rest } = await runClient([
      '--ws-url', `ws://127.0.0.1:${port}/ws/chat`, '--auth-dir', authDir(), '--timeout-ms', '20000', '--log-level', 'silent',
    ]);
    assert.equal(code, EXIT.CLOSED);
    assert.equal(rest, '', 'stdout ends with a complete line');
    assert.deepEqual(events[0], { event: 'connection', connection: 'connecting', attempt: 1 });
    const close = events.find((e) => e.event === 'connection' && e.connection === 'close');
    assert.ok(close, JSON.stringify(events));
    assert.equal(close.statusCode, 408, 'Baileys maps ECONNREFUSED to 408');
    assert.equal(close.willReconnect, false);
    assert.match(close.lastDisconnect.message, /ECONNREFUSED/);
    assert.deepEqual(events.at(-1), { event: 'exit', reason: 'connection closed', statusCode: 408 });
  });

  it('retries --reconnect times after a non-515 close, then gives up', async () => {
    const port = await deadPort();
    const { code, events } = await runClient([
      '--ws-url', `ws://127.0.0.1:${port}/ws/chat`, '--auth-dir', authDir(), '--timeout-ms', '20000', '--log-level', 'silent',
      '--reconnect', '1',
    ]);
    assert.equal(code, EXIT.CLOSED);
    const closes = events.filter((e) => e.event === 'connection' && e.connection === 'close');
    assert.deepEqual(closes.map((e) => [e.attempt, e.willReconnect]), [[1, true], [2, false]]);
  });

  it('exits with code 3 and a timeout event when the overall timeout runs out', async () => {
    const server = await silentServer();
    try {
      const { code, events, stderr } = await runClient([
        '--ws-url', `ws://127.0.0.1:${server.port}/ws/chat`, '--auth-dir', authDir(), '--timeout-ms', '1500', '--log-level', 'silent',
      ]);
      assert.equal(code, EXIT.TIMEOUT);
      assert.deepEqual(events.at(-1), { event: 'timeout', timeoutMs: 1500 });
      assert.match(stderr, /overall timeout of 1500 ms/);
    } finally {
      server.close();
    }
  });

  it('answers a bad command with an error event and quits on {"cmd":"quit"}', async () => {
    const server = await silentServer();
    try {
      const { code, events } = await runClient(
        ['--ws-url', `ws://127.0.0.1:${server.port}/ws/chat`, '--auth-dir', authDir(), '--timeout-ms', '20000', '--log-level', 'silent'],
        {
          stdinLines: [
            'this is not json',
            '{"cmd":"send_text","to":"1@s.whatsapp.net","text":"too early","ref":"r1"}',
            '{"cmd":"download_media","id":"nope"}',
          ],
          onEvent: (event, child) => {
            if (event.event === 'error' && event.cmd === 'download_media') {
              child.stdin.write('{"cmd":"quit","ref":"bye"}\n');
            }
          },
        },
      );
      assert.equal(code, EXIT.OK);
      const errors = events.filter((e) => e.event === 'error');
      assert.match(errors[0].message, /not JSON/);
      assert.equal(errors[1].cmd, 'send_text');
      assert.equal(errors[1].ref, 'r1');
      assert.match(errors[1].message, /not connected/);
      assert.match(errors[2].message, /no received message/);
      assert.deepEqual(events.at(-1), { event: 'exit', reason: 'quit', ref: 'bye' });
    } finally {
      server.close();
    }
  });

  it('exits with code 2 and a clear message on bad arguments', async () => {
    const { code, events, stderr } = await runClient(['--ws-url', 'ws://192.168.1.10:80/ws/chat', '--auth-dir', authDir()]);
    assert.equal(code, EXIT.USAGE);
    assert.deepEqual(events, []);
    assert.match(stderr, /^client\.mjs: --ws-url: host must be loopback/);
    assert.match(stderr, /usage: node client\.mjs/);
  });
});
