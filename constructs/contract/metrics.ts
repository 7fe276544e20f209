/**
 * The metric contract: the CloudWatch namespace, metric names and dimension names that the
 * handlers emit (as CloudWatch EMF documents, `lambdas/adapters/emf-metrics.ts`) and that the
 * constructs' `metric*()` methods, dashboards and alarms read.
 *
 * This module imports nothing from aws-cdk-lib so that the Lambda handlers can import it too:
 * a metric is named once, here, and both sides agree by construction.
 */
export class AiMetricNames {
  /** CloudWatch namespace of every metric the library emits. */
  public static readonly NAMESPACE = 'ScalableAI';

  /** Dimension: the service name (Powertools' default `service` dimension). */
  public static readonly DIMENSION_SERVICE = 'service';
  /** Dimension: the model tier id (`small`, `medium`, ...). */
  public static readonly DIMENSION_TIER = 'Tier';
  /**
   * Dimension: how a request was served: `static`, `exact`, `semantic`, `model`, `coalesced` (the
   * answer of an identical request in flight, see `COALESCED_REQUESTS`), or `error` (a 4xx/5xx answer).
   */
  public static readonly DIMENSION_SERVED_BY = 'ServedBy';
  /**
   * Dimension: the cache level (`static`, `exact`, `semantic`, `context`; for `CacheErrors` also
   * `connection`, and `feedback`: a serving record not written or read, or an eviction of a wrong
   * verdict that failed).
   */
  public static readonly DIMENSION_CACHE_LEVEL = 'CacheLevel';
  /**
   * Dimension: a dependency of the request path that has its own circuit breaker: the cache
   * levels (`static`, `exact`, `semantic`, `context`), the serving records (`feedback`) and the builds of the router's connections
   * and stores (`cache-connection`, `semantic-store`, `static-index`).
   */
  public static readonly DIMENSION_DEPENDENCY = 'Dependency';
  /**
   * Dimension: the kind of a model error (`throttled`, `timeout`, `server`, `network`, `config`,
   * `invalid`; `empty` for an answer without text, `invalid-usage` for a token usage that cannot be true).
   */
  public static readonly DIMENSION_ERROR_KIND = 'ErrorKind';
  /**
   * Dimension: why a request was rejected with a 4xx (`invalid`, `too-large`, `unauthenticated`,
   * `not-found`, `no-user`, `model-rejected`, `conflict` for a second verdict on one answer, and
   * the jobs API's idempotency reasons).
   */
  public static readonly DIMENSION_REASON = 'Reason';

  /** Count of chat requests received (valid or not). Dimensions: service. */
  public static readonly REQUESTS = 'Requests';
  /**
   * End-to-end latency of `POST /v1/chat` in milliseconds, as the caller saw it (errors included).
   * Dimensions: service (every request); service + ServedBy (every request); service + Tier
   * (requests a model tier answered). Its sample count per ServedBy is the number of answers
   * served that way.
   */
  public static readonly LATENCY = 'Latency';
  /** Latency of one model invocation in milliseconds. Dimensions: service + Tier. */
  public static readonly MODEL_LATENCY = 'ModelLatency';
  /** Count of answers served from a cache. Dimensions: service + CacheLevel. */
  public static readonly CACHE_HITS = 'CacheHits';
  /** Count of cache lookups that found nothing. Dimensions: service + CacheLevel. */
  public static readonly CACHE_MISSES = 'CacheMisses';
  /** Count of cache operations that failed (the request still gets an answer). Dimensions: service + CacheLevel. */
  public static readonly CACHE_ERRORS = 'CacheErrors';
  /**
   * Count of times a dependency's circuit breaker opened: after consecutive failures (3 by
   * default), or when the probe sent after a cool-down (30 s by default) failed. Dimensions:
   * service + Dependency.
   */
  public static readonly CIRCUIT_OPENED = 'CircuitOpened';
  /**
   * Count of calls skipped because the dependency's circuit breaker was open (the request went on
   * without it, at no cost in time). Non-zero in period after period: the breaker stays open.
   * Dimensions: service + Dependency.
   */
  public static readonly BREAKER_SKIPS = 'BreakerSkips';

  // Request coalescing (lambdas/core/coalescing.ts).
  /**
   * Count of requests answered with the answer of an identical request in flight: they waited
   * for the holder of the request's lease instead of calling a model (`x-cache: coalesced`).
   * Dimensions: service.
   */
  public static readonly COALESCED_REQUESTS = 'CoalescedRequests';
  /**
   * Count of requests that waited for an identical request's answer and then called a model
   * themselves: `timeout` (the wait ran out), `holder-failed` (the lease was released or expired
   * without an answer: this request took it over), `not-cached` (the holder answered, but its answer
   * is not cached: a stand-in tier's, or one cut short), `unavailable` (the cache failed during the wait).
   * Dimensions: service + Reason.
   */
  public static readonly COALESCING_FALL_THROUGHS = 'CoalescingFallThroughs';
  /** Count of model invocations attempted. Dimensions: service + Tier. */
  public static readonly MODEL_INVOCATIONS = 'ModelInvocations';
  /** Input tokens reported by the model. Dimensions: service + Tier. */
  public static readonly INPUT_TOKENS = 'InputTokens';
  /** Output tokens reported by the model. Dimensions: service + Tier. */
  public static readonly OUTPUT_TOKENS = 'OutputTokens';
  /** Model cost in USD of answered requests (0 for cache hits). Dimensions: service, and service + Tier. */
  public static readonly COST_USD = 'CostUsd';
  /**
   * Count of failed model invocations. Dimensions: service + Tier + ErrorKind; and service + Tier,
   * the failures that are the tier's (every kind but `invalid`, a request the model rejected).
   */
  public static readonly MODEL_ERRORS = 'ModelErrors';
  /** Count of times a request moved on to another tier after a failure. Dimensions: service + Tier (the tier that failed). */
  public static readonly FALLBACKS = 'Fallbacks';
  /** Count of requests answered 503 because every tier failed. Dimensions: service. */
  public static readonly UNAVAILABLE = 'Unavailable';
  /** Count of requests rejected with a 4xx. Dimensions: service + Reason. */
  public static readonly REJECTED_REQUESTS = 'RejectedRequests';
  /**
   * Count of static answers published by one run of the static answers loader (0 when it published
   * nothing; emitted on every run). Dimensions: service.
   */
  public static readonly STATIC_ANSWERS_PUBLISHED = 'StaticAnswersPublished';
  /**
   * Count of errors of one run of the static answers loader: an answer file that could not be read
   * (`read`, `too-large`), is not JSON (`json`) or fails the schema (`schema`); answer ids or question
   * variants defined twice for a tenant (`duplicate`); a tenant whose variants could not be embedded
   * (`embedding`) or written (`publish`); a tenant that could not be removed (`remove`); a replaced
   * version that could not be deleted (`cleanup`); a run that failed as a whole because the files or
   * the cache could not be reached (`unavailable`). A tenant with an error keeps its published answers.
   * Dimensions: service + Reason; and service alone, the run's total (0 on a clean run).
   */
  public static readonly STATIC_ANSWER_ERRORS = 'StaticAnswerErrors';

  /** Dimension: the verdict of a feedback (`right`, `wrong`). */
  public static readonly DIMENSION_VERDICT = 'Verdict';
  /**
   * Count of feedback verdicts received by `POST /v1/feedback`, by how the answer they judge was
   * served. Dimensions: service + ServedBy + Verdict; and service + Tier + Verdict for answers a
   * model tier produced (served by it, or cached from it).
   */
  public static readonly FEEDBACK = 'Feedback';
  /** Count of cache entries evicted because a caller reported their answer wrong. Dimensions: service + CacheLevel. */
  public static readonly FEEDBACK_EVICTIONS = 'FeedbackEvictions';

  /** Dimension: what happened to a user profile read (`used`, `none`, `failed`, `skipped`). */
  public static readonly DIMENSION_OUTCOME = 'Outcome';
  /**
   * Count of user profile reads of `POST /v1/chat` (one per chat when profiles are configured):
   * `failed` and `skipped` (breaker open) answered without the profile. Dimensions: service + Outcome.
   */
  public static readonly USER_PROFILE_READS = 'UserProfileReads';

  /** Dimension: why a batch record failed (`poison`, `store`, `model`). */
  public static readonly DIMENSION_FAILURE_KIND = 'FailureKind';

  /** Requests in one batch the worker received (one value per batch). Dimensions: service. */
  public static readonly BATCH_SIZE = 'BatchSize';
  /** Requests of a batch answered by another identical request's model call. Dimensions: service. */
  public static readonly DEDUPLICATED_REQUESTS = 'DeduplicatedRequests';
  /** Job results written (succeeded or failed). Dimensions: service. */
  public static readonly RESULTS_WRITTEN = 'ResultsWritten';
  /** Batch records reported failed, to be retried. Dimensions: service + FailureKind. */
  public static readonly BATCH_FAILURES = 'BatchFailures';
  /** Jobs accepted by the jobs API. Dimensions: service. */
  public static readonly JOBS_SUBMITTED = 'JobsSubmitted';
  /** Bulk (Bedrock batch inference) jobs that ended, by outcome. Dimensions: service + Reason (`completed`, `partial`, `failed`). */
  public static readonly BULK_JOBS_COMPLETED = 'BulkJobsCompleted';

  // Per-tenant quotas (the router's `quotas`).
  /**
   * Dimension: the tenant of a request refused by its quota. Only `QuotaRefusals` carries it, so
   * only tenants that reach a limit make series. An id that is not 1-64 printable ASCII characters
   * is given as `h-` and its hash (lambdas/core/hashing.ts `idHash`).
   */
  public static readonly DIMENSION_TENANT = 'Tenant';
  /** Dimension: the limit that refused a request (`requests-per-minute`, `cost-per-day`, `user-requests-per-minute`, `user-cost-per-day`). */
  public static readonly DIMENSION_LIMIT = 'Limit';
  /** Count of chat requests refused (429) by a quota. Dimensions: service + Limit; and service + Tenant + Limit. */
  public static readonly QUOTA_REFUSALS = 'QuotaRefusals';
  /**
   * Count of requests whose quota state could not be read or charged (Valkey down, a timeout, the
   * breaker open): admitted (fail mode `open`) or answered 503 (`closed`). Dimensions: service. The quota
   * breaker's own counts are `CircuitOpened` and `BreakerSkips` with `Dependency=quota`.
   */
  public static readonly QUOTA_ERRORS = 'QuotaErrors';
  /**
   * Count of reads of the quota overrides parameter that failed or held invalid JSON: the router
   * keeps the last good overrides (or the defaults). Dimensions: service + Reason (`read`, `invalid`).
   */
  public static readonly QUOTA_OVERRIDES_ERRORS = 'QuotaOverridesErrors';

  private constructor() {}
}
