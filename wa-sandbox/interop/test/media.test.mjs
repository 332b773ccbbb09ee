// download_media against a local HTTP server holding WhatsApp-style encrypted
// media (AES-256-CBC with keys from HKDF(mediaKey, "WhatsApp Image Keys"), then
// the first 10 bytes of HMAC-SHA256(macKey, iv || ciphertext)).
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { getMediaKeys, proto } from '@whiskeysockets/baileys';
import { describeMedia, downloadMedia, MediaError } from '../lib/media.mjs';

const DIRECT_PATH = '/v/t62.7118-24/12345_67890_n.enc?ccb=11-4&oh=01_abc&oe=65F00000&_nc_sid=5e03e0';

let server;
let base;
const requests = [];
const blobs = new Map();

before(async () => {
  server = createServer((req, res) => {
    requests.push({ url: req.url, headers: req.headers });
    const blob = blobs.get(req.url);
    if (!blob) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(blob);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

async function encryptMedia(plaintext, mediaType) {
  const mediaKey = randomBytes(32);
  const { iv, cipherKey, macKey } = await getMediaKeys(mediaKey, mediaType);
  const cipher = createCipheriv('aes-256-cbc', cipherKey, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const mac = createHmac('sha256', macKey).update(iv).update(ciphertext).digest().subarray(0, 10);
  const enc = Buffer.concat([ciphertext, mac]);
  return {
    mediaKey,
    enc,
    fileSha256: createHash('sha256').update(plaintext).digest(),
    fileEncSha256: createHash('sha256').update(enc).digest(),
  };
}

function imageMessage(fields) {
  return proto.WebMessageInfo.fromObject({
    key: { remoteJid: '15550001111@s.whatsapp.net', fromMe: false, id: '3EB0TESTMEDIA' },
    message: {
      imageMessage: {
        url: `https://mmg.whatsapp.net${DIRECT_PATH}`,
        mimetype: 'image/jpeg',
        directPath: DIRECT_PATH,
        ...fields,
      },
    },
  });
}

describe('downloadMedia', () => {
  it('decrypts media served at mediaBase + directPath and reports its sha256', async () => {
    const plaintext = randomBytes(5000);
    const enc = await encryptMedia(plaintext, 'image');
    blobs.set(DIRECT_PATH, enc.enc);
    const msg = imageMessage({ mediaKey: enc.mediaKey, fileSha256: enc.fileSha256, fileEncSha256: enc.fileEncSha256, fileLength: plaintext.length });

    const result = await downloadMedia(msg, base);

    assert.equal(result.length, plaintext.length);
    assert.equal(result.sha256, createHash('sha256').update(plaintext).digest('hex'));
    assert.equal(result.fileSha256Matches, true);
    assert.equal(result.mediaType, 'image');
    assert.equal(result.mimetype, 'image/jpeg');
    const req = requests.at(-1);
    assert.equal(req.url, DIRECT_PATH, 'the media server sees the directPath verbatim, query string included');
    assert.equal(req.headers.origin, 'https://web.whatsapp.com', 'Baileys sends Origin: https://web.whatsapp.com');
  });

  it('reports a fileSha256 mismatch instead of hiding it', async () => {
    const plaintext = Buffer.from('hello media');
    const enc = await encryptMedia(plaintext, 'image');
    blobs.set(DIRECT_PATH, enc.enc);
    const msg = imageMessage({ mediaKey: enc.mediaKey, fileSha256: Buffer.alloc(32) });
    const result = await downloadMedia(msg, base);
    assert.equal(result.length, plaintext.length);
    assert.equal(result.fileSha256Matches, false);
  });

  it('fails on a 404 from the media server', async () => {
    const enc = await encryptMedia(Buffer.from('x'), 'image');
    const msg = imageMessage({ mediaKey: enc.mediaKey, directPath: '/v/missing' });
    await assert.rejects(downloadMedia(msg, base), /404/);
  });

  it('rejects a message without media', async () => {
    const msg = proto.WebMessageInfo.fromObject({ key: { id: 'x' }, message: { conversation: 'hi' } });
    assert.equal(describeMedia(msg), null);
    await assert.rejects(downloadMedia(msg, base), MediaError);
  });
});
