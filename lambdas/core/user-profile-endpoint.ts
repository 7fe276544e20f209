import type { Caller } from './cache-key';
import { errorResponse, JSON_HEADERS, type HttpResponse } from './chat-endpoint';
import { HttpError } from './errors';
import { parseJsonBody } from './json-body';
import type { MetricsRecorder } from './ports';
import { parseUserProfile, type UserProfileReader, type UserProfileWriter } from './user-profiles';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';

/** The profile store of a router with profiles configured: reads on the reader, writes on the writer. */
export interface UserProfileStore extends UserProfileReader, UserProfileWriter {}

/**
 * `GET /v1/profile` answers the caller's profile (200) or 404 when there is none; `PUT /v1/profile`
 * replaces it (body: a {@link parseUserProfile} profile) through the writer endpoint and answers 204.
 * Both need a user id from the authorizer (403 without one). The read goes to the reader endpoint,
 * so a GET right after a PUT may see the previous profile for the replica lag (typically under
 * 100 ms on Aurora). Each call is bounded by the configured `timeoutMs`; a store that fails or
 * times out answers 503 (retryable).
 */
export async function handleUserProfile(
  store: UserProfileStore | undefined,
  config: RouterRuntimeConfig,
  metrics: MetricsRecorder,
  input: { method: 'GET' | 'PUT'; body: string | undefined; caller: Caller | undefined },
): Promise<HttpResponse> {
  try {
    if (!input.caller) throw new HttpError(401, 'No tenant in the authorizer context', 'unauthenticated');
    const profiles = config.userProfiles;
    if (!profiles || !store) throw new HttpError(404, 'This router keeps no user profiles', 'not-found');
    const { tenantId, userId } = input.caller;
    if (!userId) throw new HttpError(403, 'A profile needs a user id (JWT sub, or an IAM role session name)', 'no-user');
    if (input.method === 'GET') {
      const profile = await unavailableOnError(() => store.read(tenantId, userId, AbortSignal.timeout(profiles.timeoutMs)));
      if (!profile) throw new HttpError(404, 'No profile for this user', 'not-found');
      return { statusCode: 200, headers: { ...JSON_HEADERS, 'cache-control': 'private, no-store' }, body: JSON.stringify(profile) };
    }
    const bytes = Buffer.byteLength(input.body ?? '', 'utf8');
    if (bytes > config.maxRequestBytes) {
      throw new HttpError(413, `Request body is ${bytes} bytes; the limit is ${config.maxRequestBytes} bytes`, 'too-large');
    }
    const profile = parseUserProfile(parseJsonBody(input.body ?? ''));
    await unavailableOnError(() => store.write(tenantId, userId, profile, AbortSignal.timeout(profiles.timeoutMs)));
    return { statusCode: 204, headers: {}, body: '' };
  } catch (err) {
    if (err instanceof HttpError) return errorResponse(err, metrics);
    throw err;
  }
}

/** A store that cannot be reached (or is too slow) is a 503 the client may retry, not a 500. */
async function unavailableOnError<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new HttpError(503, `The user profile store is unavailable (${(err as Error).name}); retry later`, 'unavailable', { 'retry-after': '2' });
  }
}
