// Unit tests for the JSON-lines protocol helpers (no sockets, no Baileys).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CommandError,
  DEFAULT_TIMEOUT_MS,
  encodeEvent,
  isLoopbackHost,
  messageText,
  parseArgs,
  parseCommand,
  toJsonSafe,
  UsageError,
} from '../lib/protocol.mjs';

const BASE = ['--ws-url', 'ws://127.0.0.1:4000/ws/chat', '--auth-dir', '/tmp/a'];

describe('parseArgs', () => {
  it('accepts the minimal arguments and applies defaults', () => {
    const c = parseArgs(BASE, {});
    assert.equal(c.wsUrl, 'ws://127.0.0.1:4000/ws/chat');
    assert.equal(c.authDir, '/tmp/a');
    assert.equal(c.timeoutMs, DEFAULT_TIMEOUT_MS);
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.reconnect, 0);
    assert.equal(c.fireInitQueries, true);
    assert.equal(c.mediaBase, undefined);
  });

  it('reads --flag=value and space-separated forms alike', () => {
    const c = parseArgs(['--ws-url=ws://localhost:1/x', '--auth-dir=/d', '--timeout-ms=500', '--reconnect', '2'], {});
    assert.equal(c.wsUrl, 'ws://localhost:1/x');
    assert.equal(c.timeoutMs, 500);
    assert.equal(c.reconnect, 2);
  });

  it('falls back to environment variables, flags win', () => {
    const env = { WA_WS_URL: 'ws://127.0.0.2:9/ws', WA_AUTH_DIR: '/e', WA_HARNESS_TIMEOUT_MS: '900', WA_LOG_LEVEL: 'silent' };
    const c = parseArgs([], env);
    assert.equal(c.wsUrl, 'ws://127.0.0.2:9/ws');
    assert.equal(c.authDir, '/e');
    assert.equal(c.timeoutMs, 900);
    assert.equal(c.logLevel, 'silent');
    assert.equal(parseArgs(['--timeout-ms', '5'], env).timeoutMs, 5);
  });

  it('keeps --push-name verbatim', () => {
    assert.equal(parseArgs([...BASE, '--push-name', 'Sandbox Bot'], {}).pushName, 'Sandbox Bot');
    assert.equal(parseArgs(BASE, {}).pushName, undefined);
  });

  it('strips the trailing slash of --media-base', () => {
    const c = parseArgs([...BASE, '--media-base', 'http://127.0.0.1:8080/'], {});
    assert.equal(c.mediaBase, 'http://127.0.0.1:8080');
  });

  it('parses --media-host into host and port (also from WA_MEDIA_HOST)', () => {
    assert.deepEqual(parseArgs([...BASE, '--media-host', '127.0.0.1:4321'], {}).mediaHost, { host: '127.0.0.1', port: 4321 });
    assert.deepEqual(parseArgs(BASE, { WA_MEDIA_HOST: '[::1]:99' }).mediaHost, { host: '::1', port: 99 });
    assert.equal(parseArgs(BASE, {}).mediaHost, undefined);
  });

  it('returns help without requiring other arguments', () => {
    assert.deepEqual(parseArgs(['--help'], {}), { help: true });
  });

  const bad = [
    ['missing ws url', ['--auth-dir', '/a'], /missing --ws-url/],
    ['missing auth dir', ['--ws-url', 'ws://127.0.0.1:1/'], /missing --auth-dir/],
    ['non-loopback host', ['--ws-url', 'ws://10.0.0.1:1/', '--auth-dir', '/a'], /loopback/],
    ['public host', ['--ws-url', 'wss://web.whatsapp.com/ws/chat', '--auth-dir', '/a'], /loopback/],
    ['http scheme for ws url', ['--ws-url', 'http://127.0.0.1:1/', '--auth-dir', '/a'], /protocol/],
    ['garbage url', ['--ws-url', 'not a url', '--auth-dir', '/a'], /not a URL/],
    ['zero timeout', [...BASE, '--timeout-ms', '0'], /positive integer/],
    ['negative timeout', [...BASE, '--timeout-ms', '-5'], /positive integer/],
    ['fractional timeout', [...BASE, '--timeout-ms', '1.5'], /positive integer/],
    ['unknown flag', [...BASE, '--frobnicate'], /unknown argument/],
    ['flag without value', [...BASE, '--timeout-ms'], /needs a value/],
    ['flag given twice', [...BASE, '--auth-dir', '/b'], /given twice/],
    ['bad log level', [...BASE, '--log-level', 'loud'], /log-level/],
    ['non-loopback media base', [...BASE, '--media-base', 'https://mmg.whatsapp.net'], /loopback/],
    ['non-loopback media host', [...BASE, '--media-host', 'mmg.whatsapp.net:443'], /loopback/],
    ['media host without port', [...BASE, '--media-host', '127.0.0.1'], /explicit port/],
    ['media host with a path', [...BASE, '--media-host', '127.0.0.1:1/x'], /explicit port/],
    ['media host port out of range', [...BASE, '--media-host', '127.0.0.1:70000'], /explicit port/],
    ['value on boolean flag', [...BASE, '--help=yes'], /takes no value/],
    ['push name with @', [...BASE, '--push-name', 'a@b'], /push-name/],
    ['empty push name', [...BASE, '--push-name='], /push-name/],
  ];
  for (const [name, argv, re] of bad) {
    it(`rejects ${name}`, () => {
      assert.throws(() => parseArgs(argv, {}), (err) => err instanceof UsageError && re.test(err.message));
    });
  }
});

describe('isLoopbackHost', () => {
  it('accepts the loopback range and names', () => {
    for (const h of ['127.0.0.1', '127.255.0.9', 'localhost', 'LOCALHOST', '::1', '[::1]']) {
      assert.ok(isLoopbackHost(h), h);
    }
  });
  it('rejects everything else', () => {
    for (const h of ['128.0.0.1', '127.0.0.256', '10.0.0.1', '192.168.1.1', '0.0.0.0', 'web.whatsapp.com', '::2', '127.0.0.1.evil.com']) {
      assert.ok(!isLoopbackHost(h), h);
    }
  });
});

describe('parseCommand', () => {
  it('parses send_text and passes ref through', () => {
    assert.deepEqual(parseCommand('{"cmd":"send_text","to":"15550001111@s.whatsapp.net","text":"hi","ref":7}'), {
      cmd: 'send_text',
      to: '15550001111@s.whatsapp.net',
      text: 'hi',
      ref: 7,
    });
  });

  it('keeps text byte-exact, including empty text, unicode and newlines', () => {
    const text = 'line 1\nline 2 \u{1F600} \u00e9\t';
    assert.equal(parseCommand(JSON.stringify({ cmd: 'send_text', to: '1@s.whatsapp.net', text })).text, text);
    assert.equal(parseCommand('{"cmd":"send_text","to":"1@s.whatsapp.net","text":""}').text, '');
  });

  it('accepts device and group JIDs', () => {
    assert.equal(parseCommand('{"cmd":"send_text","to":"1:2@s.whatsapp.net","text":"x"}').to, '1:2@s.whatsapp.net');
    assert.equal(parseCommand('{"cmd":"send_text","to":"123-456@g.us","text":"x"}').to, '123-456@g.us');
  });

  it('parses send_image with optional mimetype and caption', () => {
    assert.deepEqual(parseCommand('{"cmd":"send_image","to":"1@s.whatsapp.net","path":"/tmp/a.png","ref":3}'), {
      cmd: 'send_image', to: '1@s.whatsapp.net', path: '/tmp/a.png', mimetype: undefined, caption: undefined, ref: 3,
    });
    assert.deepEqual(
      parseCommand('{"cmd":"send_image","to":"1@s.whatsapp.net","path":"/a","mimetype":"image/png","caption":""}'),
      { cmd: 'send_image', to: '1@s.whatsapp.net', path: '/a', mimetype: 'image/png', caption: '', ref: undefined },
    );
  });

  it('parses download_media and quit', () => {
    assert.deepEqual(parseCommand('{"cmd":"download_media","id":"3EB0ABC"}'), { cmd: 'download_media', id: '3EB0ABC', ref: undefined });
    assert.deepEqual(parseCommand(' {"cmd":"quit"} \r'), { cmd: 'quit', ref: undefined });
  });

  it('ignores blank lines', () => {
    assert.equal(parseCommand(''), null);
    assert.equal(parseCommand('   \t'), null);
  });

  const bad = [
    ['non-JSON', 'send hi', /not JSON/],
    ['JSON array', '[1,2]', /JSON object/],
    ['JSON null', 'null', /JSON object/],
    ['missing cmd', '{"to":"x@s.whatsapp.net"}', /missing "cmd"/],
    ['unknown cmd', '{"cmd":"explode"}', /unknown cmd/],
    ['send_text without to', '{"cmd":"send_text","text":"x"}', /"to"/],
    ['send_text with non-JID to', '{"cmd":"send_text","to":"15550001111","text":"x"}', /not a JID/],
    ['send_text with numeric text', '{"cmd":"send_text","to":"1@s.whatsapp.net","text":5}', /"text"/],
    ['send_text without text', '{"cmd":"send_text","to":"1@s.whatsapp.net"}', /"text"/],
    ['send_image without path', '{"cmd":"send_image","to":"1@s.whatsapp.net"}', /"path"/],
    ['send_image with a numeric caption', '{"cmd":"send_image","to":"1@s.whatsapp.net","path":"/a","caption":5}', /"caption"/],
    ['download_media without id', '{"cmd":"download_media"}', /"id"/],
    ['download_media with empty id', '{"cmd":"download_media","id":""}', /"id"/],
  ];
  for (const [name, line, re] of bad) {
    it(`rejects ${name}`, () => {
      assert.throws(() => parseCommand(line), (err) => err instanceof CommandError && re.test(err.message));
    });
  }
});

describe('toJsonSafe / encodeEvent', () => {
  it('turns buffers into base64 and bigints into numbers', () => {
    assert.deepEqual(toJsonSafe({ b: Buffer.from([1, 2, 3]), u: new Uint8Array([255]), n: 5n }), { b: 'AQID', u: '/w==', n: 5 });
  });

  it('turns protobuf Longs into numbers', () => {
    const long = { low: 42, high: 0, unsigned: true, toNumber: () => 42, toString: () => '42' };
    assert.equal(toJsonSafe(long), 42);
  });

  it('keeps Boom-like errors readable and drops cycles', () => {
    const err = new Error('Stream Errored (restart required)');
    err.output = { statusCode: 515 };
    err.data = { tag: 'stream:error', attrs: { code: '515' } };
    assert.deepEqual(toJsonSafe(err), {
      name: 'Error',
      message: 'Stream Errored (restart required)',
      statusCode: 515,
      data: { tag: 'stream:error', attrs: { code: '515' } },
    });
    const cyclic = { a: 1 };
    cyclic.self = cyclic;
    assert.deepEqual(toJsonSafe(cyclic), { a: 1 });
  });

  it('produces exactly one line per event', () => {
    const line = encodeEvent({ event: 'message', text: 'a\nb' });
    assert.ok(!line.includes('\n'));
    assert.deepEqual(JSON.parse(line), { event: 'message', text: 'a\nb' });
  });
});

describe('messageText', () => {
  it('reads conversation and extendedTextMessage', () => {
    assert.equal(messageText({ conversation: 'hello' }), 'hello');
    assert.equal(messageText({ conversation: null, extendedTextMessage: { text: 'ext' } }), 'ext');
  });
  it('keeps an empty text as empty, not null', () => {
    assert.equal(messageText({ conversation: '' }), '');
  });
  it('reads media captions and unwraps ephemeral messages', () => {
    assert.equal(messageText({ imageMessage: { caption: 'pic' } }), 'pic');
    assert.equal(messageText({ ephemeralMessage: { message: { conversation: 'eph' } } }), 'eph');
  });
  it('returns null without text', () => {
    assert.equal(messageText(null), null);
    assert.equal(messageText({ imageMessage: {} }), null);
  });
});
