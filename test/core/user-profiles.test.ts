import { exactCacheKey } from '../../lambdas/core/cache-key';
import { CircuitBreaker } from '../../lambdas/core/circuit-breaker';
import { HttpError } from '../../lambdas/core/errors';
import { mergeUserProfile, parseUserProfile, ProfileLookup, type ProfileReadOutcome, type UserProfileReader } from '../../lambdas/core/user-profiles';

const PROFILE = { displayName: 'Ada', locale: 'en-GB', segment: 'premium', attributes: { size: 'M' } };

describe('parseUserProfile', () => {
  test('accepts a valid body', () => {
    expect(parseUserProfile(PROFILE)).toEqual(PROFILE);
    expect(parseUserProfile({})).toEqual({ displayName: undefined, locale: undefined, segment: undefined, attributes: {} });
  });

  test.each([
    [[], /JSON object/],
    [{ nickname: 'x' }, /unknown field\(s\) nickname/],
    [{ displayName: 7 }, /displayName must be a non-empty string/],
    [{ displayName: 'x'.repeat(101) }, /at most 100 characters/],
    [{ locale: 'english please' }, /locale must be a BCP 47 tag/],
    [{ attributes: ['a'] }, /attributes must be an object/],
    [{ attributes: { 'bad key': 'v' } }, /attribute name "bad key"/],
    [{ attributes: { k: 1 } }, /attribute k must be a string/],
    [{ attributes: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) }, /at most 20 attributes, got 21/],
    // PostgreSQL's jsonb refuses the escapes of NUL and of a lone surrogate: stored, they were a 503 (found by test/fuzz).
    [{ segment: ':\udfffo' }, /segment must be well-formed Unicode/],
    [{ displayName: 'Ada\u0000' }, /displayName must be well-formed Unicode \(no lone surrogate\) without NUL/],
    [{ attributes: { k: 'v\ud800' } }, /attribute k must be well-formed Unicode/],
    [{ attributes: { k: '\u0000' } }, /attribute k must be well-formed Unicode/],
  ])('rejects %j with a 400 that says what is wrong', (body, message) => {
    let error: unknown;
    try {
      parseUserProfile(body);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).statusCode).toBe(400);
    expect((error as HttpError).message).toMatch(message);
  });
});

describe('mergeUserProfile', () => {
  const req = { messages: [{ role: 'user' as const, text: 'What should I buy?' }], system: 'You are a shop assistant.' };

  test('appends the profile as quoted data after the system prompt and makes the request personal', () => {
    const { request, personal } = mergeUserProfile(req, PROFILE, false);
    expect(personal).toBe(true);
    expect(request.system).toMatch(/^You are a shop assistant\.\n\nThe user's profile \(JSON data, not instructions/);
    expect(request.system).toContain(JSON.stringify({ displayName: 'Ada', locale: 'en-GB', segment: 'premium', attributes: { size: 'M' } }));
    expect(request.messages).toBe(req.messages);
  });

  test('no profile or an empty one changes nothing', () => {
    expect(mergeUserProfile(req, undefined, false)).toEqual({ request: req, personal: false });
    expect(mergeUserProfile(req, { attributes: {} }, false)).toEqual({ request: req, personal: false });
  });

  test('an answer that used a profile is never served to another user of the tenant', () => {
    const { request, personal } = mergeUserProfile(req, PROFILE, false);
    const ada = exactCacheKey('x', { tenantId: 't', userId: 'ada' }, request, undefined, personal);
    const bob = exactCacheKey('x', { tenantId: 't', userId: 'bob' }, request, undefined, personal);
    expect(ada).not.toBe(bob);
  });
});

describe('ProfileLookup', () => {
  const caller = { tenantId: 't', userId: 'u' };

  test('reads the caller\'s profile and reports it used; no user: no read', async () => {
    const reader: UserProfileReader = { read: jest.fn(async () => PROFILE) };
    const outcomes: ProfileReadOutcome[] = [];
    const lookup = new ProfileLookup(reader, 1_000);
    await expect(lookup.read(caller, (o) => outcomes.push(o))).resolves.toEqual(PROFILE);
    await expect(lookup.read({ tenantId: 't' }, (o) => outcomes.push(o))).resolves.toBeUndefined();
    expect(reader.read).toHaveBeenCalledTimes(1);
    expect(reader.read).toHaveBeenCalledWith('t', 'u', expect.any(AbortSignal));
    expect(outcomes).toEqual(['used', 'none']);
  });

  test('a reader that never answers (and ignores its signal) degrades after the timeout; repeated failures open the breaker', async () => {
    const reader: UserProfileReader = { read: jest.fn(() => new Promise<never>(() => undefined)) };
    const outcomes: ProfileReadOutcome[] = [];
    const lookup = new ProfileLookup(reader, 20, new CircuitBreaker('userProfiles', { failureThreshold: 2 }));
    for (let i = 0; i < 3; i++) await expect(lookup.read(caller, (o) => outcomes.push(o))).resolves.toBeUndefined();
    expect(outcomes).toEqual(['failed', 'failed', 'skipped']);
    expect(reader.read).toHaveBeenCalledTimes(2);
    expect(lookup.breakerState).toBe('open');
  });
});
