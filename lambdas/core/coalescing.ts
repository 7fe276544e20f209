/**
 * Request coalescing: of a burst of identical cacheable requests that miss the caches, one (the
 * holder of a short lease on the request's exact-cache key) asks a model; the others wait for its
 * answer in the exact cache and are answered from there (`x-cache: coalesced`).
 *
 * The lease lives in the cache server (Valkey), so it holds across Lambda containers, not only
 * within one. Waiters poll the exact cache with a jittered backoff rather than subscribe to a
 * channel: a poll needs no connection of its own (a subscribed connection can run nothing else),
 * misses no notification (an answer stored between a miss and a SUBSCRIBE is simply found by the
 * next poll), and finds a holder that died (its lease expired) the same way it finds an answer.
 *
 * Every step fails open: a lease that cannot be taken or read, or a breaker that is open, leaves
 * the request to call a model of its own, as it would without coalescing.
 */
import { randomUUID } from 'node:crypto';
import type { CircuitBreaker } from './circuit-breaker';
import type { AnswerCache, CachedAnswer, MetricsRecorder } from './ports';
import { NO_SPANS, type Spans } from './tracing';
import { AiMetricNames as M } from '../../constructs/contract/metrics';

/** Short exclusive leases on keys of the cache server. Failures are thrown; the caller fails open. */
export interface LeaseStore {
  /** The breaker of the exact level: leases live on the same server and share it. */
  readonly breaker?: CircuitBreaker;
  /**
   * Takes the lease `key` for `ttlMs` milliseconds if nobody holds it.
   * @returns `taken` (`token` now holds it), `held` (another request does), or `uncached` (its
   *          holder answered with an answer that is not cached: see `release`)
   */
  acquire(key: string, token: string, ttlMs: number): Promise<LeaseState>;
  /**
   * Gives the lease back if `token` still holds it (a lease that expired and was taken by another
   * request is left alone). With `uncachedForMs`, the holder's answer is not in the cache: the
   * lease becomes a marker for that long that sends the waiters to a model at once (each), instead
   * of one at a time through the lease.
   * @returns whether it was released
   */
  release(key: string, token: string, uncachedForMs?: number): Promise<boolean>;
}

/** What `LeaseStore.acquire` found. */
export type LeaseState = 'taken' | 'held' | 'uncached';

/** Why a request that waited for an identical request's answer called a model itself. */
export type FallThroughReason = 'timeout' | 'holder-failed' | 'not-cached' | 'unavailable';

/** What a request does after its cache miss. */
export type Claim =
  /**
   * It holds the lease: it asks a model, stores the answer, then calls `release` (with `cached`
   * false when its answer did not go into the cache, so that the waiters stop waiting for it).
   */
  | { readonly kind: 'holder'; readonly release: (cached?: boolean) => Promise<void> }
  /** The holder's answer, found in the exact cache. */
  | { readonly kind: 'answer'; readonly answer: CachedAnswer }
  /** No coalescing (the lease store failed, or the wait ran out): it asks a model without a lease. */
  | { readonly kind: 'alone' };

export interface CoalescerDeps {
  readonly leases: LeaseStore;
  /** The exact cache, where the holder's answer appears. */
  readonly exact: AnswerCache;
  readonly metrics: MetricsRecorder;
  /** @default NO_SPANS */
  readonly spans?: Spans;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Math.random */
  readonly random?: () => number;
  /** @default randomUUID */
  readonly token?: () => string;
}

/** Milliseconds before a waiter's first poll; each later one waits {@link POLL_GROWTH} times longer. */
export const FIRST_POLL_MS = 20;
export const POLL_GROWTH = 1.5;
/** Longest pause between two polls: a waiter learns of an answer at most this late. */
export const MAX_POLL_MS = 250;

/**
 * The lease key of an exact-cache key (`<prefix>exact:<tenant>:[u:<user>:]<sha>` →
 * `<prefix>lease:exact:...`): the whole cache key is in it, so a lease is scoped exactly as the
 * answer it waits for (tenant, user of a personal entry, everything the key hashes). Outside the
 * `exact:` namespace, so a scan of the exact entries never finds a lease.
 */
export function leaseKeyOf(keyPrefix: string, exactKey: string): string {
  const rest = exactKey.startsWith(keyPrefix) ? exactKey.slice(keyPrefix.length) : exactKey;
  return `${keyPrefix}lease:${rest}`;
}

export class Coalescer {
  private readonly spans: Spans;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly token: () => string;

  constructor(private readonly deps: CoalescerDeps) {
    this.spans = deps.spans ?? NO_SPANS;
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = deps.random ?? Math.random;
    this.token = deps.token ?? randomUUID;
  }

  /**
   * Takes the lease of `exactKey`, or waits for the answer of the request that holds it.
   *
   * While it waits, each poll reads the exact cache and, when the answer is not there yet, tries
   * the lease again: a holder that failed (released its lease without an answer) or died (its
   * lease expired) is replaced by exactly one waiter, which asks a model; the others go on
   * waiting. The wait ends at `waitUntil` (epoch ms) at the latest.
   *
   * @param leaseTtlMs how long the lease lives if its holder never releases it: at least the
   *        time its holder may spend on the model calls
   */
  async claim(keyPrefix: string, exactKey: string, leaseTtlMs: number, waitUntil: number): Promise<Claim> {
    const leaseKey = leaseKeyOf(keyPrefix, exactKey);
    const token = this.token();
    const ttl = Math.max(1, Math.ceil(leaseTtlMs));
    const acquired = await this.guarded('acquire', () => this.deps.leases.acquire(leaseKey, token, ttl));
    if (acquired === null) return { kind: 'alone' };
    if (acquired === 'taken') return this.took(exactKey, leaseKey, token, waitUntil);
    if (acquired === 'uncached') return this.fallThrough('not-cached');

    let pause = FIRST_POLL_MS;
    for (;;) {
      const left = waitUntil - this.now();
      if (left <= 0) return this.fallThrough('timeout');
      // Jitter (±25%) keeps the waiters of one burst from polling in lockstep.
      await this.sleep(Math.min(left, pause * (0.75 + this.random() / 2)));
      pause = Math.min(MAX_POLL_MS, pause * POLL_GROWTH);

      const answer = await this.guarded('poll', () => this.deps.exact.get(exactKey));
      if (answer === null) return this.fallThrough('unavailable');
      if (answer) {
        this.deps.metrics.add(M.COALESCED_REQUESTS, 'Count', 1);
        return { kind: 'answer', answer };
      }
      const taken = await this.guarded('acquire', () => this.deps.leases.acquire(leaseKey, token, ttl));
      if (taken === null) return this.fallThrough('unavailable');
      if (taken === 'uncached') return this.fallThrough('not-cached');
      if (taken === 'taken') {
        // The lease was free and no answer came: the holder failed. This request takes its place.
        this.count('holder-failed');
        return this.took(exactKey, leaseKey, token, waitUntil);
      }
    }
  }

  /**
   * This request has just taken the lease. A holder stores its answer before it releases the
   * lease, so an answer stored between this request's cache miss and its lease is there now: read
   * once more, and if it is, hand the lease back and use it, instead of paying a second call.
   */
  private async took(exactKey: string, leaseKey: string, token: string, waitUntil: number): Promise<Claim> {
    // The waiters of a holder whose answer is not cached are told so for as long as any may wait.
    const release = this.releaser(leaseKey, token, Math.max(1, waitUntil - this.now()));
    const answer = await this.guarded('poll', () => this.deps.exact.get(exactKey));
    if (answer) {
      await release();
      this.deps.metrics.add(M.COALESCED_REQUESTS, 'Count', 1);
      return { kind: 'answer', answer };
    }
    // Unread (a failure) or not there: this request asks a model, holding the lease.
    return { kind: 'holder', release };
  }

  private releaser(leaseKey: string, token: string, uncachedForMs: number): (cached?: boolean) => Promise<void> {
    let released = false;
    return async (cached = true) => {
      if (released) return;
      released = true;
      await this.guarded('release', () => this.deps.leases.release(leaseKey, token, cached ? undefined : Math.ceil(uncachedForMs)));
    };
  }

  private fallThrough(reason: FallThroughReason): Claim {
    this.count(reason);
    return { kind: 'alone' };
  }

  private count(reason: FallThroughReason): void {
    this.deps.metrics.add(M.COALESCING_FALL_THROUGHS, 'Count', 1, { [M.DIMENSION_REASON]: reason });
  }

  /**
   * A lease or poll command under the exact level's breaker (skipped while it is open) and the
   * cache client's command timeout; a failure is counted as a `CacheErrors{exact}` and gives null.
   */
  private async guarded<T>(action: string, op: () => Promise<T>): Promise<T | null> {
    const { metrics } = this.deps;
    const breaker = this.deps.leases.breaker;
    if (breaker && !breaker.tryAcquire()) {
      metrics.add(M.BREAKER_SKIPS, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: 'exact' });
      return null;
    }
    try {
      const result = await this.spans.span(`coalesce.${action}`, op, { cacheLevel: 'exact' });
      breaker?.success();
      return result;
    } catch {
      metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'exact' });
      if (breaker?.failure()) metrics.add(M.CIRCUIT_OPENED, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: 'exact' });
      return null;
    }
  }
}
