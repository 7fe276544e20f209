import { z } from 'zod';
import type { Caller } from './cache-key';
import { errorResponse, type HttpResponse } from './chat-endpoint';
import { HttpError } from './errors';
import { parseJsonBody } from './json-body';
import type { MetricsRecorder } from './ports';
import type { UserContextStore } from './user-context';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';

const preferencesSchema = z.object({
  preferences: z.record(
    z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, 'preference names are 1-64 letters, digits, "_", "." or "-", starting with a letter'),
    z.string().max(256, 'a preference value is at most 256 characters'),
  ).refine((p) => Object.keys(p).length <= 32, 'at most 32 preferences'),
}).strict();

/**
 * `PUT /v1/context/preferences` (body `{ "preferences": { "language": "de" } }`) replaces the
 * caller's preferences; `DELETE /v1/context` forgets everything kept for the caller. Both need
 * a user id from the authorizer (JWT `sub`, or the IAM role session name).
 */
export async function handleUserContext(
  store: UserContextStore | undefined,
  config: RouterRuntimeConfig,
  metrics: MetricsRecorder,
  input: { method: 'PUT' | 'DELETE'; body: string | undefined; caller: Caller | undefined },
): Promise<HttpResponse> {
  try {
    if (!input.caller) throw new HttpError(401, 'No tenant in the authorizer context', 'unauthenticated');
    if (!store || !config.userContext) throw new HttpError(404, 'This router keeps no user context', 'not-found');
    const { tenantId, userId } = input.caller;
    if (!userId) throw new HttpError(403, 'User context needs a user id (JWT sub, or an IAM role session name)', 'no-user');
    if (input.method === 'DELETE') {
      await unavailableOnError(() => store.clear(tenantId, userId));
      return { statusCode: 204, headers: {}, body: '' };
    }
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
    await unavailableOnError(() => store.setPreferences(tenantId, userId, parsed.data.preferences, ttlSeconds));
    return { statusCode: 204, headers: {}, body: '' };
  } catch (err) {
    if (err instanceof HttpError) return errorResponse(err, metrics);
    throw err;
  }
}

/** A store that cannot be reached is a 503 the client may retry, not a 500. */
async function unavailableOnError(op: () => Promise<void>): Promise<void> {
  try {
    await op();
  } catch (err) {
    throw new HttpError(503, `The user context store is unavailable (${(err as Error).name}); retry later`, 'unavailable', { 'retry-after': '2' });
  }
}
