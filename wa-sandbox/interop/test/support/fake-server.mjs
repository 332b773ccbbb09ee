// A deliberately small stand-in for wa-sandbox, used only to test the harness
// and to check the claims in BAILEYS_NOTES.md against the installed Baileys:
// Noise XX responder, pair-device, pair-success (with ADV signatures), 515,
// login, and answers to the IQs Baileys sends after <success>.
//
// It is not the sandbox: no accounts, no messaging, one companion. It records
// every stanza the client sends (`transcript`) so tests can assert on them.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  aesDecryptGCM,
  aesEncryptGCM,
  Curve,
  decodeBinaryNode,
  encodeBinaryNode,
  getBinaryNodeChild,
  hkdf,
  hmacSign,
  proto,
  sha256,
} from '@whiskeysockets/baileys';
import curve25519 from 'curve25519-js';
import { WebSocketServer } from 'ws';

const NOISE_MODE = Buffer.from('Noise_XX_25519_AESGCM_SHA256\0\0\0\0'); // 32 bytes: used as h directly
const WA_HEADER = Buffer.from([0x57, 0x41, 6, 3]);
const SERVER = 's.whatsapp.net';

/**
 * Pause between reading ClientFinish and sending the first stanza. Baileys
 * 6.7.24 calls `noise.finishInit()` without awaiting it (socket.js:172); until
 * that async HKDF finishes, a received frame is treated as a handshake frame
 * and silently dropped, so an instant pair-device/<success> is sometimes lost
 * and the client hangs. See BAILEYS_NOTES.md.
 */
export const FIRST_STANZA_DELAY_MS = 50;

function iv(counter) {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(counter, 8);
  return b;
}

function frame(payload) {
  const out = Buffer.alloc(3 + payload.length);
  out.writeUInt8(payload.length >> 16, 0);
  out.writeUInt16BE(payload.length & 0xffff, 1);
  Buffer.from(payload).copy(out, 3);
  return out;
}

/** Server half of Baileys' Noise XX (lib/Utils/noise-handler.js), for one connection. */
class NoiseResponder {
  constructor() {
    this.h = NOISE_MODE;
    this.ck = NOISE_MODE;
    this.key = NOISE_MODE;
    this.counter = 0;
    this.mixHash(WA_HEADER);
  }
  mixHash(data) {
    this.h = sha256(Buffer.concat([this.h, data]));
  }
  async mixKey(ikm) {
    const out = await hkdf(Buffer.from(ikm), 64, { salt: this.ck, info: '' });
    this.ck = out.subarray(0, 32);
    this.key = out.subarray(32);
    this.counter = 0;
  }
  encrypt(plaintext) {
    const c = aesEncryptGCM(plaintext, this.key, iv(this.counter++), this.h);
    this.mixHash(c);
    return c;
  }
  decrypt(ciphertext) {
    const p = aesDecryptGCM(ciphertext, this.key, iv(this.counter++), this.h);
    this.mixHash(ciphertext);
    return p;
  }
  async split() {
    const out = await hkdf(Buffer.alloc(0), 64, { salt: this.ck, info: '' });
    // The client encrypts with the first half and decrypts with the second.
    this.recvKey = out.subarray(0, 32);
    this.sendKey = out.subarray(32);
    this.recvCounter = 0;
    this.sendCounter = 0;
  }
}

/**
 * Builds the CertChain payload of ServerHello. Baileys 6.7.24 only decodes
 * `intermediate.details` and compares `issuerSerial` with 0
 * (noise-handler.js:82-87); `mode` lets a test break exactly that.
 */
function certChain(mode, serverStaticPub) {
  const Details = proto.CertChain.NoiseCertificate.Details;
  const intermediateDetails =
    mode === 'no-issuer-serial'
      ? Details.encode({ serial: 1, key: randomBytes(32) }).finish()
      : mode === 'wrong-issuer-serial'
        ? Details.encode({ serial: 1, issuerSerial: 7, key: randomBytes(32) }).finish()
        : Details.encode({ serial: 1, issuerSerial: 0, key: randomBytes(32) }).finish();
  return proto.CertChain.encode({
    // Signatures are random bytes on purpose: Baileys 6.7.24 never verifies them.
    leaf: { details: Details.encode({ serial: 2, issuerSerial: 1, key: serverStaticPub }).finish(), signature: randomBytes(64) },
    intermediate: { details: intermediateDetails, signature: randomBytes(64) },
  }).finish();
}

export class FakeServer extends EventEmitter {
  /**
   * @param {object} opts
   * @param {string} [opts.certMode] 'valid' | 'no-issuer-serial' | 'wrong-issuer-serial'
   * @param {string} [opts.phone] primary's phone number
   * @param {number} [opts.device] device id given to the companion
   * @param {number} [opts.firstStanzaDelayMs] pause before the first stanza after the handshake
   * @param {boolean} [opts.badAccountSignature] pair-success with a random accountSignature
   * @param {boolean} [opts.badHmac] pair-success with a random HMAC
   * @param {string} [opts.countReply] 'count' (normal), 'error' (IQ error 500) or 'empty' (result without <count>)
   */
  constructor({
    certMode = 'valid',
    phone = '15550001111',
    device = 5,
    firstStanzaDelayMs = FIRST_STANZA_DELAY_MS,
    badAccountSignature = false,
    badHmac = false,
    countReply = 'count',
  } = {}) {
    super();
    this.countReply = countReply;
    this.badAccountSignature = badAccountSignature;
    this.badHmac = badHmac;
    this.firstStanzaDelayMs = firstStanzaDelayMs;
    this.certMode = certMode;
    this.phone = phone;
    this.device = device;
    this.lidUser = '100000000000001';
    this.staticKey = Curve.generateKeyPair();
    this.primaryIdentity = Curve.generateKeyPair();
    /** Every stanza the client sent after the handshake, with the connection number. */
    this.transcript = [];
    /** Decoded ClientPayload per connection. */
    this.payloads = [];
    this.connections = 0;
    this.nextId = 1000;
  }

  async listen() {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws/chat' });
    this.wss.on('headers', (headers, req) => this.emit('upgrade-request', req));
    this.wss.on('connection', (ws, req) => this.onConnection(ws, req));
    await new Promise((resolve) => this.wss.once('listening', resolve));
    return `ws://127.0.0.1:${this.wss.address().port}/ws/chat`;
  }

  close() {
    for (const c of this.wss?.clients ?? []) {
      c.terminate();
    }
    this.wss?.close();
  }

  id() {
    return String(this.nextId++);
  }

  onConnection(ws, req) {
    const conn = { n: ++this.connections, ws, noise: new NoiseResponder(), inBytes: Buffer.alloc(0), gotHeader: false, done: false };
    this.emit('connection', { n: conn.n, headers: req.headers, url: req.url });
    let chain = Promise.resolve();
    ws.on('message', (data) => {
      chain = chain.then(() => this.onData(conn, Buffer.from(data))).catch((err) => {
        this.emit('server-error', err);
        ws.terminate();
      });
    });
    ws.on('error', () => {});
  }

  async onData(conn, data) {
    conn.inBytes = Buffer.concat([conn.inBytes, data]);
    if (!conn.gotHeader) {
      if (conn.inBytes.length < 4) {
        return;
      }
      const header = conn.inBytes.subarray(0, 4);
      if (!header.equals(WA_HEADER)) {
        throw new Error(`unexpected intro header ${header.toString('hex')}`);
      }
      conn.introHeader = Buffer.from(header);
      conn.inBytes = conn.inBytes.subarray(4);
      conn.gotHeader = true;
    }
    while (conn.inBytes.length >= 3) {
      const len = (conn.inBytes.readUInt8(0) << 16) | conn.inBytes.readUInt16BE(1);
      if (conn.inBytes.length < 3 + len) {
        return;
      }
      const payload = conn.inBytes.subarray(3, 3 + len);
      conn.inBytes = conn.inBytes.subarray(3 + len);
      await this.onFrame(conn, payload);
    }
  }

  async onFrame(conn, payload) {
    const { noise } = conn;
    if (!conn.hello) {
      const msg = proto.HandshakeMessage.decode(payload);
      conn.hello = msg.clientHello;
      const clientEphemeral = Buffer.from(conn.hello.ephemeral);
      noise.mixHash(clientEphemeral);
      const eph = Curve.generateKeyPair();
      conn.eph = eph;
      noise.mixHash(eph.public);
      await noise.mixKey(Curve.sharedKey(eph.private, clientEphemeral));
      const encStatic = noise.encrypt(this.staticKey.public);
      await noise.mixKey(Curve.sharedKey(this.staticKey.private, clientEphemeral));
      const encCert = noise.encrypt(certChain(this.certMode, this.staticKey.public));
      const serverHello = proto.HandshakeMessage.encode({ serverHello: { ephemeral: eph.public, static: encStatic, payload: encCert } }).finish();
      conn.ws.send(frame(serverHello));
      return;
    }
    if (!conn.finished) {
      const { clientFinish } = proto.HandshakeMessage.decode(payload);
      const clientStatic = noise.decrypt(Buffer.from(clientFinish.static));
      await noise.mixKey(Curve.sharedKey(conn.eph.private, clientStatic));
      const clientPayload = proto.ClientPayload.decode(noise.decrypt(Buffer.from(clientFinish.payload)));
      await noise.split();
      conn.finished = true;
      if (this.firstStanzaDelayMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, this.firstStanzaDelayMs));
      }
      conn.clientStatic = clientStatic;
      this.payloads.push({ n: conn.n, payload: clientPayload, clientStatic });
      this.emit('client-payload', { n: conn.n, payload: clientPayload });
      if (clientPayload.devicePairingData) {
        conn.registration = clientPayload.devicePairingData;
        this.pendingRegistration = conn;
        await this.sendNode(conn, {
          tag: 'iq',
          attrs: { from: SERVER, type: 'set', id: this.id(), xmlns: 'md' },
          content: [
            {
              tag: 'pair-device',
              attrs: {},
              content: [1, 2, 3].map((i) => ({ tag: 'ref', attrs: {}, content: Buffer.from(`2@fake-ref-${i}-${randomBytes(8).toString('base64')}`) })),
            },
          ],
        });
      } else {
        const ok =
          this.companion &&
          String(clientPayload.username) === this.phone &&
          clientPayload.device === this.device &&
          Buffer.compare(clientStatic, this.companion.noisePub) === 0;
        if (!ok) {
          await this.sendNode(conn, { tag: 'failure', attrs: { reason: '401' } });
          return;
        }
        await this.sendNode(conn, {
          tag: 'success',
          attrs: { t: String(Math.floor(Date.now() / 1000)), lid: `${this.lidUser}:${this.device}@lid`, props: '27', abprops: '10', location: 'sim', creation: '1700000000' },
        });
      }
      return;
    }
    const plain = aesDecryptGCM(payload, noise.recvKey, iv(noise.recvCounter++), Buffer.alloc(0));
    const node = await decodeBinaryNode(plain);
    this.transcript.push({ n: conn.n, node });
    this.emit('stanza', { n: conn.n, node });
    await this.onStanza(conn, node);
  }

  async sendNode(conn, node) {
    const { noise } = conn;
    const bytes = encodeBinaryNode(node);
    const enc = aesEncryptGCM(bytes, noise.sendKey, iv(noise.sendCounter++), Buffer.alloc(0));
    conn.ws.send(frame(enc));
  }

  result(conn, node, content) {
    return this.sendNode(conn, { tag: 'iq', attrs: { from: SERVER, type: 'result', id: node.attrs.id }, ...(content ? { content } : {}) });
  }

  async onStanza(conn, node) {
    if (node.tag !== 'iq') {
      return;
    }
    const { attrs } = node;
    if (attrs.id === this.pairSuccessId && attrs.type === 'result') {
      const sign = getBinaryNodeChild(getBinaryNodeChild(node, 'pair-device-sign'), 'device-identity');
      const account = proto.ADVSignedDeviceIdentity.decode(sign.content);
      const identityPub = Buffer.from(conn.registration.eIdent);
      const msg = Buffer.concat([Buffer.from([6, 1]), account.details, identityPub, this.primaryIdentity.public]);
      this.pairReply = {
        keyIndex: sign.attrs['key-index'],
        hasAccountSignatureKey: account.accountSignatureKey != null && account.accountSignatureKey.length > 0,
        // Not Baileys' Curve.verify: it returns true for any 64-byte signature.
        deviceSignatureValid: curve25519.verify(identityPub, msg, account.deviceSignature),
        detailsUnchanged: Buffer.compare(account.details, this.advDetails) === 0,
      };
      this.emit('pair-reply', this.pairReply);
      await this.sendNode(conn, { tag: 'stream:error', attrs: { code: '515' } });
      conn.ws.close();
      return;
    }
    if (attrs.type === 'result' || attrs.type === 'error') {
      return;
    }
    const child = Array.isArray(node.content) ? node.content[0] : undefined;
    switch (attrs.xmlns) {
      case 'encrypt':
        if (attrs.type === 'get' && child?.tag === 'count' && this.countReply === 'error') {
          await this.sendNode(conn, {
            tag: 'iq',
            attrs: { from: SERVER, type: 'error', id: attrs.id },
            content: [{ tag: 'error', attrs: { code: '500', text: 'internal-server-error' } }],
          });
        } else if (attrs.type === 'get' && child?.tag === 'count' && this.countReply === 'empty') {
          await this.result(conn, node);
        } else if (attrs.type === 'get' && child?.tag === 'count') {
          await this.result(conn, node, [{ tag: 'count', attrs: { value: '0' } }]);
        } else {
          await this.result(conn, node);
        }
        return;
      case 'passive':
      case 'w:p':
        await this.result(conn, node);
        return;
      case 'w':
        await this.result(conn, node, [{ tag: 'props', attrs: { protocol: '2', hash: 'fakehash' }, content: [] }]);
        return;
      case 'blocklist':
        await this.result(conn, node, [{ tag: 'list', attrs: {} }]);
        return;
      case 'privacy':
        await this.result(conn, node, [{ tag: 'privacy', attrs: {}, content: [{ tag: 'category', attrs: { name: 'readreceipts', value: 'all' } }] }]);
        return;
      default:
        await this.sendNode(conn, {
          tag: 'iq',
          attrs: { from: SERVER, type: 'error', id: attrs.id },
          content: [{ tag: 'error', attrs: { code: '501', text: 'feature-not-implemented' } }],
        });
    }
  }

  /** The simulated phone scans `qr` (the string from Baileys' connection.update). */
  async scan(qr) {
    const conn = this.pendingRegistration;
    if (!conn) {
      throw new Error('no registration connection to pair');
    }
    const [ref, noiseB64, identityB64, advB64, ...rest] = qr.split(',');
    if (rest.length !== 0) {
      throw new Error(`QR has ${4 + rest.length} fields, expected 4: ${qr}`);
    }
    const identityPub = Buffer.from(identityB64, 'base64');
    const noisePub = Buffer.from(noiseB64, 'base64');
    const advSecret = Buffer.from(advB64, 'base64');
    const keyIndex = 3;
    const details = proto.ADVDeviceIdentity.encode({ rawId: 123456, timestamp: Math.floor(Date.now() / 1000), keyIndex, accountType: 0, deviceType: 0 }).finish();
    this.advDetails = Buffer.from(details);
    const accountSignature = this.badAccountSignature
      ? randomBytes(64)
      : Curve.sign(this.primaryIdentity.private, Buffer.concat([Buffer.from([6, 0]), details, identityPub]));
    const signed = proto.ADVSignedDeviceIdentity.encode({ details, accountSignatureKey: this.primaryIdentity.public, accountSignature }).finish();
    const hmac = this.badHmac ? randomBytes(32) : hmacSign(signed, advSecret);
    const deviceIdentity = proto.ADVSignedDeviceIdentityHMAC.encode({ details: signed, hmac }).finish();
    this.companion = { noisePub, identityPub, ref };
    this.pairSuccessId = this.id();
    await this.sendNode(conn, {
      tag: 'iq',
      attrs: { from: SERVER, type: 'set', id: this.pairSuccessId, xmlns: 'md', t: String(Math.floor(Date.now() / 1000)) },
      content: [
        {
          tag: 'pair-success',
          attrs: {},
          content: [
            { tag: 'device-identity', attrs: {}, content: deviceIdentity },
            { tag: 'platform', attrs: { name: 'android' } },
            { tag: 'device', attrs: { jid: `${this.phone}:${this.device}@s.whatsapp.net`, lid: `${this.lidUser}:${this.device}@lid` } },
          ],
        },
      ],
    });
  }
}
