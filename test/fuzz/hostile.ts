/**
 * What the property-based tests (test/fuzz) share: fast-check's parameters (with the seed and
 * run count overridable from the environment, to replay a failure) and the arbitraries of
 * hostile input: text with control characters, NUL, lone surrogates and non-characters, JSON of
 * any shape, request bodies of the right shape with one field wrong, bodies near and over the
 * size limits, deep nesting, prototype-pollution keys, and ids built to collide with cache keys.
 */
import fc from 'fast-check';

/**
 * fast-check's parameters for one property: `defaultRuns` runs, unless `FC_NUM_RUNS` says
 * otherwise; `FC_SEED` (and `FC_PATH`) replay the failure fast-check printed.
 */
export function fcParams<T>(defaultRuns: number): fc.Parameters<T> {
  const seed = process.env.FC_SEED;
  return {
    numRuns: process.env.FC_NUM_RUNS ? Number(process.env.FC_NUM_RUNS) : defaultRuns,
    ...(seed ? { seed: Number(seed), path: process.env.FC_PATH } : {}),
    // The shrunk counterexample and the seed are in the failure message; no timing is asserted.
    endOnFailure: false,
  };
}

/** Characters that break naive handling: NUL, controls, separators, lone surrogates, non-characters, combining marks. */
export const NASTY_CHARS = [
  '\u0000', '\u0001', '\u0007', '\b', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u00a0', '\u2028', '\u2029', '\u200b', '\u200d',
  '\ufeff', '\ufffd', '\ufffe', '\uffff', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d\ude00', '\u0301', 'ﬁ', 'Å', 'A\u030a', 'İ', 'ß',
  '"', '\\', '/', ':', '*', '?', '[', ']', '{', '}', '%', '%00', '\\u0000', '`', '```', '$', '\u202e',
];

/** Separators and fragments of the cache's keys (cache-key.ts: `<prefix>exact:<tenant hash>:u:<user hash>:<sha>`). */
export const KEY_FRAGMENTS = ['sai:', 'exact:', ':u:', ':', 'u', 'fb:', 'ctx:', '*', '0123456789abcdef', 'exact:0123456789abcdef:u:', '\r\n', ' ', ''];

/** Text of any code units: binary (lone surrogates included), full Unicode, and mixes with the nasty characters. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.string({ unit: 'grapheme', maxLength: 32 }),
  fc.string({ unit: 'binary-ascii', maxLength: 64 }),
  fc.array(fc.oneof(fc.constantFrom(...NASTY_CHARS), fc.string({ maxLength: 4 })), { maxLength: 16 }).map((parts) => parts.join('')),
);

/** Text of a question that validation accepts (something besides whitespace), hostile everywhere else. */
export const hostileQuestion: fc.Arbitrary<string> = fc.tuple(hostileText, fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme-ascii' }), hostileText)
  .map(([a, b, c]) => `${a}${b.trim() ? b : 'x'}${c}`);

/** An id built to collide with another or to break a key prefix: separators, key fragments, near-duplicates, very long. */
export const hostileId: fc.Arbitrary<string> = fc.oneof(
  fc.array(fc.constantFrom(...KEY_FRAGMENTS, ...NASTY_CHARS, 'TenantA', 'user-1'), { minLength: 1, maxLength: 8 }).map((p) => p.join('')),
  hostileText,
  fc.integer({ min: 200, max: 5_000 }).map((n) => 'T'.repeat(n)),
);

/** Keys that pollute prototypes if a parser or a merge assigns them naively. */
export const POLLUTING_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '__defineGetter__', 'valueOf'];

/** Wrong values for any field: wrong types, nulls, arrays for objects, objects for strings, huge numbers, polluting objects. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -0, '', ' ', [], {}, [null], [{}], { text: 1 }, [[[]]]),
  fc.jsonValue({ maxDepth: 3 }),
  hostileText,
);

/** JSON nested `depth` levels in arrays or objects (or alternating), as raw text. */
export function nestedText(depth: number, kind: 'array' | 'object' | 'mixed', inner = '1'): string {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    const array = kind === 'array' || (kind === 'mixed' && i % 2 === 0);
    open += array ? '[' : '{"a":';
    close = (array ? ']' : '}') + close;
  }
  return `${open}${inner}${close}`;
}

/** Raw text nested around the 32-level limit, in the body itself or inside a field of a chat request. */
export const deepBody: fc.Arbitrary<string> = fc
  .record({ depth: fc.integer({ min: 28, max: 200 }), kind: fc.constantFrom<'array' | 'object' | 'mixed'>('array', 'object', 'mixed'), where: fc.constantFrom('top', 'content', 'message', 'unclosed') })
  .map(({ depth, kind, where }) => {
    if (where === 'top') return nestedText(depth, kind);
    if (where === 'unclosed') return '['.repeat(depth);
    if (where === 'content') return `{"messages":[{"role":"user","content":${nestedText(depth, kind, '"hi"')}}]}`;
    return `{"messages":[${nestedText(depth, kind, '{"role":"user","content":"hi"}')}]}`;
  });

/** Bodies around a byte limit: one multi-byte or single-byte character repeated to just under, at, or just over `limit` bytes. */
export function nearLimitBody(limit: number): fc.Arbitrary<string> {
  return fc
    .record({ ch: fc.constantFrom('a', 'é', '€', '\ud83d\ude00', '\\u0000', '\u0000'), delta: fc.integer({ min: -64, max: 64 }) })
    .map(({ ch, delta }) => {
      const envelope = (s: string): string => JSON.stringify({ messages: [{ role: 'user', content: s }] });
      const per = Buffer.byteLength(envelope(ch), 'utf8') - Buffer.byteLength(envelope(''), 'utf8');
      const count = Math.max(1, Math.floor((limit - Buffer.byteLength(envelope(''), 'utf8') + delta) / per));
      return envelope(ch.repeat(count));
    });
}

/** A valid chat request body with hostile text in every free field. */
export const validChat: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    messages: fc.oneof(
      hostileQuestion.map((q) => [{ role: 'user', content: q }]),
      hostileQuestion.map((q) => [{ role: 'user', content: [{ text: q }, { text: q }] }]),
      fc.tuple(hostileQuestion, hostileQuestion, hostileQuestion).map(([a, b, c]) => [
        { role: 'user', content: a }, { role: 'assistant', content: b }, { role: 'user', content: c },
      ]),
    ),
    system: hostileText,
    maxTokens: fc.integer({ min: 1, max: 4_096 }),
    temperature: fc.double({ min: 0, max: 1, noNaN: true }),
    session: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
  },
  { requiredKeys: ['messages'] },
);

/** Sets the value at `path` of a deep copy of `value` (creating objects on the way, as own properties even for `__proto__`). */
export function withValueAt(value: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy = (Array.isArray(value) ? [...value] : typeof value === 'object' && value !== null ? { ...value } : {}) as Record<string | number, unknown>;
  const current = Object.prototype.hasOwnProperty.call(copy, head) ? copy[head] : undefined;
  Object.defineProperty(copy, head, { value: withValueAt(current, rest, replacement), enumerable: true, writable: true, configurable: true });
  return copy;
}

/** Every path to a value in a JSON value (the root included). */
export function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...prefix, i])));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...prefix, k]));
  return out;
}

/**
 * A body of the right shape (built by `valid`) with one thing wrong: one value replaced by a
 * wrong one, or one unknown or prototype-polluting key added to one object.
 */
export function oneWrongField(valid: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<unknown> {
  return valid.chain((body) => {
    const paths = pathsOf(body);
    const objects = paths.filter((p) => {
      let v: unknown = body;
      for (const k of p) v = (v as Record<string | number, unknown>)[k];
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    });
    return fc.oneof(
      fc.record({ path: fc.constantFrom(...paths), value: wrongValue }).map(({ path, value }) => withValueAt(body, path, value)),
      fc.record({ path: fc.constantFrom(...objects), key: fc.oneof(fc.constantFrom(...POLLUTING_KEYS), hostileText), value: wrongValue })
        .map(({ path, key, value }) => withValueAt(body, [...path, key], value)),
    );
  });
}

/** Raw request text: any JSON value, JSON with polluting keys, broken JSON, deep nesting, hostile text. */
export function rawBodies(validBody: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<string> {
  return fc.oneof(
    fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
    validBody.map((b) => JSON.stringify(b)),
    oneWrongField(validBody).map((b) => JSON.stringify(b) ?? 'null'),
    deepBody,
    hostileText,
    // Truncated anywhere.
    validBody.map((b) => JSON.stringify(b)).chain((text) => fc.nat(Math.max(0, text.length - 1)).map((cut) => text.slice(0, cut))),
    fc.constantFrom(
      '{"__proto__":{"messages":[{"role":"user","content":"polluted"}]}}',
      '{"messages":[{"role":"user","content":"hi"}],"__proto__":{"admin":true}}',
      '{"messages":[{"role":"user","content":"hi","__proto__":{"role":"assistant"}}]}',
      '{"constructor":{"prototype":{"polluted":true}},"messages":[{"role":"user","content":"hi"}]}',
      '{"messages":{"0":{"role":"user","content":"hi"},"length":1}}',
      '{"messages":[{"role":"user","content":"hi"}],"messages":[]}',
      '{"messages":[{"role":"user","content":"\\ud800"}]}',
      '{"messages":[{"role":"user","content":"a\\u0000b"}]}',
      '\ufeff{"messages":[{"role":"user","content":"hi"}]}',
      '{"messages":[{"role":"user","content":"hi"}]} trailing',
      '{"messages":[{"role":"user","content":"hi"}],"maxTokens":1e400}',
      '{"messages":[{"role":"user","content":"hi"}],"temperature":-0}',
      '', ' ', 'null', '[]', '{}', '"messages"', 'NaN', '0', ']'.repeat(40) + '['.repeat(40),
    ),
  );
}

/** Whether anything was added to Object.prototype (a polluted prototype would show up on every object). */
export function prototypeIsClean(): boolean {
  const keys = Object.getOwnPropertyNames(Object.prototype);
  return keys.every((k) => BUILTIN_PROTOTYPE_KEYS.has(k)) && ({} as Record<string, unknown>).polluted === undefined;
}
const BUILTIN_PROTOTYPE_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));
