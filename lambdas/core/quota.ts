/**
 * Per-tenant (and per-user) quotas of `POST /v1/chat`: requests per UTC minute and model cost
 * (USD) per UTC day, counted in fixed windows in a shared store (Valkey), so that every Lambda
 * container of the router sees the same counts.
 *
 * A request is checked before it is answered: it is refused (429) when a request counter is at
 * its limit or a cost counter has reached its limit; otherwise its request counters are
 * incremented, in the same atomic step. Its cost is charged once it is answered (the model's
 * cost; 0 for a cache hit), so a request admitted while the day's spend is under the limit can
 * take it over by that one request's cost (and by the cost of the requests admitted beside it).
 *
 * Pure: the store, the overrides, the breaker and the clock are injected.
 */
import { withDeadline } from './abortable';
import type { Caller } from './cache-key';
import { CircuitBreaker } from './circuit-breaker';
import { HttpError } from './errors';
import { idHash } from './hashing';
import type { MetricsRecorder } from './ports';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { QuotaLimitsRuntimeConfig, QuotasRuntimeConfig } from '../../constructs/contract/runtime-config';

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
/** Micro-dollars per USD: costs are counted as integers, so that sums do not drift. */
export const MICROS_PER_USD = 1_000_000;
/** Milliseconds a counter outlives its window (clocks of containers differ a little). */
const MINUTE_SLACK_MS = 5_000;
const DAY_SLACK_MS = 3_600_000;
/** What a caller is told to wait when quotas cannot be checked (fail mode `closed`). */
const UNAVAILABLE_RETRY_SECONDS = 5;

/** One counter a request is checked against. */
export interface QuotaCounter {
  readonly key: string;
  /** Added when the request is admitted: 1 for a request counter, 0 for a cost counter (charged after the answer). */
  readonly increment: number;
  /** The request is refused when the counter's value plus `increment` reaches this. */
  readonly refuseAt: number;
  /** Milliseconds the counter lives once written (the rest of its window, and a little slack). */
  readonly ttlMs: number;
}

/** Where the counters live. */
export interface QuotaStore {
  /**
   * In one atomic step: the index of the first counter whose value plus its increment reaches
   * its `refuseAt` (then nothing is incremented), or -1 once every counter is incremented.
   */
  admit(counters: readonly QuotaCounter[]): Promise<number>;
  /** Adds `amount` (an integer) to each counter and keeps it for its `ttlMs`. */
  charge(counters: ReadonlyArray<Pick<QuotaCounter, 'key' | 'ttlMs'>>, amount: number): Promise<void>;
}

/** Limits per tenant that replace the defaults, limit by limit. */
export interface QuotaOverrides {
  readonly tenants: Readonly<Record<string, QuotaLimitsRuntimeConfig>>;
}

/** The current overrides; never throws (a source that cannot read them answers its last good copy). */
export interface QuotaOverridesSource {
  current(metrics: MetricsRecorder): Promise<QuotaOverrides>;
}

export type QuotaLimitName = 'requests-per-minute' | 'cost-per-day' | 'user-requests-per-minute' | 'user-cost-per-day';

const LIMIT_FIELDS: ReadonlyArray<keyof QuotaLimitsRuntimeConfig> = ['requestsPerMinute', 'costPerDayUsd', 'userRequestsPerMinute', 'userCostPerDayUsd'];

/**
 * The overrides in the JSON of the overrides parameter: `{ "tenants": { "<tenant>": { limit: n | null } } }`.
 * Each limit is a number of at least 0 (request limits whole), or null for no limit; a limit left
 * out keeps the default.
 * @throws an Error naming what is wrong (unknown fields are refused: a misspelt limit would
 *   otherwise be ignored in silence)
 */
export function parseQuotaOverrides(text: string): QuotaOverrides {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`the quota overrides are not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(value) || !isRecord(value.tenants)) throw new Error('the quota overrides must be an object { "tenants": { "<tenant id>": { ... } } }');
  const extra = Object.keys(value).filter((k) => k !== 'tenants');
  if (extra.length > 0) throw new Error(`the quota overrides have unknown fields: ${extra.join(', ')} (only "tenants")`);
  // A Map-like object without a prototype: a tenant called "__proto__" or "constructor" is a tenant like another.
  const tenants: Record<string, QuotaLimitsRuntimeConfig> = Object.create(null);
  for (const [tenant, limits] of Object.entries(value.tenants)) {
    if (!isRecord(limits)) throw new Error(`the quota overrides of tenant ${JSON.stringify(tenant)} must be an object`);
    const parsed: Record<string, number | null> = {};
    for (const [field, limit] of Object.entries(limits)) {
      if (!(LIMIT_FIELDS as readonly string[]).includes(field)) {
        throw new Error(`the quota overrides of tenant ${JSON.stringify(tenant)} have an unknown field "${field}" (known: ${LIMIT_FIELDS.join(', ')})`);
      }
      if (limit !== null && !validLimit(field as keyof QuotaLimitsRuntimeConfig, limit)) {
        throw new Error(`the quota overrides of tenant ${JSON.stringify(tenant)}: ${field} must be ${field.endsWith('Usd') ? 'a number' : 'a whole number'} of at least 0, or null for no limit; got ${JSON.stringify(limit)}`);
      }
      parsed[field] = limit as number | null;
    }
    tenants[tenant] = parsed;
  }
  return { tenants };
}

function validLimit(field: keyof QuotaLimitsRuntimeConfig, limit: unknown): boolean {
  if (typeof limit !== 'number' || !Number.isFinite(limit) || limit < 0) return false;
  return field.endsWith('Usd') || Number.isInteger(limit);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The limits of one tenant: its override's limits where it sets them, else the defaults. */
export function limitsOf(defaults: QuotaLimitsRuntimeConfig, overrides: QuotaOverrides, tenantId: string): QuotaLimitsRuntimeConfig {
  const override = Object.prototype.hasOwnProperty.call(overrides.tenants, tenantId) ? overrides.tenants[tenantId] : undefined;
  if (!override) return defaults;
  const limits: Record<string, number | null | undefined> = {};
  for (const field of LIMIT_FIELDS) limits[field] = Object.prototype.hasOwnProperty.call(override, field) ? override[field] : defaults[field];
  return limits;
}

/**
 * The key of a counter: `<prefix>quota:<tenant hash>[:u:<user hash>]:<rpm|usd>:<window>`. Tenant
 * and user are hashed (fixed-length hex), as in the cache keys: no id can reach past its part
 * of the key, or make two tenants' counters one.
 */
export function quotaKey(prefix: string, caller: Caller, scope: 'tenant' | 'user', kind: 'rpm' | 'usd', window: number): string {
  const who = scope === 'user' ? `${idHash(caller.tenantId)}:u:${idHash(caller.userId ?? '')}` : idHash(caller.tenantId);
  return `${prefix}quota:${who}:${kind}:${window}`;
}

/** A counter a request was checked against, with what it stands for. */
interface CheckedCounter extends QuotaCounter {
  readonly limit: QuotaLimitName;
  readonly limitValue: number;
  readonly windowEnd: number;
}

/** What an admitted request is charged to once answered. */
export interface QuotaAdmission {
  readonly costCounters: ReadonlyArray<Pick<QuotaCounter, 'key' | 'ttlMs'>>;
}

export interface QuotaGateOptions {
  /** Per-tenant overrides of the defaults; absent: the defaults only. */
  readonly overrides?: QuotaOverridesSource;
  /** The breaker of the quota counters: open, they are not read (the fail mode applies at once). */
  readonly breaker?: CircuitBreaker;
  /** Epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

/** The quotas of one router: checks a request before it is answered, charges its cost after. */
export class QuotaGate {
  private readonly breaker: CircuitBreaker;
  private readonly now: () => number;

  constructor(
    /** The counters; undefined while the store cannot be reached (the cache connection failed). */
    private readonly store: QuotaStore | undefined,
    private readonly config: QuotasRuntimeConfig & { readonly keyPrefix: string; readonly timeoutMs: number },
    private readonly options: QuotaGateOptions = {},
  ) {
    this.breaker = options.breaker ?? new CircuitBreaker('quota');
    // Read at each call, not captured: whatever Date.now is then.
    this.now = options.now ?? (() => Date.now());
  }

  /**
   * Admits the request of `caller` (its request counters incremented), or refuses it: 429 with
   * `retry-after` (seconds to the end of the window) and a message naming the limit. Quota state
   * that cannot be read in time admits the request (fail mode `open`) or answers 503 (`closed`).
   * @returns what to charge the request's cost to; undefined when no limit applies
   */
  async admit(caller: Caller, metrics: MetricsRecorder): Promise<QuotaAdmission | undefined> {
    const overrides = this.options.overrides ? await this.options.overrides.current(metrics) : { tenants: {} };
    const limits = limitsOf(this.config.defaults, overrides, caller.tenantId);
    const counters = this.counters(caller, limits, this.now());
    if (counters.length === 0) return undefined;
    const admission: QuotaAdmission = { costCounters: counters.filter((c) => c.increment === 0) };
    let refused: number;
    try {
      refused = await this.guarded((store) => store.admit(counters), metrics);
    } catch {
      metrics.add(M.QUOTA_ERRORS, 'Count', 1);
      if (this.config.failMode === 'closed') {
        throw new HttpError(503, `The service cannot check quotas right now. Retry after ${UNAVAILABLE_RETRY_SECONDS} seconds.`, 'quota-unavailable',
          { 'retry-after': String(UNAVAILABLE_RETRY_SECONDS) });
      }
      return admission;
    }
    if (refused < 0) return admission;
    const counter = counters[refused];
    metrics.add(M.QUOTA_REFUSALS, 'Count', 1, { [M.DIMENSION_LIMIT]: counter.limit });
    metrics.add(M.QUOTA_REFUSALS, 'Count', 1, { [M.DIMENSION_TENANT]: tenantDimension(caller.tenantId), [M.DIMENSION_LIMIT]: counter.limit });
    const retryAfter = Math.max(1, Math.ceil((counter.windowEnd - this.now()) / 1000));
    throw new HttpError(429, refusal(counter, caller, retryAfter), 'quota-exceeded', { 'retry-after': String(retryAfter) });
  }

  /**
   * Charges what an admitted request cost. Bounded in time; a charge that fails is counted
   * (`QuotaErrors`) and lost, never the request's failure.
   */
  async charge(admission: QuotaAdmission | undefined, costUsd: number, metrics: MetricsRecorder): Promise<void> {
    if (!admission || admission.costCounters.length === 0 || !(costUsd > 0)) return;
    // Whole micro-dollars; a cost too small to count still counts one.
    const micros = Math.max(1, Math.round(costUsd * MICROS_PER_USD));
    try {
      await this.guarded((store) => store.charge(admission.costCounters, micros), metrics);
    } catch {
      metrics.add(M.QUOTA_ERRORS, 'Count', 1);
    }
  }

  /** The counters the limits of `caller` need, tenant's before user's, requests before cost. */
  private counters(caller: Caller, limits: QuotaLimitsRuntimeConfig, now: number): CheckedCounter[] {
    const minute = Math.floor(now / MINUTE_MS);
    const day = Math.floor(now / DAY_MS);
    const minuteEnd = (minute + 1) * MINUTE_MS;
    const dayEnd = (day + 1) * DAY_MS;
    const prefix = this.config.keyPrefix;
    const out: CheckedCounter[] = [];
    const add = (limit: QuotaLimitName, value: number | null | undefined, scope: 'tenant' | 'user', kind: 'rpm' | 'usd'): void => {
      if (value === undefined || value === null) return;
      if (scope === 'user' && caller.userId === undefined) return;
      const rpm = kind === 'rpm';
      out.push({
        key: quotaKey(prefix, caller, scope, kind, rpm ? minute : day),
        increment: rpm ? 1 : 0,
        // A request counter refuses the request that would go past the limit; a cost counter
        // refuses once the spend has reached it.
        // A positive limit below one micro-dollar is one micro-dollar, not 0 (which would refuse all).
        refuseAt: rpm ? value + 1 : value > 0 ? Math.max(1, Math.round(value * MICROS_PER_USD)) : 0,
        ttlMs: (rpm ? minuteEnd + MINUTE_SLACK_MS : dayEnd + DAY_SLACK_MS) - now,
        limit,
        limitValue: value,
        windowEnd: rpm ? minuteEnd : dayEnd,
      });
    };
    add('requests-per-minute', limits.requestsPerMinute, 'tenant', 'rpm');
    add('user-requests-per-minute', limits.userRequestsPerMinute, 'user', 'rpm');
    add('cost-per-day', limits.costPerDayUsd, 'tenant', 'usd');
    add('user-cost-per-day', limits.userCostPerDayUsd, 'user', 'usd');
    return out;
  }

  /** A store call under the breaker and the cache timeout; rejects when skipped, failed or late. */
  private async guarded<T>(op: (store: QuotaStore) => Promise<T>, metrics: MetricsRecorder): Promise<T> {
    const store = this.store;
    if (!store) throw new Error('the quota counters are unavailable (no cache connection)');
    if (!this.breaker.tryAcquire()) {
      metrics.add(M.BREAKER_SKIPS, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: this.breaker.name });
      throw new Error('the quota counters are skipped: their breaker is open');
    }
    try {
      const result = await withDeadline(this.config.timeoutMs, 'the quota counters', () => op(store));
      this.breaker.success();
      return result;
    } catch (err) {
      if (this.breaker.failure()) metrics.add(M.CIRCUIT_OPENED, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: this.breaker.name });
      throw err;
    }
  }
}

/** The message of a 429: which limit, whose, and when to retry. */
function refusal(counter: CheckedCounter, caller: Caller, retryAfter: number): string {
  const tenant = `tenant ${JSON.stringify(caller.tenantId)}`;
  const retry = `Retry after ${retryAfter} seconds`;
  switch (counter.limit) {
    case 'requests-per-minute':
      return `Quota exceeded: ${counter.limitValue} requests per minute for ${tenant}. ${retry}.`;
    case 'user-requests-per-minute':
      return `Quota exceeded: ${counter.limitValue} requests per minute for this user of ${tenant}. ${retry}.`;
    case 'cost-per-day':
      return `Quota exceeded: cost per day of ${counter.limitValue} USD for ${tenant} (UTC day). ${retry} (UTC midnight).`;
    case 'user-cost-per-day':
      return `Quota exceeded: cost per day of ${counter.limitValue} USD for this user of ${tenant} (UTC day). ${retry} (UTC midnight).`;
  }
}

/**
 * The `Tenant` dimension value of a tenant id: the id when it is 1-64 printable ASCII characters
 * (CloudWatch takes ASCII dimension values only), else `h-` and its hash.
 */
export function tenantDimension(tenantId: string): string {
  return /^[\x21-\x7e][\x20-\x7e]{0,63}$/.test(tenantId) && !tenantId.endsWith(' ') ? tenantId : `h-${idHash(tenantId)}`;
}
