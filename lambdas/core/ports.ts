/**
 * The small interfaces the core talks to. Adapters for AWS services and stores implement them
 * (lambdas/adapters/); tests and local tools may pass their own.
 */
import type { ChatMessage } from './chat-request';
import type { CircuitBreaker } from './circuit-breaker';
import type { TokenUsage } from './cost';
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';

export type MetricUnit = 'Count' | 'Milliseconds' | 'None';

/** Where the core records metrics. Names and dimensions come from `AiMetricNames`. */
export interface MetricsRecorder {
  add(name: string, unit: MetricUnit, value: number, dimensions?: Record<string, string>): void;
}

/** What a tier is asked. `maxTokens` is already capped to the tier's limit. */
export interface ModelRequest {
  readonly messages: ChatMessage[];
  readonly system?: string;
  readonly maxTokens: number;
  readonly temperature?: number;
}

export interface ModelResponse {
  readonly text: string;
  readonly usage: TokenUsage;
  /** Why generation stopped, as the provider reports it (`end_turn`, `max_tokens`, `stop`...). */
  readonly stopReason?: string;
  /** Bedrock service tier that served the request, as the response says (`default`, `flex`, `priority`, `reserved`). */
  readonly serviceTier?: string;
}

/** Invokes a model tier. Throws `ModelInvocationError` (or any error, classified by the caller). */
export interface ModelInvoker {
  invoke(tier: TierRuntimeConfig, request: ModelRequest, signal: AbortSignal): Promise<ModelResponse>;
  /**
   * Waits for capacity to invoke `tier` (the batch worker bounds concurrent calls per tier) and
   * returns the function that gives it back. Called before the tier's timeout starts, so waiting
   * for a slot is never mistaken for a slow model. Rejects when `signal` (the request's deadline)
   * aborts first.
   */
  acquire?(tier: TierRuntimeConfig, signal: AbortSignal): Promise<() => void>;
}

/** An answer as the caches keep it. */
export interface CachedAnswer {
  readonly text: string;
  /** Tier that originally produced the answer. */
  readonly tierId: string;
  readonly usage: TokenUsage;
  /** What the answer cost when the model produced it. */
  readonly costUsd: number;
  /** Epoch milliseconds of the original answer. */
  readonly createdAt: number;
  /**
   * Unique id of the answer, given when a model's answer is cached; every copy of it carries it,
   * so that a wrong verdict deletes an exact entry only while it still holds this answer.
   * Absent on entries cached before it existed.
   */
  readonly id?: string;
  /** Where else the router cached this answer (written by the router only): a wrong verdict evicts them too. */
  readonly copies?: AnswerCopies;
}

/** The other places an answer is cached: exact-cache keys, and its semantic entry. */
export interface AnswerCopies {
  readonly exactKeys?: readonly string[];
  readonly semantic?: { readonly scope: string; readonly id: string };
}

/** A key/value answer cache (the exact cache). Failures are thrown; the core fails open. */
export interface AnswerCache {
  /** The router's breaker of the exact level (see AnswerCaches); absent: never skipped. */
  readonly breaker?: CircuitBreaker;
  get(key: string): Promise<CachedAnswer | undefined>;
  set(key: string, answer: CachedAnswer, ttlSeconds: number): Promise<void>;
  /** Deletes every entry whose key starts with `keyPrefix` (`DELETE /v1/context`: a user's personal keys). */
  deleteByPrefix?(keyPrefix: string): Promise<void>;
  /**
   * Deletes the entry at `key` if it still holds the answer `answerId` (`POST /v1/feedback`: a
   * wrong verdict evicts the answer the caller was given, never a newer one stored since).
   * @returns whether an entry was deleted
   */
  evict?(key: string, answerId: string): Promise<boolean>;
}
