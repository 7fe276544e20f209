import { createHash } from 'node:crypto';

/** The hex SHA-256 of a string (UTF-8). */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * The fixed-length form of an id in keys, object paths and partition keys: the first 16 hex
 * digits of its SHA-256. Every store keeps and compares the id itself as well, so a collision
 * never mixes two tenants' (or users') data.
 */
export function idHash(id: string): string {
  return sha256Hex(id).slice(0, 16);
}
