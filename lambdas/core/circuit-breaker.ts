/**
 * A circuit breaker per dependency of the request path (a cache level, a store or connection
 * build): after `failureThreshold` consecutive failures it opens, and calls are skipped (they
 * cost nothing) for `coolDownMs`; then one call is let through as a probe (half-open). A probe
 * that succeeds closes the breaker; one that fails opens it for another cool-down. Pure: the clock
 * is injected, and the breaker never runs the calls itself.
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /**
   * Consecutive failures that open the breaker.
   * @default DEFAULT_BREAKER_FAILURE_THRESHOLD
   */
  readonly failureThreshold?: number;
  /**
   * Milliseconds an open breaker skips calls before it lets one probe through.
   * @default DEFAULT_BREAKER_COOL_DOWN_MS
   */
  readonly coolDownMs?: number;
  /** Epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

/** Consecutive failures after which a dependency is skipped. */
export const DEFAULT_BREAKER_FAILURE_THRESHOLD = 3;
/** Milliseconds a dependency is skipped before a probe call tries it again. */
export const DEFAULT_BREAKER_COOL_DOWN_MS = 30_000;

/** Thrown (or returned) instead of calling a dependency whose breaker is open. */
export class CircuitOpenError extends Error {
  constructor(readonly dependency: string) {
    super(`${dependency} is skipped: its circuit breaker is open after repeated failures`);
    this.name = 'CircuitOpenError';
  }
}

export class CircuitBreaker {
  private readonly threshold: number;
  private readonly coolDownMs: number;
  private readonly now: () => number;
  private failures = 0;
  private openedAt?: number;
  /** When the current probe was let through (half-open); a probe that never reports is replaced after a cool-down. */
  private probeAt?: number;

  constructor(readonly name: string, options: CircuitBreakerOptions = {}) {
    this.threshold = Math.max(1, options.failureThreshold ?? DEFAULT_BREAKER_FAILURE_THRESHOLD);
    this.coolDownMs = Math.max(0, options.coolDownMs ?? DEFAULT_BREAKER_COOL_DOWN_MS);
    this.now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.openedAt === undefined) return 'closed';
    return this.probeAt !== undefined || this.now() - this.openedAt >= this.coolDownMs ? 'half-open' : 'open';
  }

  /**
   * Whether a call may go ahead now. Closed: always. Open: no, until the cool-down has passed;
   * then the first caller gets the probe and the others are skipped until it reports (or, if it
   * never does, for another cool-down).
   */
  tryAcquire(): boolean {
    if (this.openedAt === undefined) return true;
    const now = this.now();
    if (this.probeAt !== undefined) {
      if (now - this.probeAt < this.coolDownMs) return false;
    } else if (now - this.openedAt < this.coolDownMs) {
      return false;
    }
    this.probeAt = now;
    return true;
  }

  /** Reports a call that succeeded: the breaker closes. */
  success(): void {
    this.failures = 0;
    this.openedAt = undefined;
    this.probeAt = undefined;
  }

  /**
   * Reports a call that failed (an error or a timeout). Returns true when this failure opened
   * the breaker (the threshold was reached, or a probe failed).
   */
  failure(): boolean {
    const wasOpen = this.openedAt !== undefined;
    this.failures++;
    if (wasOpen) {
      // A failed probe (or a late failure of a call made before the breaker opened).
      const probe = this.probeAt !== undefined;
      if (probe) {
        this.openedAt = this.now();
        this.probeAt = undefined;
      }
      return probe;
    }
    if (this.failures < this.threshold) return false;
    this.openedAt = this.now();
    this.probeAt = undefined;
    return true;
  }
}
