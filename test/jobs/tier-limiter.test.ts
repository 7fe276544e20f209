/**
 * The per-tier concurrency limit of the batch worker, on a controllable invoker: in-flight calls
 * are counted where they run, and each call is released by the test, not by a timer.
 */
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { Semaphore, TierLimitedInvoker } from '../../lambdas/core/jobs/tier-limiter';
import type { ModelInvoker, ModelRequest, ModelResponse } from '../../lambdas/core/ports';

const tier = (id: string): TierRuntimeConfig => ({ id, provider: 'bedrock', modelId: id, inputPricePer1k: 0, outputPricePer1k: 0, maxTokens: 10, timeoutMs: 1_000 });
const request: ModelRequest = { messages: [{ role: 'user', text: 'hi' }], maxTokens: 10 };

/** An invoker whose calls stay open until the test finishes them. */
class GatedInvoker implements ModelInvoker {
  readonly open: Array<{ tier: string; finish: () => void }> = [];
  readonly inFlight = new Map<string, number>();
  readonly peak = new Map<string, number>();

  invoke(t: TierRuntimeConfig): Promise<ModelResponse> {
    const now = (this.inFlight.get(t.id) ?? 0) + 1;
    this.inFlight.set(t.id, now);
    this.peak.set(t.id, Math.max(this.peak.get(t.id) ?? 0, now));
    return new Promise((resolve) => {
      this.open.push({
        tier: t.id,
        finish: () => {
          this.inFlight.set(t.id, this.inFlight.get(t.id)! - 1);
          resolve({ text: t.id, usage: { inputTokens: 1, outputTokens: 1 } });
        },
      });
    });
  }

  /** Finishes the oldest open call (of `tierId`, if given). */
  finishOne(tierId?: string): void {
    const i = this.open.findIndex((c) => tierId === undefined || c.tier === tierId);
    this.open.splice(i, 1)[0].finish();
  }
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** What the ChatService does: take a slot of the tier (no timeout running yet), then invoke. */
async function call(limited: TierLimitedInvoker, t: TierRuntimeConfig, signal: AbortSignal): Promise<ModelResponse> {
  const release = await limited.acquire(t, signal);
  try {
    return await limited.invoke(t, request, signal);
  } finally {
    release();
  }
}

test('at most `limit` calls per tier run at once; tiers do not share their slots', async () => {
  const inner = new GatedInvoker();
  const limited = new TierLimitedInvoker(inner, 2);
  const signal = new AbortController().signal;
  const calls = [
    ...Array.from({ length: 5 }, () => call(limited, tier('small'), signal)),
    ...Array.from({ length: 3 }, () => call(limited, tier('large'), signal)),
  ];
  await settle();
  expect(inner.inFlight.get('small')).toBe(2);
  expect(inner.inFlight.get('large')).toBe(2);
  while (inner.open.length > 0) {
    inner.finishOne();
    await settle();
  }
  await expect(Promise.all(calls)).resolves.toHaveLength(8);
  expect(inner.peak.get('small')).toBe(2);
  expect(inner.peak.get('large')).toBe(2);
});

test('a waiter whose signal aborts leaves the queue without taking a slot', async () => {
  const inner = new GatedInvoker();
  const limited = new TierLimitedInvoker(inner, 1);
  const first = call(limited, tier('small'), new AbortController().signal);
  const abandoned = new AbortController();
  const second = call(limited, tier('small'), abandoned.signal);
  const third = call(limited, tier('small'), new AbortController().signal);
  await settle();
  abandoned.abort();
  await expect(second).rejects.toMatchObject({ name: 'AbortError' });
  inner.finishOne();
  await expect(first).resolves.toMatchObject({ text: 'small' });
  await settle();
  // The third call got the slot; the abandoned one never reached the model.
  expect(inner.open).toHaveLength(1);
  inner.finishOne();
  await expect(third).resolves.toMatchObject({ text: 'small' });
  expect(inner.peak.get('small')).toBe(1);
});

test('a failing call gives its slot back', async () => {
  const failing: ModelInvoker = { invoke: () => Promise.reject(new Error('boom')) };
  const limited = new TierLimitedInvoker(failing, 1);
  const signal = new AbortController().signal;
  await expect(limited.invoke(tier('small'), request, signal)).rejects.toThrow('boom');
  await expect(limited.invoke(tier('small'), request, signal)).rejects.toThrow('boom');
});

test('limits below 1 are refused', () => {
  expect(() => new Semaphore(0)).toThrow(RangeError);
  expect(() => new TierLimitedInvoker(new GatedInvoker(), 0)).toThrow(/tierConcurrency/);
});

test('a slot is given back once, however often its release is called', async () => {
  const limited = new TierLimitedInvoker(new GatedInvoker(), 1);
  const release = await limited.acquire(tier('small'), new AbortController().signal);
  release();
  release();
  const a = await limited.acquire(tier('small'), new AbortController().signal);
  const waiting = limited.acquire(tier('small'), AbortSignal.timeout(50));
  // Rejected by its deadline (the signal's TimeoutError, or the semaphore's AbortError where that is no Error of this realm).
  await expect(waiting).rejects.toMatchObject({ name: expect.stringMatching(/^(TimeoutError|AbortError)$/) });
  a();
});
