import type { AnswerCaches } from './answer-caches';
import type { Caller } from './cache-key';
import { errorResponse, JSON_HEADERS, type HttpResponse } from './chat-endpoint';
import { edgeTenantHeaderValue } from './edge-tenant';
import { HttpError } from './errors';
import type { MetricsRecorder } from './ports';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';

const MAX_QUESTION_CHARS = 1_024;
const RETRY_AFTER_SECONDS = 2;

/**
 * `GET /v1/static-answers?q=...`: the tenant's static answer to a question, without a model.
 * 200 with `Cache-Control: private, max-age=<maxAgeSeconds>`: the caller may keep it; a shared
 * cache (a CDN) may not, since the answer is the tenant's and the URL does not say which tenant;
 * 404 when no static answer matches; 503 with `retry-after` when the static answers cannot be read.
 *
 * Through the edge (origin verified, `edgeTenant` given): `edgeTenant` names the tenant the edge
 * verified and put in its cache key. Equal to the caller's tenant, the answer is `public` with
 * `s-maxage` (the edge may serve it to that tenant's callers); different, 403 (nothing served,
 * nothing cacheable): the edge's cache key would file this tenant's answer under another one.
 */
export async function handleStaticAnswer(
  caches: AnswerCaches,
  config: RouterRuntimeConfig,
  metrics: MetricsRecorder,
  input: { question: string | undefined; caller: Caller | undefined; edgeTenant?: string },
): Promise<HttpResponse> {
  try {
    if (!input.caller) throw new HttpError(401, 'No tenant in the authorizer context', 'unauthenticated');
    const edgeCacheSeconds = config.originVerification?.edgeCacheSeconds;
    const edgeVerified = input.edgeTenant !== undefined && edgeCacheSeconds !== undefined;
    if (edgeVerified && input.edgeTenant !== edgeTenantHeaderValue(input.caller.tenantId)) {
      throw new HttpError(403, 'The tenant the edge verified is not the tenant of the token', 'tenant-mismatch');
    }
    if (!config.staticAnswers) throw new HttpError(404, 'This router has no static answers', 'not-found');
    const question = input.question?.trim();
    if (!question) throw new HttpError(400, 'Query parameter q (the question) is required', 'invalid');
    if (question.length > MAX_QUESTION_CHARS) {
      throw new HttpError(400, `Query parameter q must be at most ${MAX_QUESTION_CHARS} characters; got ${question.length}`, 'invalid');
    }
    const hit = await caches.lookupStatic(input.caller.tenantId, question);
    if (hit === null) {
      // "No match" would be a lie the client (or its cache) keeps: the store is down, ask again.
      throw new HttpError(503, `Static answers are unavailable right now. Retry after ${RETRY_AFTER_SECONDS} seconds.`, 'unavailable', {
        'retry-after': String(RETRY_AFTER_SECONDS),
      });
    }
    if (!hit) throw new HttpError(404, 'No static answer matches this question', 'not-found');
    return {
      statusCode: 200,
      headers: {
        ...JSON_HEADERS,
        'cache-control': edgeVerified
          ? `public, max-age=0, s-maxage=${edgeCacheSeconds}`
          : `private, max-age=${config.staticAnswers.maxAgeSeconds}`,
        'x-cache': 'static',
      },
      body: JSON.stringify({
        id: hit.staticAnswerId,
        output: { text: hit.answer.text },
        match: hit.similarity === undefined ? 'exact' : 'semantic',
        similarity: hit.similarity === undefined ? undefined : Math.round(hit.similarity * 1000) / 1000,
      }),
    };
  } catch (err) {
    if (err instanceof HttpError) return errorResponse(err, metrics);
    throw err;
  }
}
