/** How the load driver counts one answer of serve (bench/load.ts). */

/** How a request was served, or why it counts as an error although it got an HTTP answer. */
export type Served = 'hit' | 'miss' | 'fallback' | 'not-a-chat-answer';

/** The `x-cache` values of an answer from a cache level. */
const CACHE_LEVELS = new Set(['static', 'exact', 'semantic', 'coalesced']);

/**
 * A 200 is served (by the exact cache, a model, or a model after a fallback) only when its body is
 * a chat answer: JSON with a string `output.text`. Anything else (an empty body, HTML, an error
 * object sent with 200) is an error, as a client would see it.
 */
export function servedBy(xCache: string | string[] | undefined, body: string): Served {
  let parsed: { output?: { text?: unknown }; routing?: { attempts?: unknown } };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return 'not-a-chat-answer';
  }
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.output?.text !== 'string') return 'not-a-chat-answer';
  const level = String(xCache ?? '');
  if (CACHE_LEVELS.has(level)) return 'hit';
  if (level !== 'miss') return 'not-a-chat-answer';
  const attempts = Array.isArray(parsed.routing?.attempts) ? parsed.routing.attempts.length : 0;
  return attempts > 1 ? 'fallback' : 'miss';
}
