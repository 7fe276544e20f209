import type { Caller } from './cache-key';
import { parseChatRequest } from './chat-request';
import type { ChatResult, ChatService } from './chat-service';
import { HttpError } from './errors';
import { recordServing, type ServingRecordStore } from './feedback';
import type { MetricsRecorder } from './ports';
import type { QuotaGate } from './quota';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';

export interface HttpResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The JSON body of a successful `POST /v1/chat`. */
export interface ChatResponseBody {
  /** Id of this request (also the `x-request-id` header): what `POST /v1/feedback` takes. */
  readonly requestId: string;
  readonly output: { readonly text: string };
  /** Tier that answered; null when a cache did. */
  readonly tier: string | null;
  /** How the request was served: `static`, `exact`, `semantic` (a cache level), `coalesced` (the answer of an identical request in flight) or `miss` (a model answered). */
  readonly cache: string;
  readonly usage: { readonly inputTokens: number; readonly outputTokens: number };
  readonly costUsd: number;
  readonly stopReason?: string;
  readonly routing: {
    readonly complexity: number;
    readonly classifiedTier: string;
    readonly reasons: string[];
    readonly tierHintHonoured: boolean;
    readonly attempts: ChatResult['attempts'];
    readonly cachedFromTier?: string;
    /** Cosine similarity of the cached question that answered (semantic matches). */
    readonly similarity?: number;
    /** Id of the static answer that answered. */
    readonly staticAnswerId?: string;
    /** Turns of the user's session merged into the model request. */
    readonly contextTurns: number;
  };
}

export const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

/** The response of a rejected or failed request: `{ "error": { "code", "message" } }`. */
export function errorResponse(err: HttpError, metrics: MetricsRecorder): HttpResponse {
  if (err.statusCode < 500) metrics.add(M.REJECTED_REQUESTS, 'Count', 1, { [M.DIMENSION_REASON]: err.reason });
  return {
    statusCode: err.statusCode,
    headers: { ...JSON_HEADERS, ...err.headers },
    body: JSON.stringify({ error: { code: err.reason, message: err.message } }),
  };
}

/**
 * `POST /v1/chat` from body to response: validate, answer, shape, and record the request
 * metrics. Knows nothing of Lambda or API Gateway types; the handler adapts the event.
 */
export async function handleChat(
  service: ChatService,
  config: RouterRuntimeConfig,
  metrics: MetricsRecorder,
  input: {
    body: string | undefined;
    caller: Caller | undefined;
    deadline: number;
    now?: () => number;
    /** Id of the request (the Lambda's request id), returned in the body and keyed into its serving record. */
    requestId: string;
    /** Where the serving record of the answer is written (`POST /v1/feedback`); absent: none is. */
    servingRecords?: ServingRecordStore;
    /** The caller's quotas: checked before the answer, charged its cost after; absent: none. */
    quotas?: QuotaGate;
  },
): Promise<HttpResponse> {
  const now = input.now ?? Date.now;
  const started = now();
  metrics.add(M.REQUESTS, 'Count', 1);
  try {
    if (!input.caller) {
      throw new HttpError(401, 'No tenant in the authorizer context: the route must sit behind the IAM or JWT authorizer', 'unauthenticated');
    }
    const req = parseChatRequest(input.body, {
      maxRequestBytes: config.maxRequestBytes,
      maxMessages: config.maxMessages,
      tierIds: config.tiers.map((t) => t.id),
    });
    // After validation (a request refused for its content costs nothing), before any cache or model.
    const admission = await input.quotas?.admit(input.caller, metrics);
    const result = await service.chat(req, input.caller, input.deadline);
    await input.quotas?.charge(admission, result.costUsd, metrics);
    if (input.servingRecords) {
      const record = { requestId: input.requestId, caller: input.caller, result, deadline: input.deadline };
      await recordServing(input.servingRecords, config, metrics, record, now);
    }
    const cache = result.servedBy === 'model' ? 'miss' : result.servedBy;
    recordLatency(metrics, now() - started, result.servedBy, result.tierId);
    const body: ChatResponseBody = {
      requestId: input.requestId,
      output: { text: result.text },
      tier: result.tierId ?? null,
      cache,
      usage: result.usage,
      costUsd: result.costUsd,
      stopReason: result.stopReason,
      routing: {
        complexity: result.complexity.score,
        classifiedTier: result.complexity.tierId,
        reasons: result.complexity.reasons,
        tierHintHonoured: result.hintHonoured,
        attempts: result.attempts,
        cachedFromTier: result.originalTierId,
        similarity: result.similarity === undefined ? undefined : Math.round(result.similarity * 1000) / 1000,
        staticAnswerId: result.staticAnswerId,
        contextTurns: result.contextTurns,
      },
    };
    return {
      statusCode: 200,
      headers: {
        ...JSON_HEADERS,
        'x-cache': cache,
        'x-tier': result.tierId ?? 'none',
        'x-cost-usd': result.costUsd.toFixed(6),
      },
      body: JSON.stringify(body),
    };
  } catch (err) {
    if (err instanceof HttpError) {
      recordLatency(metrics, now() - started, 'error');
      return errorResponse(err, metrics);
    }
    throw err;
  }
}

/**
 * One latency sample under every dimension set the dashboards and alarms read: overall (a
 * percentile cannot be computed from per-dimension series), by how it was served, and by the
 * tier that answered. One value under several sets costs nothing more in the EMF document.
 */
function recordLatency(metrics: MetricsRecorder, ms: number, servedBy: string, tierId?: string): void {
  metrics.add(M.LATENCY, 'Milliseconds', ms);
  metrics.add(M.LATENCY, 'Milliseconds', ms, { [M.DIMENSION_SERVED_BY]: servedBy });
  if (tierId) metrics.add(M.LATENCY, 'Milliseconds', ms, { [M.DIMENSION_TIER]: tierId });
}
