// JSON-lines protocol between a Rust test and the Baileys harness (client.mjs).
//
// Pure functions only (no sockets, no Baileys), so `node --test` can check them
// without a server. See README.md for the full protocol.

/** Exit codes of client.mjs. */
export const EXIT = Object.freeze({
  /** `{"cmd":"quit"}` or stdin closed. */
  OK: 0,
  /** Unexpected internal error (uncaught exception). */
  INTERNAL: 1,
  /** Bad command-line arguments or environment. */
  USAGE: 2,
  /** The overall timeout (--timeout-ms) ran out. */
  TIMEOUT: 3,
  /** The connection closed for good (not a 515 restart, no reconnect left). */
  CLOSED: 4,
});

/** Default overall lifetime of the harness, milliseconds. */
export const DEFAULT_TIMEOUT_MS = 120_000;

/** Thrown for bad arguments; `client.mjs` prints `message` and exits with EXIT.USAGE. */
export class UsageError extends Error {}

/** Thrown for a stdin line that is not a valid command. */
export class CommandError extends Error {}

export const USAGE = `usage: node client.mjs --ws-url ws://127.0.0.1:PORT/ws/chat --auth-dir DIR [options]

  --ws-url URL          sandbox WebSocket URL (env WA_WS_URL); ws:// or wss://, loopback host only
  --auth-dir DIR        Baileys multi-file auth state directory (env WA_AUTH_DIR); created if missing
  --timeout-ms N        exit (code 3) after N ms no matter what (env WA_HARNESS_TIMEOUT_MS, default ${DEFAULT_TIMEOUT_MS})
  --media-base URL      http(s)://127.0.0.1:PORT prefix for media downloads; the message's directPath is
                        appended (env WA_MEDIA_BASE). Without it download_media fails: the harness never
                        contacts mmg.whatsapp.net
  --media-host HOST:PORT  loopback address of an HTTPS media host (env WA_MEDIA_HOST). Every HTTPS media
                        connection Baileys opens (uploads to the media_conn hosts, downloads from
                        mmg.whatsapp.net) is routed there, the certificate checked against HOST (trust it
                        with NODE_EXTRA_CA_CERTS); download_media then runs Baileys' own
                        downloadMediaMessage. Takes precedence over --media-base for downloads
  --log-level LEVEL     pino level for Baileys' log on stderr: silent|fatal|error|warn|info|debug|trace
                        (env WA_LOG_LEVEL, default warn)
  --reconnect N         after a close that is not a 515 restart and not a logout, reconnect up to N times
                        (1 s apart) before giving up (default 0: exit with code 4)
  --no-init-queries     do not send the props/blocklist/privacy IQs after login (fireInitQueries=false)
  --qr-timeout-ms N     lifetime of each QR ref (Baileys qrTimeout; default: 60 s first, 20 s later)
  --connect-timeout-ms N  Baileys connectTimeoutMs (default 20000)
  --query-timeout-ms N  Baileys defaultQueryTimeoutMs (default 60000)
  --push-name NAME      after each open, set this push name and send presence available, so Baileys
                        sends plain delivery receipts instead of type="inactive" (see BAILEYS_NOTES.md)
  --help                print this text

stdin commands (one JSON object per line):
  {"cmd":"send_text","to":"<jid>","text":"...","ref":<any>?}
  {"cmd":"send_image","to":"<jid>","path":"<file>","mimetype":"image/png"?,"caption":"..."?,"ref":<any>?}
  {"cmd":"download_media","id":"<message id>","ref":<any>?}
  {"cmd":"send_reaction","to":"<chat>","target":"<id>","fromMe":false,"participant":"<jid>"?,"emoji":"👍"}  ("" removes)
  {"cmd":"send_edit","to":"<chat>","target":"<our id>","text":"..."}
  {"cmd":"send_revoke","to":"<chat>","target":"<id>","fromMe":true,"participant":"<jid>"?}
  {"cmd":"send_poll","to":"<chat>","name":"...","options":["a","b"],"selectable":0}
  {"cmd":"vote_poll","target":"<poll id>","options":["a"]}  ([] withdraws)
  {"cmd":"poll_tally","target":"<poll id>"}
  {"cmd":"quit"}
`;

const LOG_LEVELS = new Set(['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace']);

/**
 * True for hosts on the loopback range: 127.0.0.0/8, localhost, ::1.
 * The harness refuses any other host so a test can only ever talk to this machine.
 */
export function isLoopbackHost(hostname) {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') {
    return true;
  }
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

function parseUrl(name, value, protocols) {
  let url;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${name}: not a URL: ${JSON.stringify(value)}`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new UsageError(`${name}: protocol must be one of ${protocols.join(' ')}, got ${url.protocol}`);
  }
  if (!isLoopbackHost(url.hostname)) {
    throw new UsageError(`${name}: host must be loopback (127.x.x.x, localhost, ::1), got ${url.hostname}`);
  }
  return url;
}

/** `host:port` on loopback, e.g. `127.0.0.1:4321` or `[::1]:4321`; returns `{ host, port }`. */
function parseHostPort(name, value) {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]\s]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`${name}: expected host:port with an explicit port, got ${JSON.stringify(value)}`);
  }
  if (!isLoopbackHost(m[1])) {
    throw new UsageError(`${name}: host must be loopback (127.x.x.x, localhost, ::1), got ${m[1]}`);
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

function parsePositiveInt(name, value) {
  if (!/^\d+$/.test(String(value))) {
    throw new UsageError(`${name}: expected a positive integer, got ${JSON.stringify(value)}`);
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`${name}: expected a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

function parseNonNegativeInt(name, value) {
  if (!/^\d+$/.test(String(value)) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${name}: expected a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/**
 * Parses argv (without `node` and the script path) plus environment fallbacks.
 * Returns `{ help: true }` for --help, else a config object. Throws UsageError.
 */
export function parseArgs(argv, env = {}) {
  const flags = new Map();
  const booleans = new Set(['--help', '--no-init-queries']);
  const valued = new Set([
    '--ws-url', '--auth-dir', '--timeout-ms', '--media-base', '--media-host', '--log-level', '--reconnect',
    '--qr-timeout-ms', '--connect-timeout-ms', '--query-timeout-ms', '--push-name',
  ]);
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (booleans.has(arg)) {
      if (value !== undefined) {
        throw new UsageError(`${arg} takes no value`);
      }
      flags.set(arg, true);
    } else if (valued.has(arg)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) {
          throw new UsageError(`${arg} needs a value`);
        }
        value = argv[++i];
      }
      if (flags.has(arg)) {
        throw new UsageError(`${arg} given twice`);
      }
      flags.set(arg, value);
    } else {
      throw new UsageError(`unknown argument: ${JSON.stringify(arg)}`);
    }
  }
  if (flags.get('--help')) {
    return { help: true };
  }
  const pick = (flag, envName) => (flags.has(flag) ? flags.get(flag) : env[envName]);

  const wsUrlRaw = pick('--ws-url', 'WA_WS_URL');
  if (!wsUrlRaw) {
    throw new UsageError('missing --ws-url (or WA_WS_URL)');
  }
  const wsUrl = parseUrl('--ws-url', wsUrlRaw, ['ws:', 'wss:']);

  const authDir = pick('--auth-dir', 'WA_AUTH_DIR');
  if (!authDir) {
    throw new UsageError('missing --auth-dir (or WA_AUTH_DIR)');
  }

  const timeoutRaw = pick('--timeout-ms', 'WA_HARNESS_TIMEOUT_MS');
  const timeoutMs = timeoutRaw === undefined ? DEFAULT_TIMEOUT_MS : parsePositiveInt('--timeout-ms', timeoutRaw);

  const mediaRaw = pick('--media-base', 'WA_MEDIA_BASE');
  const mediaBase = mediaRaw ? parseUrl('--media-base', mediaRaw, ['http:', 'https:']) : undefined;

  const mediaHostRaw = pick('--media-host', 'WA_MEDIA_HOST');
  const mediaHost = mediaHostRaw ? parseHostPort('--media-host', mediaHostRaw) : undefined;

  const logLevel = pick('--log-level', 'WA_LOG_LEVEL') ?? 'warn';
  if (!LOG_LEVELS.has(logLevel)) {
    throw new UsageError(`--log-level: expected one of ${[...LOG_LEVELS].join('|')}, got ${JSON.stringify(logLevel)}`);
  }

  const pushName = flags.get('--push-name');
  if (pushName !== undefined && (pushName.length === 0 || pushName.includes('@'))) {
    throw new UsageError('--push-name: must be non-empty and contain no "@" (Baileys strips it)');
  }

  const optInt = (flag, parse) => (flags.has(flag) ? parse(flag, flags.get(flag)) : undefined);

  return {
    help: false,
    wsUrl: wsUrl.toString(),
    authDir,
    timeoutMs,
    mediaBase: mediaBase ? mediaBase.toString().replace(/\/$/, '') : undefined,
    mediaHost,
    logLevel,
    reconnect: optInt('--reconnect', parseNonNegativeInt) ?? 0,
    fireInitQueries: !flags.get('--no-init-queries'),
    qrTimeoutMs: optInt('--qr-timeout-ms', parsePositiveInt),
    connectTimeoutMs: optInt('--connect-timeout-ms', parsePositiveInt),
    queryTimeoutMs: optInt('--query-timeout-ms', parsePositiveInt),
    pushName,
  };
}

function requireString(obj, key, cmd) {
  const v = obj[key];
  if (typeof v !== 'string' || v.length === 0) {
    throw new CommandError(`${cmd}: "${key}" must be a non-empty string`);
  }
  return v;
}

/** A JID as Baileys expects it: `user[:device]@server`, no spaces. */
function requireJid(obj, key, cmd) {
  const v = requireString(obj, key, cmd);
  if (!/^[^@\s]*@[^@\s]+$/.test(v)) {
    throw new CommandError(`${cmd}: "${key}" is not a JID: ${JSON.stringify(v)}`);
  }
  return v;
}

/** An array of strings (non-empty unless `allowEmpty`). */
function requireStrings(obj, key, cmd, allowEmpty = false) {
  const v = obj[key];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string') || (!allowEmpty && v.length === 0)) {
    throw new CommandError(`${cmd}: "${key}" must be an array of strings`);
  }
  return v;
}

/** The message a reaction or revoke names: chat `to`, id `target`, `fromMe`, `participant`. */
function targetOf(obj, cmd) {
  if (obj.fromMe !== undefined && typeof obj.fromMe !== 'boolean') {
    throw new CommandError(`${cmd}: "fromMe" must be a boolean`);
  }
  return {
    to: requireJid(obj, 'to', cmd),
    target: requireString(obj, 'target', cmd),
    fromMe: Boolean(obj.fromMe),
    participant: obj.participant === undefined ? undefined : requireJid(obj, 'participant', cmd),
  };
}

/**
 * Parses one stdin line into a command. Blank lines return null (ignored).
 * Throws CommandError with a message naming the problem.
 * `ref` (any JSON value) is passed through and echoed in the reply events.
 */
export function parseCommand(line) {
  const trimmed = line.trim();
  if (trimmed === '') {
    return null;
  }
  let obj;
  try {
    obj = JSON.parse(trimmed);
  } catch (err) {
    throw new CommandError(`not JSON: ${err.message}`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new CommandError('command must be a JSON object');
  }
  const cmd = obj.cmd;
  const ref = obj.ref;
  switch (cmd) {
    case 'send_text':
      if (typeof obj.text !== 'string') {
        throw new CommandError('send_text: "text" must be a string');
      }
      return { cmd, to: requireJid(obj, 'to', cmd), text: obj.text, ref };
    case 'send_image': {
      for (const key of ['mimetype', 'caption']) {
        if (obj[key] !== undefined && typeof obj[key] !== 'string') {
          throw new CommandError(`send_image: "${key}" must be a string`);
        }
      }
      return {
        cmd,
        to: requireJid(obj, 'to', cmd),
        path: requireString(obj, 'path', cmd),
        mimetype: obj.mimetype,
        caption: obj.caption,
        ref,
      };
    }
    case 'download_media':
      return { cmd, id: requireString(obj, 'id', cmd), ref };
    case 'send_presence': {
      // Baileys sendPresenceUpdate(type, to): available/unavailable are global, the chat
      // states need "to".
      const type = requireString(obj, 'type', cmd);
      if (!['available', 'unavailable', 'composing', 'recording', 'paused'].includes(type)) {
        throw new CommandError(`send_presence: unknown type ${JSON.stringify(type)}`);
      }
      const global = type === 'available' || type === 'unavailable';
      return { cmd, type, to: global ? undefined : requireJid(obj, 'to', cmd), ref };
    }
    case 'presence_subscribe':
      return { cmd, to: requireJid(obj, 'to', cmd), ref };
    case 'reject_call':
      return { cmd, id: requireString(obj, 'id', cmd), to: requireJid(obj, 'to', cmd), ref };
    case 'send_reaction':
      // emoji "" removes our reaction.
      if (typeof obj.emoji !== 'string') {
        throw new CommandError('send_reaction: "emoji" must be a string ("" removes the reaction)');
      }
      return { cmd, ...targetOf(obj, cmd), emoji: obj.emoji, ref };
    case 'send_edit':
      if (typeof obj.text !== 'string') {
        throw new CommandError('send_edit: "text" must be a string');
      }
      return { cmd, to: requireJid(obj, 'to', cmd), target: requireString(obj, 'target', cmd), text: obj.text, ref };
    case 'send_revoke':
      return { cmd, ...targetOf(obj, cmd), ref };
    case 'send_poll': {
      const options = requireStrings(obj, 'options', cmd);
      const selectable = obj.selectable ?? 0;
      if (!Number.isInteger(selectable) || selectable < 0 || selectable > options.length) {
        throw new CommandError('send_poll: "selectable" must be an integer from 0 to the number of options');
      }
      return { cmd, to: requireJid(obj, 'to', cmd), name: requireString(obj, 'name', cmd), options, selectable, ref };
    }
    case 'vote_poll':
      // options may be empty: withdraws the vote.
      return { cmd, target: requireString(obj, 'target', cmd), options: requireStrings(obj, 'options', cmd, true), ref };
    case 'poll_tally':
      return { cmd, target: requireString(obj, 'target', cmd), ref };
    case 'quit':
      return { cmd, ref };
    case undefined:
      throw new CommandError('missing "cmd"');
    default:
      throw new CommandError(`unknown cmd: ${JSON.stringify(cmd)}`);
  }
}

/**
 * Makes a value JSON-safe: Buffers/Uint8Arrays become base64 strings, BigInt and
 * protobuf Longs become numbers (or strings past 2^53), Errors keep name/message,
 * functions and cycles are dropped.
 */
export function toJsonSafe(value, seen = new WeakSet()) {
  if (value === null || value === undefined) {
    return value ?? null;
  }
  if (typeof value === 'bigint') {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  }
  if (typeof value === 'function' || typeof value === 'symbol') {
    return undefined;
  }
  if (typeof value !== 'object') {
    return value;
  }
  if (value instanceof Uint8Array) {
    return Buffer.from(value).toString('base64');
  }
  if (value && value.type === 'Buffer' && Array.isArray(value.data)) {
    return Buffer.from(value.data).toString('base64');
  }
  if (typeof value.low === 'number' && typeof value.high === 'number' && typeof value.toNumber === 'function') {
    const n = value.toNumber();
    return Number.isSafeInteger(n) ? n : value.toString();
  }
  if (value instanceof Date) {
    return value.toISOString();
  }
  if (seen.has(value)) {
    return undefined;
  }
  seen.add(value);
  if (value instanceof Error) {
    const out = { name: value.name, message: value.message };
    if (value.output?.statusCode !== undefined) {
      out.statusCode = value.output.statusCode;
    }
    if (value.data !== undefined) {
      out.data = toJsonSafe(value.data, seen);
    }
    return out;
  }
  if (Array.isArray(value)) {
    return value.map((v) => toJsonSafe(v, seen) ?? null);
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    const safe = toJsonSafe(v, seen);
    if (safe !== undefined) {
      out[k] = safe;
    }
  }
  return out;
}

/** Serialises one event as a single line (no trailing newline). */
export function encodeEvent(event) {
  return JSON.stringify(toJsonSafe(event));
}

/**
 * Plain text of a received message, as a chat app shows it:
 * `conversation` or `extendedTextMessage.text` (Baileys sends the latter),
 * else a media caption. Returns null when there is no text.
 */
export function messageText(message) {
  if (!message) {
    return null;
  }
  const m = message.ephemeralMessage?.message ?? message.viewOnceMessage?.message ?? message;
  const candidates = [
    m.conversation,
    m.extendedTextMessage?.text,
    m.imageMessage?.caption,
    m.videoMessage?.caption,
    m.documentMessage?.caption,
  ];
  return candidates.find((c) => typeof c === 'string') ?? null;
}
