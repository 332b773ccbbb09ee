// Media download for the harness: Baileys' own decryption path, fed from the
// sandbox's loopback media server instead of https://mmg.whatsapp.net.
//
// Baileys 6.7.24 `downloadContentFromMessage` (lib/Utils/messages-media.js:388)
// only accepts URLs starting with https://mmg.whatsapp.net/ and otherwise builds
// one from `directPath`, so it can never reach a local server. We therefore do
// what `downloadMediaMessage` does (lib/Utils/messages.js:740-770: extract the
// content, derive the media type from the content type, getMediaKeys, then
// downloadEncryptedContent) with the URL base swapped for `mediaBase`.
import { createHash } from 'node:crypto';
import {
  downloadEncryptedContent,
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
