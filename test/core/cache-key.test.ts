import {
  exactCacheKey, isCacheable, isPersonal, looksLikeCode, normalizeText, personalExactKeyPrefix, personalScopePrefix, type Caller,
} from '../../lambdas/core/cache-key';
import type { ChatMessage, ChatRequest } from '../../lambdas/core/chat-request';

const PREFIX = 'sai:';
const ALICE: Caller = { tenantId: 'tenant-a', userId: 'alice' };
const BOB: Caller = { tenantId: 'tenant-a', userId: 'bob' };
const OTHER_TENANT: Caller = { tenantId: 'tenant-b', userId: 'alice' };

const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ messages: [{ role: 'user', text }], ...extra });
const turns = (...texts: string[]): ChatRequest => ({
  messages: texts.map((text, i): ChatMessage => ({ role: i % 2 === 0 ? 'user' : 'assistant', text })),
});

describe('normalizeText', () => {
  test.each([
    ['lower case', 'Where Is My ORDER', 'where is my order'],
    ['whitespace collapsed and trimmed', '  where \t is\n\nmy   order  ', 'where is my order'],
    ['trailing question mark', 'where is my order?', 'where is my order'],
    ['trailing mixed punctuation and spaces', 'where is my order ?!. ', 'where is my order'],
    ['NFKC: full-width letters and punctuation', 'Ｗｈｅｒｅ ｉｓ ｍｙ ｏｒｄｅｒ？', 'where is my order'],
    ['NFKC: ligatures', 'ﬁnd my order', 'find my order'],
    ['NFKC: no-break space', 'where\u00a0is my order', 'where is my order'],
    ['NFKC: composed and decomposed accents are equal', 'cafe\u0301', 'caf\u00e9'],
  ])('%s', (_name, input, expected) => {
    expect(normalizeText(input)).toBe(expected);
  });

  test('punctuation inside the text is kept', () => {
    expect(normalizeText('Is 3.5 > 3? Yes.')).toBe('is 3.5 > 3? yes');
    expect(normalizeText('¿Dónde está mi pedido?')).toBe('¿dónde está mi pedido');
  });

  test('other trailing characters are kept', () => {
    expect(normalizeText('order #42')).toBe('order #42');
    expect(normalizeText('hello :)')).toBe('hello :)');
  });

  test('is idempotent', () => {
    const once = normalizeText('  Ｗhere   IS my order?!  ');
    expect(normalizeText(once)).toBe(once);
  });

  test('keeps case and spacing inside code spans and fences, normalizes the prose around them', () => {
    expect(normalizeText('Why does `const Foo = 1; console.log(foo)` throw?')).toBe('why does `const Foo = 1; console.log(foo)` throw');
    expect(normalizeText('Why does `const Foo = 1; console.log(foo)` throw?')).not.toBe(normalizeText('Why does `const foo = 1; console.log(foo)` throw?'));
    expect(normalizeText('WHY does   `x`  fail?')).toBe(normalizeText('why does `x` fail'));
    const FENCE = '`'.repeat(3);
    const fence = (body: string) => `What does this print?\n${FENCE}py\n${body}\n${FENCE}\n`;
    expect(normalizeText(fence('if x:\n    print(x)\nprint(y)'))).not.toBe(normalizeText(fence('if x:\n    print(x)\n    print(y)')));
    expect(normalizeText(fence('X = 1'))).not.toBe(normalizeText(fence('x = 1')));
  });

  test('keeps a text that looks like code as written, without backticks', () => {
    const js = (name: string) => `Why does const ${name} = 1; console.log(foo) throw?`;
    expect(normalizeText(js('Foo'))).toBe(js('Foo'));
    expect(normalizeText(js('Foo'))).not.toBe(normalizeText(js('foo')));
    const py = (indent: string) => `Why does this fail:\nfor x in xs:\n${indent}total += x\nprint(total)`;
    expect(normalizeText(py('    '))).not.toBe(normalizeText(py('  ')));
  });

  test.each([
    ['const x = 1', true], ['foo(bar)', true], ['if (a) { b }', true], ['my_var is undefined', true], ['getElementById returns null', true],
    ['a => a + 1', true], ['line one\n    indented', true], ['items[0] is empty', true], ['echo $HOME', true],
    ['Where is my order?', false], ['Is 3.5 > 3? Yes.', false], ['hello :)', false], ['order #42', false], ['Can I use my iPhone or PayPal?', false],
    ['Do you ship to Canada (Quebec)?', false], ['It costs $50', false],
  ])('looksLikeCode(%j) is %s', (text, expected) => {
    expect(looksLikeCode(text)).toBe(expected);
  });

  test('drops trailing punctuation of any length, and keeps a long run of dots before other text', () => {
    expect(normalizeText(`where is my order${' ?!.'.repeat(10_000)}`)).toBe('where is my order');
    const dots = '.'.repeat(32_768);
    expect(normalizeText(`${dots}x`)).toBe(`${dots}x`);
  });
});

describe('exactCacheKey', () => {
  const key = (caller: Caller, req: ChatRequest, tier?: string) => exactCacheKey(PREFIX, caller, req, tier);

  test('starts with the prefix and carries no plain text of the request', () => {
    const k = key(ALICE, ask('my secret order number 12345'));
    expect(k.startsWith(`${PREFIX}exact:`)).toBe(true);
    expect(k).not.toMatch(/secret|12345|tenant-a|alice/);
  });

  test('equivalent questions share a key', () => {
    const base = key(ALICE, ask('Where is my order?', { system: 'You are helpful.' }));
    expect(key(ALICE, ask('  where IS my   order ', { system: 'You are helpful.' }))).toBe(base);
    expect(key(ALICE, ask('Ｗｈｅｒｅ is my order！', { system: 'You are helpful.' }))).toBe(base);
  });

  test('the system prompt and earlier turns count as written: case and spacing can matter there', () => {
    const base = key(ALICE, ask('Where is my order?', { system: 'Answer in the style of US English.' }));
    expect(key(ALICE, ask('Where is my order?', { system: 'answer in the style of us english' }))).not.toBe(base);
    const convo = (earlier: string): ChatRequest => ({
      messages: [{ role: 'user', text: earlier }, { role: 'assistant', text: 'ok' }, { role: 'user', text: 'And now?' }],
    });
    expect(key(ALICE, convo('const ID = 1'))).not.toBe(key(ALICE, convo('const id = 1')));
  });

  test('is stable across calls', () => {
    expect(key(ALICE, ask('hi'))).toBe(key(ALICE, ask('hi')));
  });

  describe('differs when anything that changes the answer differs', () => {
    const base = ask('Where is my order?', { system: 'You are helpful.', maxTokens: 200, temperature: 0.5 });
    const baseKey = key(ALICE, base, 'small');

    test.each<[string, Caller, ChatRequest, string | undefined]>([
      ['tenant', OTHER_TENANT, base, 'small'],
      ['system prompt', ALICE, { ...base, system: 'You are terse.' }, 'small'],
      ['no system prompt', ALICE, { ...base, system: undefined }, 'small'],
      ['maxTokens', ALICE, { ...base, maxTokens: 201 }, 'small'],
      ['no maxTokens', ALICE, { ...base, maxTokens: undefined }, 'small'],
      ['temperature', ALICE, { ...base, temperature: 0.6 }, 'small'],
      ['temperature 0', ALICE, { ...base, temperature: 0 }, 'small'],
      ['tier', ALICE, base, 'large'],
      ['no tier', ALICE, base, undefined],
      ['message text', ALICE, { ...base, messages: [{ role: 'user', text: 'Where is my refund?' }] }, 'small'],
    ])('%s', (_name, caller, req, tier) => {
      expect(key(caller, req, tier)).not.toBe(baseKey);
    });

    test('temperature 0 and no temperature are different requests', () => {
      expect(key(ALICE, ask('hi', { temperature: 0 }))).not.toBe(key(ALICE, ask('hi')));
    });

    test('where the text is split between turns matters', () => {
      expect(key(ALICE, turns('a b', 'c', 'd'))).not.toBe(key(ALICE, turns('a', 'b c', 'd')));
    });

    test('the earlier turns of a conversation matter', () => {
      expect(key(ALICE, turns('my size is S', 'noted', 'which shirt fits me?'))).not.toBe(
        key(ALICE, turns('my size is XL', 'noted', 'which shirt fits me?')),
      );
    });
  });

  test('a tenant id cannot be confused with a user id', () => {
    expect(key({ tenantId: 'a', userId: 'b' }, turns('x', 'y', 'z'))).not.toBe(key({ tenantId: 'b', userId: 'a' }, turns('x', 'y', 'z')));
  });

  test('a single question is shared by the users of a tenant', () => {
    const q = ask('What are your opening hours?');
    expect(key(ALICE, q)).toBe(key(BOB, q));
    expect(key(ALICE, q)).toBe(key({ tenantId: 'tenant-a' }, q));
  });

  test('a single question is never shared across tenants', () => {
    const q = ask('What are your opening hours?');
    expect(key(ALICE, q)).not.toBe(key(OTHER_TENANT, q));
  });

  test('a multi-turn conversation is scoped to its user', () => {
    const c = turns('my address is 1 Main St', 'noted', 'when will it arrive?');
    expect(key(ALICE, c)).not.toBe(key(BOB, c));
    expect(key(ALICE, c)).toBe(key({ ...ALICE }, c));
  });

  test('keys of one tenant share a tenant segment that other tenants do not have (for SCAN MATCH)', () => {
    const segment = (k: string) => k.split(':').slice(0, 3).join(':');
    const a1 = key(ALICE, ask('one'));
    const a2 = key(BOB, turns('two', 'x', 'y'), 'large');
    const b1 = key(OTHER_TENANT, ask('one'));
    expect(segment(a1)).toBe(segment(a2));
    expect(segment(a1)).not.toBe(segment(b1));
    expect(segment(a1).startsWith(`${PREFIX}exact:`)).toBe(true);
    expect(segment(a1).length).toBeGreaterThan(`${PREFIX}exact:`.length);
  });

  test('the prefix namespaces keys', () => {
    expect(exactCacheKey('x:', ALICE, ask('hi'), undefined)).not.toBe(exactCacheKey('y:', ALICE, ask('hi'), undefined));
  });
});

describe('isCacheable', () => {
  test('a single question is cacheable with or without a user id', () => {
    expect(isCacheable(ALICE, ask('hi'))).toBe(true);
    expect(isCacheable({ tenantId: 't' }, ask('hi'))).toBe(true);
  });

  test('a conversation is cacheable only when it can be scoped to a user', () => {
    const c = turns('a', 'b', 'c');
    expect(isCacheable(ALICE, c)).toBe(true);
    expect(isCacheable({ tenantId: 't' }, c)).toBe(false);
  });
});

describe('isPersonal', () => {
  test('a single question that carries personal data is personal', () => {
    expect(isPersonal(ask('my name is alice and my diagnosis is diabetes, what should I eat?'))).toBe(true);
    expect(isPersonal(ask('Please email the statement to alice@example.com'))).toBe(true);
    expect(isPersonal(ask('my card has not arrived'))).toBe(false);
    expect(isPersonal(ask('why was my transfer declined?'))).toBe(false);
  });

  test('the exact key of a question with personal data is scoped to its user, and such a question needs a user id to be cached', () => {
    const req = ask('my name is alice and my diagnosis is diabetes, what should I eat?');
    expect(exactCacheKey(PREFIX, ALICE, req, undefined)).not.toBe(exactCacheKey(PREFIX, BOB, req, undefined));
    expect(isCacheable({ tenantId: 'tenant-a' }, req)).toBe(false);
  });

  test('personal keys of a user start with the user\'s prefix; shared keys and other users\' keys do not', () => {
    const key = (caller: Caller, req: ChatRequest) => exactCacheKey(PREFIX, caller, req, undefined);
    const mine = personalExactKeyPrefix(PREFIX, 'tenant-a', 'alice');
    expect(key(ALICE, turns('a', 'b', 'c')).startsWith(mine)).toBe(true);
    expect(key(ALICE, ask('hi', { session: 's' })).startsWith(mine)).toBe(true);
    expect(key(ALICE, ask('hi')).startsWith(mine)).toBe(false);
    expect(key(BOB, turns('a', 'b', 'c')).startsWith(mine)).toBe(false);
    expect(key(OTHER_TENANT, turns('a', 'b', 'c')).startsWith(mine)).toBe(false);
    expect(personalScopePrefix('tenant-a', 'alice')).toMatch(/^u[0-9a-f]{32}$/);
    expect(personalScopePrefix('tenant-a', 'alice')).not.toBe(personalScopePrefix('tenant-a', 'bob'));
  });

  test('a single question without a session is not personal', () => {
    expect(isPersonal(ask('hi'))).toBe(false);
    expect(isPersonal(ask('hi', { system: 's', maxTokens: 5, temperature: 0, tierHint: 'large' }))).toBe(false);
  });

  test('a conversation is personal', () => {
    expect(isPersonal(turns('a', 'b', 'c'))).toBe(true);
  });

  test('a request that names a session is personal, even a single question', () => {
    expect(isPersonal(ask('hi', { session: 's-1' }))).toBe(true);
    expect(isPersonal({ ...turns('a', 'b', 'c'), session: 's-1' })).toBe(true);
  });

  test('a session request is cacheable only with a user id', () => {
    expect(isCacheable(ALICE, ask('hi', { session: 's-1' }))).toBe(true);
    expect(isCacheable({ tenantId: 't' }, ask('hi', { session: 's-1' }))).toBe(false);
  });

  test('the exact key of a session request is scoped to its user', () => {
    const req = ask('What is my name?', { session: 's-1' });
    expect(exactCacheKey(PREFIX, ALICE, req, undefined)).not.toBe(exactCacheKey(PREFIX, BOB, req, undefined));
    // Without the session the same question is shared by the users of the tenant.
    expect(exactCacheKey(PREFIX, ALICE, ask('What is my name?'), undefined)).toBe(exactCacheKey(PREFIX, BOB, ask('What is my name?'), undefined));
  });

  test('the personal flag, when passed, decides whether the user is in the key', () => {
    const req = ask('hi');
    expect(exactCacheKey(PREFIX, ALICE, req, undefined, true)).not.toBe(exactCacheKey(PREFIX, BOB, req, undefined, true));
    expect(exactCacheKey(PREFIX, ALICE, req, undefined, false)).toBe(exactCacheKey(PREFIX, BOB, req, undefined, false));
  });
});
