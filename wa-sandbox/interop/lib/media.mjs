// Media download for the harness: Baileys' own decryption path, fed from the
// sandbox's loopback media server instead of https://mmg.whatsapp.net.
//
// Baileys 6.7.24 `downloadContentFromMessage` (lib/Utils/messages-media.js:388)
// only accepts URLs starting with https://mmg.whatsapp.net/ and otherwise builds
// one from `directPath`, so it can never reach a local server. We therefore do
// what `downloadMediaMessage` does (lib/Utils/messages.js:740-770: extract the
// content, derive the media type from the content type, getMediaKeys, then
// downloadEncryptedContent) with the URL base swapped for `mediaBase`.
//
// With an HTTPS media host (--media-host), `downloadWithBaileys` runs Baileys' own
// `downloadMediaMessage` unchanged and only hands it an https.Agent
// (`sandboxMediaAgent`) that routes its connection to the sandbox.
import { createHash } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import {
  downloadEncryptedContent,
  downloadMediaMessage,
  extractMessageContent,
  getContentType,
  getMediaKeys,
} from '@whiskeysockets/baileys';

/** Raised when a message has no downloadable media. */
export class MediaError extends Error {}

/**
 * Describes the media of a WAMessage without downloading it.
 * Returns null when the message carries no media.
 */
export function describeMedia(message) {
  const content = extractMessageContent(message?.message);
  if (!content) {
    return null;
  }
  const contentType = getContentType(content);
  const media = contentType ? content[contentType] : undefined;
  if (!media || typeof media !== 'object' || !('mediaKey' in media) || !media.mediaKey) {
    return null;
  }
  return {
    contentType,
    mediaType: contentType.replace('Message', ''),
    media,
  };
}

/**
 * Downloads and decrypts the media of `message` from `${mediaBase}${directPath}`.
 * Returns { mediaType, mimetype, length, sha256 (hex of the plaintext),
 * fileSha256Matches (plaintext hash equals the message's fileSha256; Baileys
 * itself never checks it), url }.
 */
export async function downloadMedia(message, mediaBase) {
  const described = describeMedia(message);
  if (!described) {
    throw new MediaError('message has no media (no mediaKey)');
  }
  const { mediaType, media } = described;
  if (!media.directPath) {
    throw new MediaError('media has no directPath');
  }
  const url = `${mediaBase}${media.directPath}`;
  const keys = await getMediaKeys(media.mediaKey, mediaType);
  const stream = await downloadEncryptedContent(url, keys, {});
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
  }
  const plaintext = Buffer.concat(chunks);
  const sha256 = createHash('sha256').update(plaintext).digest();
  const expected = media.fileSha256 ? Buffer.from(media.fileSha256) : null;
  return {
    mediaType,
    mimetype: media.mimetype ?? null,
    length: plaintext.length,
    sha256: sha256.toString('hex'),
    fileSha256Matches: expected ? expected.equals(sha256) : null,
    url,
  };
}

/** Plaintexts up to this size are returned whole (base64) by `downloadWithBaileys`. */
export const INLINE_LIMIT = 1024 * 1024;

/**
 * An https.Agent that opens every connection to `target` ({ host, port }: the sandbox's
 * loopback media port) whatever host the URL names, and checks the server certificate
 * against `target.host` (e.g. the IP SAN 127.0.0.1), never against the URL's host. Baileys
 * takes it as `fetchAgent` (uploads: Utils/messages-media.js getWAUploadToServer passes it
 * as axios' httpsAgent) and, per call, as `options.httpsAgent` of downloadMediaMessage.
 * Certificate verification stays on: the sandbox's self-signed certificate must be trusted
 * (NODE_EXTRA_CA_CERTS). No request ever leaves the machine.
 */
export function sandboxMediaAgent(target) {
  const agent = new https.Agent({ keepAlive: false });
  agent.createConnection = (options, callback) => {
    const { servername: _ignored, ...rest } = options;
    return tls.connect({ ...rest, host: target.host, port: target.port }, callback);
  };
  return agent;
}

/**
 * Downloads and decrypts the media of `message` with Baileys' own
 * `downloadMediaMessage(message, 'buffer', { options: { httpsAgent: agent } })`
 * (Utils/messages.js:726): it fetches `message.url` when that starts with
 * https://mmg.whatsapp.net/, else https://mmg.whatsapp.net + directPath, and the agent
 * brings that connection to the sandbox. Returns { mediaType, mimetype, length, sha256,
 * fileSha256Matches, fileEncSha256 (hex, from the message), base64 (the plaintext, when
 * at most INLINE_LIMIT bytes, else null) }.
 */
export async function downloadWithBaileys(message, agent) {
  const described = describeMedia(message);
  if (!described) {
    throw new MediaError('message has no media (no mediaKey)');
  }
  const { mediaType, media } = described;
  const plaintext = await downloadMediaMessage(message, 'buffer', { options: { httpsAgent: agent } });
  const sha256 = createHash('sha256').update(plaintext).digest();
  const expected = media.fileSha256 ? Buffer.from(media.fileSha256) : null;
  return {
    mediaType,
    mimetype: media.mimetype ?? null,
    length: plaintext.length,
    sha256: sha256.toString('hex'),
    fileSha256Matches: expected ? expected.equals(sha256) : null,
    fileEncSha256: media.fileEncSha256 ? Buffer.from(media.fileEncSha256).toString('hex') : null,
    via: 'downloadMediaMessage',
    base64: plaintext.length <= INLINE_LIMIT ? plaintext.toString('base64') : null,
  };
}
