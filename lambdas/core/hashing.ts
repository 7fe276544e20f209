import { createHash } from 'node:crypto';

/**
 * Whether a string is well-formed Unicode (no lone surrogate). UTF-8 cannot encode a lone
 * surrogate: Node replaces it with U+FFFD, so "a\uD800" and "a\uFFFD" would encode, and hash,
 * the same.
 */
export function isWellFormedUnicode(value: string): boolean {
  return !/\p{Cs}/u.test(value);
}

/**
 * The hex SHA-256 of a string: of its UTF-8 bytes when it is well-formed Unicode (every
 * well-formed string), otherwise of a 0xFF byte (which never occurs in UTF-8) followed by its
 * UTF-16 code units, so that a string with a lone surrogate never hashes like the same string
 * with U+FFFD, nor like any other string.
 */
export function sha256Hex(value: string): string {
  const hash = createHash('sha256');
  if (isWellFormedUnicode(value)) return hash.update(value, 'utf8').digest('hex');
  return hash.update(Buffer.from([0xff])).update(Buffer.from(value, 'utf16le')).digest('hex');
}

/**
 * The fixed-length form of an id in keys, object paths and partition keys: the first 16 hex
 * digits of its SHA-256 ({@link sha256Hex}: ids that differ only by a lone surrogate and U+FFFD
 * hash apart). Every store keeps and compares the id itself as well, so a collision never mixes
 * two tenants' (or users') data.
 */
export function idHash(id: string): string {
  return sha256Hex(id).slice(0, 16);
}
