import { CircuitBreaker, DEFAULT_BREAKER_COOL_DOWN_MS, DEFAULT_BREAKER_FAILURE_THRESHOLD } from '../../lambdas/core/circuit-breaker';

/** A breaker on a clock the test moves. */
function breaker(options: { failureThreshold?: number; coolDownMs?: number } = {}): { b: CircuitBreaker; advance: (ms: number) => void } {
  let now = 1_000_000;
  const b = new CircuitBreaker('exact', { ...options, now: () => now });
  return { b, advance: (ms) => (now += ms) };
}

function fail(b: CircuitBreaker, times: number): boolean[] {
  return Array.from({ length: times }, () => b.failure());
}

test('the defaults: 3 consecutive failures open the breaker for 30 s', () => {
  expect(DEFAULT_BREAKER_FAILURE_THRESHOLD).toBe(3);
  expect(DEFAULT_BREAKER_COOL_DOWN_MS).toBe(30_000);
  const { b, advance } = breaker();
  expect(fail(b, 3)).toEqual([false, false, true]);
  expect(b.state).toBe('open');
  expect(b.tryAcquire()).toBe(false);
  advance(29_999);
  expect(b.tryAcquire()).toBe(false);
  advance(1);
  expect(b.tryAcquire()).toBe(true);
});

test('a success before the threshold resets the count: only consecutive failures open it', () => {
  const { b } = breaker({ failureThreshold: 3 });
  fail(b, 2);
  b.success();
  expect(fail(b, 2)).toEqual([false, false]);
  expect(b.state).toBe('closed');
  expect(b.tryAcquire()).toBe(true);
  expect(b.failure()).toBe(true);
  expect(b.state).toBe('open');
});

test('after the cool-down one probe goes through; the others are skipped until it reports', () => {
  const { b, advance } = breaker({ failureThreshold: 2, coolDownMs: 1_000 });
  fail(b, 2);
  advance(1_000);
  expect(b.state).toBe('half-open');
  expect(b.tryAcquire()).toBe(true);
  expect(b.tryAcquire()).toBe(false);
  expect(b.tryAcquire()).toBe(false);
  b.success();
  expect(b.state).toBe('closed');
  expect([b.tryAcquire(), b.tryAcquire()]).toEqual([true, true]);
});

test('a failed probe opens the breaker for another cool-down (and reports that it opened)', () => {
  const { b, advance } = breaker({ failureThreshold: 2, coolDownMs: 1_000 });
  fail(b, 2);
  advance(1_000);
  expect(b.tryAcquire()).toBe(true);
  expect(b.failure()).toBe(true);
  expect(b.state).toBe('open');
  advance(999);
  expect(b.tryAcquire()).toBe(false);
  advance(1);
  expect(b.tryAcquire()).toBe(true);
});

test('late failures of calls made before it opened do not extend the cool-down', () => {
  const { b, advance } = breaker({ failureThreshold: 2, coolDownMs: 1_000 });
  fail(b, 2);
  advance(600);
  expect(b.failure()).toBe(false);
  advance(400);
  expect(b.tryAcquire()).toBe(true);
});

test('a probe that never reports is replaced after another cool-down', () => {
  const { b, advance } = breaker({ failureThreshold: 1, coolDownMs: 1_000 });
  b.failure();
  advance(1_000);
  expect(b.tryAcquire()).toBe(true);
  advance(999);
  expect(b.tryAcquire()).toBe(false);
  advance(1);
  expect(b.tryAcquire()).toBe(true);
});
