import { HttpError } from '../../lambdas/core/errors';
import { jsonDepth, MAX_JSON_DEPTH, parseJsonBody } from '../../lambdas/core/json-body';

const nested = (depth: number, open = '[', close = ']'): string => open.repeat(depth) + close.repeat(depth);

function httpErrorOf(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return err as HttpError;
  }
  throw new Error('expected an HttpError');
}

describe('jsonDepth', () => {
  test.each<[string, number]>([
    ['1', 0],
    ['"text"', 0],
    ['[]', 1],
    ['{"a":[1,{"b":[]}]}', 4],
    ['[[],[],[[]]]', 3],
    // Brackets inside strings are text, also after escaped quotes and backslashes.
    ['["[[[[", "{{{{"]', 1],
    ['["\\"[[[", "\\\\", [2]]', 2],
    ['{"a\\"{": {"b": "}}}}"}}', 2],
  ])('%s nests %i levels', (text, depth) => {
    expect(jsonDepth(text)).toBe(depth);
    // It agrees with the depth of the parsed value.
    expect(depthOf(JSON.parse(text))).toBe(depth);
  });

  test('stops counting past the limit', () => {
    expect(jsonDepth(nested(10_000), 32)).toBe(33);
  });

  test('a 20 KB body of nested arrays is measured without recursion', () => {
    expect(jsonDepth(nested(10_000), 100_000)).toBe(10_000);
  });
});

describe('parseJsonBody', () => {
  test(`${MAX_JSON_DEPTH} levels are accepted`, () => {
    expect(depthOf(parseJsonBody(nested(MAX_JSON_DEPTH)))).toBe(MAX_JSON_DEPTH);
  });

  test.each<[string, string]>([
    ['one level too many', nested(MAX_JSON_DEPTH + 1)],
    ['a 20 KB body of nested arrays', nested(10_000)],
    ['nested objects', `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`],
    ['an unterminated deep body', '['.repeat(20_000)],
  ])('%s: 400 naming the limit', (_, body) => {
    const err = httpErrorOf(() => parseJsonBody(body));
    expect(err.statusCode).toBe(400);
    expect(err.reason).toBe('invalid');
    expect(err.message).toContain(`the limit is ${MAX_JSON_DEPTH}`);
  });

  test('a body that is not JSON: 400 with the parser message', () => {
    const err = httpErrorOf(() => parseJsonBody('{"messages": ['));
    expect(err.statusCode).toBe(400);
    expect(err.message).toMatch(/^Request body is not valid JSON: /);
  });
});

/** Depth of a parsed value (a test oracle; recursion is fine at these depths). */
function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf));
  if (typeof value === 'object' && value !== null) return 1 + Math.max(0, ...Object.values(value).map(depthOf));
  return 0;
}
