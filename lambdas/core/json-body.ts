import { HttpError } from './errors';

/**
 * Deepest nesting of arrays and objects a request body may have. A chat request needs 4 levels
 * (`{ messages: [{ content: [{ text }] }] }`), a job 6; anything far deeper is hostile: the
 * recursive walks that follow parsing (JSON.stringify, schema validation, hashing) would
 * overflow the stack on it.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * How deeply `text` nests arrays and objects, counted in one linear scan of the raw text
 * (brackets inside strings do not count), stopping as soon as `limit` is exceeded. Runs before
 * `JSON.parse`, so no recursive code ever sees a value deeper than the limit. The text need not
 * be valid JSON: the scan only counts; `JSON.parse` judges the syntax.
 *
 * @returns the depth, or `limit + 1` once the text nests deeper than `limit`
 */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++; // the escaped character, whatever it is, is part of the string
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return limit + 1;
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return deepest;
}

/**
 * Parses a JSON request body that was already checked for size: 400 when it nests deeper than
 * {@link MAX_JSON_DEPTH} levels (checked before parsing) or is not JSON.
 *
 * @throws HttpError 400 (`invalid`)
 */
export function parseJsonBody(body: string): unknown {
  if (jsonDepth(body) > MAX_JSON_DEPTH) {
    throw new HttpError(400, `Request body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; the limit is ${MAX_JSON_DEPTH}`, 'invalid');
  }
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new HttpError(400, `Request body is not valid JSON: ${(err as Error).message}`, 'invalid');
  }
}
