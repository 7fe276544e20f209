import { z } from 'zod';
import { withDeadline } from './abortable';
import { personalExactKeyPrefix, personalScopePrefix, type Caller } from './cache-key';
import { errorResponse, type HttpResponse } from './chat-endpoint';
import { HttpError } from './errors';
import { parseJsonBody } from './json-body';
import type { AnswerCache, MetricsRecorder } from './ports';
import type { VectorStore } from './semantic/ports';
import type { UserContextStore } from './user-context';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';

const preferencesSchema = z.object({
  preferences: z.record(
    z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, 'preference names are 1-64 letters, digits, "_", "." or "-", starting with a letter'),
    z.string().max(256, 'a preference value is at most 256 characters'),
  ).refine((p) => Object.keys(p).length <= 32, 'at most 32 preferences'),
}).strict();

/** Milliseconds each cache level may take to forget a user's personal answers at `DELETE /v1/context`. */
export const FORGET_TIMEOUT_MS = 8_000;

/** The caches that may hold a user's personal answers, for `DELETE /v1/context` to forget them. */
export interface PersonalAnswerStores {
  /** The exact cache: the user's personal keys (`<prefix>exact:<tenant>:u:<user>:...`) are deleted. */
  readonly exact?: AnswerCache;
  /** The semantic cache's vector store: the scopes of the user's personal entries are deleted. */
  readonly vectors?: VectorStore;
}

/**
 * `PUT /v1/context/preferences` (body `{ "preferences": { "language": "de" } }`) replaces the
 * caller's preferences; `DELETE /v1/context` forgets everything kept for the caller: the
 * sessions and preferences, and the caller's cached personal answers (the exact-cache entries
 * keyed with the user, and the semantic entries of every scope of the user: conversations,
 * session requests, questions with personal data), in the stores of `answers`. Both need a user
 * id from the authorizer (JWT `sub`, or the IAM role session name).
 *
 * What a DELETE cannot reach: answers written by requests still in flight when it runs, and, with
 * OpenSearch Serverless, documents indexed within the last refresh interval (60 s) — the caller
 * may repeat the DELETE (it is idempotent). Shared entries hold no personal data: a question with
 * personal data, a conversation or a session request is never cached in one.
 */
export async function handleUserContext(
  store: UserContextStore | undefined,
  config: RouterRuntimeConfig,
  metrics: MetricsRecorder,
  input: { method: 'PUT' | 'DELETE'; body: string | undefined; caller: Caller | undefined; answers?: PersonalAnswerStores },
): Promise<HttpResponse> {
  try {
    if (!input.caller) throw new HttpError(401, 'No tenant in the authorizer context', 'unauthenticated');
    const hasContext = config.userContext !== undefined;
    const forget = input.method === 'DELETE' ? forgetters(config, input.answers) : [];
    if (!hasContext && forget.length === 0) throw new HttpError(404, 'This router keeps no user context', 'not-found');
    const { tenantId, userId } = input.caller;
    if (!userId) throw new HttpError(403, 'User context needs a user id (JWT sub, or an IAM role session name)', 'no-user');
    // Configured but not reachable in this invocation (its connection is down): nothing may be
    // reported as forgotten or stored.
    if (hasContext && !store) throw unavailable('context');
    if (input.method === 'DELETE') {
      if (hasContext) await unavailableOnError(() => store!.clear(tenantId, userId));
      // Bounded, so that a large keyspace or a slow store answers a 503 to retry (the deletion is
      // idempotent) instead of outlasting API Gateway's 29 s.
      for (const f of forget) {
        await unavailableOnError(() => withDeadline(FORGET_TIMEOUT_MS, 'forgetting cached personal answers', () => f(tenantId, userId)), 'cache');
      }
      return { statusCode: 204, headers: {}, body: '' };
    }
    if (!hasContext) throw new HttpError(404, 'This router keeps no user context', 'not-found');
    const bytes = Buffer.byteLength(input.body ?? '', 'utf8');
    if (bytes > config.maxRequestBytes) {
      throw new HttpError(413, `Request body is ${bytes} bytes; the limit is ${config.maxRequestBytes} bytes`, 'too-large');
    }
    const json = parseJsonBody(input.body ?? '');
    const parsed = preferencesSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      // zod reports a record key that fails its schema as "Invalid key in record"; the reason is nested.
      const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
      throw new HttpError(400, `Invalid request: ${issue.path.join('.') || 'body'}: ${message}`, 'invalid');
    }
    const ttlSeconds = config.userContext.ttlSeconds;
    await unavailableOnError(() => store!.setPreferences(tenantId, userId, parsed.data.preferences, ttlSeconds));
    return { statusCode: 204, headers: {}, body: '' };
  } catch (err) {
    if (err instanceof HttpError) return errorResponse(err, metrics);
    throw err;
  }
}

/** The deletions of the user's cached personal answers that the configured stores support. */
type Forget = (tenantId: string, userId: string) => Promise<void>;

function forgetters(config: RouterRuntimeConfig, answers: PersonalAnswerStores | undefined): Forget[] {
  const ops: Forget[] = [];
  // A configured level whose store is missing in this invocation (its connection is down), or
  // cannot delete by prefix, fails the DELETE with a 503: a 204 would claim what did not happen.
  const exact = answers?.exact;
  if (config.exactCache && config.cache) {
    const keyPrefix = config.cache.keyPrefix;
    ops.push(async (tenantId, userId) => {
      if (!exact?.deleteByPrefix) throw new Error('the exact cache is not reachable');
      await exact.deleteByPrefix(personalExactKeyPrefix(keyPrefix, tenantId, userId));
    });
  }
  const vectors = answers?.vectors;
  if (config.semanticCache) {
    ops.push(async (tenantId, userId) => {
      if (!vectors?.deleteScopePrefix) throw new Error('the semantic cache is not reachable');
      await vectors.deleteScopePrefix(personalScopePrefix(tenantId, userId));
    });
  }
  return ops;
}

/** A store that cannot be reached is a 503 the client may retry, not a 500. */
async function unavailableOnError(op: () => Promise<void>, what: 'context' | 'cache' = 'context'): Promise<void> {
  try {
    await op();
  } catch (err) {
    throw unavailable(what, err as Error);
  }
}

function unavailable(what: 'context' | 'cache', err?: Error): HttpError {
  const store = what === 'context' ? 'user context store' : 'response cache';
  const cause = err ? ` (${err.name})` : '';
  return new HttpError(503, `The ${store} is unavailable${cause}; retry later`, 'unavailable', { 'retry-after': '2' });
}
