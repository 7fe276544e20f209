import { createHash } from 'node:crypto';
import { idHash, isWellFormedUnicode, sha256Hex } from '../../lambdas/core/hashing';

describe('sha256Hex and idHash', () => {
  test('hash the UTF-8 bytes of a well-formed string, as before', () => {
    for (const s of ['', 'tenant-a', 'Zoë', 'emoji \u{1F600}', '\uFFFD']) {
      expect(sha256Hex(s)).toBe(createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex'));
    }
  });

  test('ids that differ only by a lone surrogate and U+FFFD hash apart (UTF-8 would encode both as EF BF BD)', () => {
    expect(Buffer.from('user-\uD800', 'utf8').equals(Buffer.from('user-\uFFFD', 'utf8'))).toBe(true);
    expect(idHash('user-\uD800')).not.toBe(idHash('user-\uFFFD'));
    expect(idHash('user-\uDC00')).not.toBe(idHash('user-\uFFFD'));
    expect(idHash('user-\uD800')).not.toBe(idHash('user-\uDC00'));
    expect(sha256Hex('\uD800')).not.toBe(sha256Hex('\uFFFD'));
  });

  test('a string with a lone surrogate does not hash like the string of its UTF-16 bytes either', () => {
    const lone = 'x\uD800';
    const asText = Buffer.concat([Buffer.from([0xff]), Buffer.from(lone, 'utf16le')]).toString('latin1');
    expect(sha256Hex(lone)).not.toBe(sha256Hex(asText));
  });

  test('isWellFormedUnicode agrees with String.prototype.isWellFormed', () => {
    for (const s of ['', 'abc', '\u{1F600}', '\uD83D\uDE00', '\uD83D', '\uDE00', 'a\uDE00\uD83D', '\uFFFD']) {
      expect(isWellFormedUnicode(s)).toBe((s as unknown as { isWellFormed(): boolean }).isWellFormed());
    }
  });
});
