import type { TierRuntimeConfig } from '../../../constructs/contract/runtime-config';
import type { ModelInvoker, ModelRequest, ModelResponse } from '../ports';

/**
 * A counting semaphore whose waiters leave the queue when their abort signal fires, so a caller
 * that gave up (its deadline passed) never takes a slot it no longer wants.
 */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a semaphore needs a limit of at least 1, got ${limit}`);
    this.available = limit;
  }

  /** Waits for a slot; rejects with an `AbortError` when `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.available > 0) {
      this.available--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortError(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  /** Gives a slot back: to the longest waiter, if any. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.available = Math.min(this.limit, this.available + 1);
  }
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error('the invocation was abandoned while waiting for a free slot of its tier');
  err.name = 'AbortError';
  return err;
}

/**
 * A {@link ModelInvoker} that lets at most `limit` invocations of each tier run at once (one
 * semaphore per tier id); the others wait in arrival order. It wraps the invoker the
 * `ChatService` calls, so the limit holds for every invocation, fallbacks included.
 *
 * The ChatService waits for a slot through `acquire` before it starts the tier's timeout, so a
 * request that only waited is not taken for a slow or failing tier (no fallback to a more
 * expensive one); a request whose deadline passes while it waits is retried later instead.
 */
export class TierLimitedInvoker implements ModelInvoker {
  private readonly semaphores = new Map<string, Semaphore>();

  constructor(
    private readonly inner: ModelInvoker,
    private readonly limit: number,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`tierConcurrency must be an integer of at least 1, got ${limit}`);
  }

  async acquire(tier: TierRuntimeConfig, signal: AbortSignal): Promise<() => void> {
    let semaphore = this.semaphores.get(tier.id);
    if (!semaphore) this.semaphores.set(tier.id, (semaphore = new Semaphore(this.limit)));
    await semaphore.acquire(signal);
    let released = false;
    return () => {
      if (!released) semaphore.release();
      released = true;
    };
  }

  invoke(tier: TierRuntimeConfig, request: ModelRequest, signal: AbortSignal): Promise<ModelResponse> {
    return this.inner.invoke(tier, request, signal);
  }
}
