import { withDeadline } from './abortable';
import { AnswerCaches, type AnswerLocations, type CacheHit, type PendingWrites, type StaticAnswersDeps } from './answer-caches';
import { isPersonal, type Caller } from './cache-key';
import { lastUserText, type ChatRequest } from './chat-request';
import { defaultThresholds, tierIndexForScore, type ComplexityClassifier } from './classifier';
import { Coalescer, type Claim, type LeaseStore } from './coalescing';
import { mergeUserContext } from './context-merge';
import { invocationCostUsd, type TokenUsage } from './cost';
import { HttpError, ModelInvocationError, classifyAwsError } from './errors';
import type { AnswerCache, CachedAnswer, MetricsRecorder, ModelInvoker, ModelRequest, ModelResponse } from './ports';
import { QuestionGuard, type PairGuard } from './semantic/question-guard';
import type { SemanticCache } from './semantic/semantic-cache';
import { planTiers } from './tier-plan';
import { NO_SPANS, type Spans } from './tracing';
import type { UserContext, UserContextStore } from './user-context';
import { mergeUserProfile, type ProfileLookup, type UserProfile } from './user-profiles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';

/** `coalesced`: the answer of an identical request in flight, found in the exact cache (see core/coalescing). */
export type ServedBy = 'static' | 'exact' | 'semantic' | 'model' | 'coalesced';

export interface AttemptRecord {
  readonly tierId: string;
  readonly outcome: 'ok' | 'failed';
  readonly errorKind?: string;
  readonly latencyMs: number;
}

export interface ChatResult {
  readonly text: string;
  readonly servedBy: ServedBy;
  /** Tier that answered this request; undefined when a cache did. */
  readonly tierId?: string;
  /** For cache hits: the tier that produced the cached answer. */
  readonly originalTierId?: string;
  readonly usage: TokenUsage;
  /** Model cost of this request in USD (0 for cache hits). */
  readonly costUsd: number;
  readonly stopReason?: string;
  readonly complexity: { readonly score: number; readonly reasons: string[]; readonly tierId: string };
  readonly hintHonoured: boolean;
  readonly attempts: AttemptRecord[];
  /** Cosine similarity of the cached question that answered (semantic and semantic-static hits). */
  readonly similarity?: number;
  /** Id of the static answer that answered. */
  readonly staticAnswerId?: string;
  /** Turns of the user's session merged into the model request. */
  readonly contextTurns: number;
  /** Where the answer is cached (a cache hit, or a model's answer once stored): what a wrong verdict evicts. */
  readonly locations?: AnswerLocations;
}

export interface ChatServiceDeps {
  readonly config: RouterRuntimeConfig;
  readonly invoker: ModelInvoker;
  readonly classifier: ComplexityClassifier;
  readonly metrics: MetricsRecorder;
  /**
   * The lexical guard of the semantic levels.
   * @default a QuestionGuard with the default contrast families
   */
  readonly guard?: PairGuard;
  /** The exact cache; absent when the router runs without one. */
  readonly exactCache?: AnswerCache;
  /** The semantic cache; absent when disabled. */
  readonly semanticCache?: SemanticCache;
  /** Leases of request coalescing (with `exactCache` and `config.coalescing`); absent: no coalescing. */
  readonly leases?: LeaseStore;
  /** Static answers; absent when none are configured. */
  readonly staticAnswers?: StaticAnswersDeps;
  /** User context; absent when disabled. */
  readonly userContext?: UserContextStore;
  /** User profile reads (reader endpoint); absent when profiles are not configured. */
  readonly profiles?: ProfileLookup;
  /**
   * Trace spans: one per cache level lookup and store, per tier attempt, per context read and write.
   * @default NO_SPANS
   */
  readonly spans?: Spans;
  readonly now?: () => number;
}

/** Seconds a client should wait before retrying when every tier failed. */
const RETRY_AFTER_SECONDS = 2;
/** Time kept back from the deadline for writing the cache and the response. */
const DEADLINE_MARGIN_MS = 250;

/**
 * The request path after validation: user context → static answers → exact cache → semantic
 * cache → classify → invoke with fallback → cache writes. Shared by the router Lambda and the
 * local tools.
 */
export class ChatService {
  private readonly now: () => number;
  private readonly thresholds: number[];
  private readonly spans: Spans;

  readonly caches: AnswerCaches;
  private readonly coalescer?: Coalescer;

  constructor(private readonly deps: ChatServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.thresholds = deps.config.classifierThresholds ?? defaultThresholds(deps.config.tiers.length);
    this.spans = deps.spans ?? NO_SPANS;
    this.caches = new AnswerCaches({
      config: deps.config,
      metrics: deps.metrics,
      guard: deps.guard ?? new QuestionGuard(),
      exact: deps.exactCache,
      semantic: deps.semanticCache,
      staticAnswers: deps.staticAnswers,
      spans: this.spans,
    });
    if (deps.leases && deps.exactCache) {
      this.coalescer = new Coalescer({ leases: deps.leases, exact: deps.exactCache, metrics: deps.metrics, spans: this.spans, now: this.now });
    }
  }

  /**
   * @param deadline epoch milliseconds by which the answer must be ready (the Lambda's remaining time)
   * @throws HttpError 503 when every tier failed, 400 when a model rejected the request itself
   */
  async chat(req: ChatRequest, caller: Caller, deadline: number): Promise<ChatResult> {
    const { config, metrics } = this.deps;
    const complexity = this.deps.classifier.classify(req);
    const classifiedIndex = Math.min(tierIndexForScore(complexity.score, this.thresholds), config.tiers.length - 1);
    const plan = planTiers(config.tiers, classifiedIndex, req.tierHint, config.tierHintPolicy, config.fallbackOrder);
    const classified = { ...complexity, tierId: config.tiers[classifiedIndex].id };
    const selectedIndex = config.tiers.indexOf(plan.attempts[0]);

    const context = await this.loadContext(req, caller);
    const withContext = mergeUserContext(req, context);
    const contextTurns = withContext.messages.length - req.messages.length;
    // Before the cache lookup: an answer that used a profile is personal (scoped to its user).
    const profiled = mergeUserProfile(withContext, await this.loadProfile(caller), isPersonal(req));
    const effective = profiled.request;
    const personal = profiled.personal;
    const { hit, pending } = await this.caches.lookup({
      caller,
      request: effective,
      personal,
      hintedTier: plan.hintHonoured ? req.tierHint : undefined,
    });
    if (hit) {
      metrics.add(M.COST_USD, 'None', 0);
      await this.saveContext(req, caller, hit.answer.text);
      return this.cacheResult(hit, classified, plan.hintHonoured, contextTurns);
    }
    // Of identical requests in flight, one asks a model and the others wait for its answer.
    const claim = await this.coalesce(pending, plan.attempts, deadline);
    if (claim.kind === 'answer') {
      metrics.add(M.COST_USD, 'None', 0);
      await this.saveContext(req, caller, claim.answer.text);
      return this.coalescedResult(claim.answer, pending.exactKey!, classified, plan.hintHonoured, contextTurns);
    }
    const releaseLease = claim.kind === 'holder' ? claim.release : () => Promise.resolve();

    const attempts: AttemptRecord[] = [];
    let lastError: ModelInvocationError | undefined;
    for (const tier of plan.attempts) {
      const waitBudget = this.timeLeft(deadline);
      if (waitBudget <= 0) break;
      if (lastError) metrics.add(M.FALLBACKS, 'Count', 1, { [M.DIMENSION_TIER]: lastError.tierId });
      const release = await this.acquire(tier, waitBudget);
      if (!release) break;
      // The wait for the slot came out of the request's time: what is left is the tier's budget.
      const budget = this.timeLeft(deadline);
      if (budget <= 0) {
        release();
        break;
      }
      const started = this.now();
      try {
        const request = modelRequest(tier, effective);
        const response = await this.attempt(tier, attempts.length + 1, () =>
          this.invoke(tier, request, Math.min(tier.timeoutMs, budget)).then((r) => checkedResponse(tier, request, r)));
        const latencyMs = this.now() - started;
        attempts.push({ tierId: tier.id, outcome: 'ok', latencyMs });
        // Priced at the service tier that served it: Bedrock may serve another than the one asked for.
        const costUsd = invocationCostUsd(tier, response.usage, response.serviceTier);
        this.recordInvocation(tier, response, costUsd, latencyMs);
        // A cheaper tier standing in for a failed one answers this request, but its answer is not
        // kept for the requests that will be routed to the selected tier once it recovers.
        const standIn = config.tiers.indexOf(tier) < selectedIndex;
        let locations: AnswerLocations | undefined;
        const cached = !standIn && isCacheableAnswer(response);
        await this.untilDeadline(deadline, async () => {
          if (cached) {
            const answer: CachedAnswer = { text: response.text, tierId: tier.id, usage: response.usage, costUsd, createdAt: this.now() };
            locations = await this.caches.store(pending, answer);
          }
          await this.saveContext(req, caller, response.text);
        });
        // After the store: a waiter that finds the lease gone finds the answer too (or takes over);
        // an answer that is not cached sends the waiters to a model at once. Released even when the
        // writes failed or ran out of time (it is a bounded cache call), not left to its TTL.
        await releaseLease(cached);
        return {
          text: response.text,
          servedBy: 'model',
          tierId: tier.id,
          usage: response.usage,
          costUsd,
          stopReason: response.stopReason,
          complexity: classified,
          hintHonoured: plan.hintHonoured,
          attempts,
          contextTurns,
          locations,
        };
      } catch (err) {
        const latencyMs = this.now() - started;
        const error = err instanceof ModelInvocationError ? err : classifyAwsError(tier.id, err, false);
        attempts.push({ tierId: tier.id, outcome: 'failed', errorKind: error.kind, latencyMs });
        metrics.add(M.MODEL_INVOCATIONS, 'Count', 1, { [M.DIMENSION_TIER]: tier.id });
        metrics.add(M.MODEL_ERRORS, 'Count', 1, { [M.DIMENSION_TIER]: tier.id, [M.DIMENSION_ERROR_KIND]: error.kind });
        // Also per tier across the kinds that are the tier's fault: the error-rate alarms divide it by
        // the tier's invocations, and a caller's invalid request must not page anyone.
        if (error.retryable) metrics.add(M.MODEL_ERRORS, 'Count', 1, { [M.DIMENSION_TIER]: tier.id });
        if (!error.retryable) {
          await releaseLease();
          throw new HttpError(400, `The model rejected the request: ${error.message}`, 'model-rejected');
        }
        lastError = error;
      } finally {
        release();
      }
    }
    await releaseLease();
    metrics.add(M.UNAVAILABLE, 'Count', 1);
    const tried = attempts.map((a) => `${a.tierId} (${a.errorKind})`).join(', ') || 'none (deadline reached)';
    throw new HttpError(503, `No model tier could answer; tried: ${tried}. Retry after ${RETRY_AFTER_SECONDS} seconds.`, 'unavailable', {
      'retry-after': String(RETRY_AFTER_SECONDS),
    });
  }

  /**
   * Runs the writes that follow a model's answer (caches, user context), waiting for them until
   * `deadline` at most: a slow cache or store must not hold a paid-for answer past the Lambda's
   * time (the batch worker would then be retried and pay twice). Abandoned writes fail open.
   */
  private async untilDeadline(deadline: number, writes: () => Promise<void>): Promise<void> {
    const left = deadline - this.now();
    if (left <= 0) return;
    try {
      await withDeadline(left, 'the writes after an answer', () => writes());
    } catch {
      // Given up at the deadline (or failed, which the writes count themselves): fail open.
    }
  }

  /**
   * The request's part in coalescing: only a request whose answer goes into the exact cache
   * coalesces (the lease is keyed by that cache key), so an answer that would not be cached never
   * makes anyone wait. The lease lives as long as the holder's model calls may take: each tier of
   * its plan up to its timeout, within the deadline. A waiter stops waiting at `maxWaitMs`, and
   * early enough to still give the selected tier its whole timeout.
   */
  private async coalesce(pending: PendingWrites, attempts: TierRuntimeConfig[], deadline: number): Promise<Claim> {
    const { config } = this.deps;
    if (!this.coalescer || !pending.exactKey || !config.coalescing || !config.cache) return { kind: 'alone' };
    const left = this.timeLeft(deadline);
    const leaseTtlMs = Math.min(left, attempts.reduce((sum, t) => sum + t.timeoutMs, 0)) + DEADLINE_MARGIN_MS;
    const waitMs = Math.min(config.coalescing.maxWaitMs, left - attempts[0].timeoutMs);
    return this.coalescer.claim(config.cache.keyPrefix, pending.exactKey, leaseTtlMs, this.now() + waitMs);
  }

  /** A coalesced answer: the exact cache's entry at `exactKey` (and the copies it names) is where it is cached. */
  private coalescedResult(answer: CachedAnswer, exactKey: string, complexity: ChatResult['complexity'], hintHonoured: boolean, contextTurns: number): ChatResult {
    const exactKeys = [...new Set([exactKey, ...(answer.copies?.exactKeys ?? [])])];
    const hit: CacheHit = { level: 'exact', answer, locations: { answerId: answer.id, exactKeys, semantic: answer.copies?.semantic } };
    return { ...this.cacheResult(hit, complexity, hintHonoured, contextTurns), servedBy: 'coalesced' };
  }

  /** Milliseconds left for model calls before `deadline`, less the margin for the cache writes and the response. */
  private timeLeft(deadline: number): number {
    return deadline - DEADLINE_MARGIN_MS - this.now();
  }

  /**
   * Waits, at most `budgetMs`, for the invoker's capacity for `tier` (see ModelInvoker.acquire).
   * Undefined when the deadline came first: the request is out of time, not the tier at fault.
   */
  private async acquire(tier: TierRuntimeConfig, budgetMs: number): Promise<(() => void) | undefined> {
    if (!this.deps.invoker.acquire) return () => undefined;
    const deadline = AbortSignal.timeout(Math.max(1, budgetMs));
    try {
      return await this.deps.invoker.acquire(tier, deadline);
    } catch {
      return undefined;
    }
  }

  /** One tier attempt in its trace span `tier.<id>`, annotated with its outcome (and error kind). */
  private attempt(tier: TierRuntimeConfig, attempt: number, run: () => Promise<ModelResponse>): Promise<ModelResponse> {
    return this.spans.span(`tier.${tier.id}`, async (span) => {
      try {
        const response = await run();
        span.annotate('outcome', 'ok');
        return response;
      } catch (err) {
        span.annotate('outcome', 'failed');
        if (err instanceof ModelInvocationError) span.annotate('errorKind', err.kind);
        throw err;
      }
    }, { tier: tier.id, attempt });
  }

  /**
   * Invokes a tier with a deadline. The abort signal lets the SDK cancel the request; the race
   * makes the deadline hold even for an invoker that ignores the signal.
   */
  private async invoke(tier: TierRuntimeConfig, request: ModelRequest, timeoutMs: number): Promise<ModelResponse> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new ModelInvocationError('timeout', tier.id, `timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      const invocation = this.deps.invoker.invoke(tier, request, controller.signal);
      // After a timeout the abandoned invocation may still reject; that is expected, not unhandled.
      invocation.catch(() => undefined);
      return await Promise.race([invocation, deadline]);
    } catch (err) {
      throw classifyAwsError(tier.id, err, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
  }

  private recordInvocation(tier: TierRuntimeConfig, response: ModelResponse, costUsd: number, latencyMs: number): void {
    const m = this.deps.metrics;
    const byTier = { [M.DIMENSION_TIER]: tier.id };
    m.add(M.MODEL_INVOCATIONS, 'Count', 1, byTier);
    m.add(M.MODEL_LATENCY, 'Milliseconds', latencyMs, byTier);
    m.add(M.INPUT_TOKENS, 'Count', response.usage.inputTokens, byTier);
    m.add(M.OUTPUT_TOKENS, 'Count', response.usage.outputTokens, byTier);
    m.add(M.COST_USD, 'None', costUsd, byTier);
    m.add(M.COST_USD, 'None', costUsd);
  }

  private cacheResult(hit: CacheHit, complexity: ChatResult['complexity'], hintHonoured: boolean, contextTurns: number): ChatResult {
    return {
      text: hit.answer.text,
      servedBy: hit.level,
      originalTierId: hit.level === 'static' ? undefined : hit.answer.tierId,
      usage: { inputTokens: 0, outputTokens: 0 },
      costUsd: 0,
      complexity,
      hintHonoured,
      attempts: [],
      similarity: hit.similarity,
      staticAnswerId: hit.staticAnswerId,
      contextTurns,
      locations: hit.locations,
    };
  }

  /** The user's context for a request that names a session; none (and counted) if it cannot be read. */
  private async loadContext(req: ChatRequest, caller: Caller): Promise<UserContext | undefined> {
    const store = this.deps.userContext;
    const limits = this.deps.config.userContext;
    if (!store || !limits || !req.session || !caller.userId) return undefined;
    try {
      return await this.spans.span('context.load', () => store.load(caller.tenantId, caller.userId!, req.session!, limits.maxTurns), { cacheLevel: 'context' });
    } catch {
      this.deps.metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'context' });
      return undefined;
    }
  }

  /** The caller's profile (bounded, never failing the chat); each read counted by outcome. */
  private async loadProfile(caller: Caller): Promise<UserProfile | undefined> {
    const profiles = this.deps.profiles;
    if (!profiles) return undefined;
    return profiles.read(caller, (outcome) => this.deps.metrics.add(M.USER_PROFILE_READS, 'Count', 1, { [M.DIMENSION_OUTCOME]: outcome }));
  }

  /** Appends the exchange to the user's session. */
  private async saveContext(req: ChatRequest, caller: Caller, answer: string): Promise<void> {
    const store = this.deps.userContext;
    const limits = this.deps.config.userContext;
    if (!store || !limits || !req.session || !caller.userId) return;
    try {
      const turns = [{ role: 'user' as const, text: lastUserText(req) }, { role: 'assistant' as const, text: answer }];
      await this.spans.span('context.save', () => store.appendTurns(caller.tenantId, caller.userId!, req.session!, turns, limits), { cacheLevel: 'context' });
    } catch {
      this.deps.metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'context' });
    }
  }
}

/**
 * Answers cut short (by a filter, a guardrail, or the token limit) are not worth repeating to the
 * next caller: the next request gets a fresh, complete answer instead.
 */
function isCacheableAnswer(response: ModelResponse): boolean {
  // Empty answers never get here: checkedResponse turns them into a failure of their tier.
  return !/content_filter|guardrail|max_tokens|^length$/i.test(response.stopReason ?? '');
}

/** What a tier is asked for a request: its messages, with maxTokens capped to the tier's limit. */
function modelRequest(tier: TierRuntimeConfig, req: ChatRequest): ModelRequest {
  return {
    messages: req.messages,
    system: req.system,
    maxTokens: Math.min(req.maxTokens ?? tier.maxTokens, tier.maxTokens),
    temperature: req.temperature,
  };
}

/**
 * Output tokens a tier may report beyond the `maxTokens` it was sent: room for a stop token or a
 * provider that counts its end-of-turn marker, not for an answer that ignored the limit.
 */
export const OUTPUT_TOKEN_SLACK = 16;
/** Input tokens a tier may report beyond one per UTF-8 byte of the prompt: the chat template's tokens. */
export const INPUT_TOKEN_OVERHEAD = 4_096;

/**
 * A tier's answer, if it is one: any invoker (Bedrock, SageMaker, a custom one) may come back
 * with something that is not. Checked here, in the core, so every invoker gets the same rules.
 *
 * - No text (a Converse answer without content, or with tool use only; an empty or
 *   whitespace-only `content`): `empty`.
 * - A usage that cannot be true: `invalid-usage`. Token counts must be non-negative safe
 *   integers; output tokens at most the request's `maxTokens` plus {@link OUTPUT_TOKEN_SLACK};
 *   input tokens at most one per UTF-8 byte of the prompt the tier was sent (system prompt and
 *   messages; no tokenizer makes more tokens than bytes) plus {@link INPUT_TOKEN_OVERHEAD}.
 *
 * Both are retryable failures of the tier: the request falls back to the next tier, and the
 * answer is neither billed nor cached.
 * @throws ModelInvocationError `empty` or `invalid-usage`
 */
function checkedResponse(tier: TierRuntimeConfig, request: ModelRequest, response: ModelResponse): ModelResponse {
  if (typeof response?.text !== 'string' || response.text.trim().length === 0) {
    throw new ModelInvocationError('empty', tier.id, 'the tier answered without any text');
  }
  const input: unknown = response.usage?.inputTokens;
  const output: unknown = response.usage?.outputTokens;
  const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!isCount(input) || !isCount(output)) {
    throw new ModelInvocationError('invalid-usage', tier.id, `the tier reported an impossible usage: inputTokens ${String(input)}, outputTokens ${String(output)}`);
  }
  const maxOutput = request.maxTokens + OUTPUT_TOKEN_SLACK;
  if (output > maxOutput) {
    throw new ModelInvocationError('invalid-usage', tier.id, `the tier reported ${output} output tokens; at most ${maxOutput} were possible (maxTokens ${request.maxTokens})`);
  }
  const promptBytes = Buffer.byteLength(request.system ?? '', 'utf8') + request.messages.reduce((n, m) => n + Buffer.byteLength(m.text, 'utf8'), 0);
  const maxInput = promptBytes + INPUT_TOKEN_OVERHEAD;
  if (input > maxInput) {
    throw new ModelInvocationError('invalid-usage', tier.id, `the tier reported ${input} input tokens for a prompt of ${promptBytes} bytes; at most ${maxInput} were possible`);
  }
  return response;
}
