import { invocationCostUsd, servedTierPrices } from '../../lambdas/core/cost';

describe('invocationCostUsd', () => {
  test('input and output tokens are billed at their own price per 1,000', () => {
    const tier = { inputPricePer1k: 0.003, outputPricePer1k: 0.015 };
    // 2,000 × 0.003 / 1,000 + 500 × 0.015 / 1,000 = 0.006 + 0.0075
    expect(invocationCostUsd(tier, { inputTokens: 2_000, outputTokens: 500 })).toBe(0.0135);
    expect(invocationCostUsd(tier, { inputTokens: 1_000, outputTokens: 0 })).toBe(0.003);
    expect(invocationCostUsd(tier, { inputTokens: 0, outputTokens: 1_000 })).toBe(0.015);
  });

  test('prices are not swapped', () => {
    const tier = { inputPricePer1k: 1, outputPricePer1k: 100 };
    expect(invocationCostUsd(tier, { inputTokens: 1_000, outputTokens: 0 })).toBe(1);
    expect(invocationCostUsd(tier, { inputTokens: 0, outputTokens: 1_000 })).toBe(100);
  });

  test('no usage costs nothing', () => {
    expect(invocationCostUsd({ inputPricePer1k: 0.5, outputPricePer1k: 2 }, { inputTokens: 0, outputTokens: 0 })).toBe(0);
  });

  test('free tiers cost nothing', () => {
    expect(invocationCostUsd({ inputPricePer1k: 0, outputPricePer1k: 0 }, { inputTokens: 12_345, outputTokens: 6_789 })).toBe(0);
  });

  test('large volumes', () => {
    // 1M input tokens at $0.003/1k = $3; 250k output tokens at $0.015/1k = $3.75
    expect(invocationCostUsd({ inputPricePer1k: 0.003, outputPricePer1k: 0.015 }, { inputTokens: 1_000_000, outputTokens: 250_000 })).toBe(6.75);
  });

  describe('rounds to a micro-dollar', () => {
    test('removes float noise (0.1 + 0.2)', () => {
      // Unrounded, 1000/1000 × 0.1 + 1000/1000 × 0.2 is 0.30000000000000004.
      expect(invocationCostUsd({ inputPricePer1k: 0.1, outputPricePer1k: 0.2 }, { inputTokens: 1_000, outputTokens: 1_000 })).toBe(0.3);
    });

    test('rounds below half a micro-dollar down', () => {
      // 1 token at $0.0002/1k = $0.0000002 = 0.2 µ$
      expect(invocationCostUsd({ inputPricePer1k: 0.0002, outputPricePer1k: 0 }, { inputTokens: 1, outputTokens: 0 })).toBe(0);
    });

    test('rounds above half a micro-dollar up', () => {
      // 1 input token at $0.0008/1k = 0.8 µ$ → 1 µ$; 3 output tokens at $0.0009/1k = 2.7 µ$ → 3 µ$.
      expect(invocationCostUsd({ inputPricePer1k: 0.0008, outputPricePer1k: 0 }, { inputTokens: 1, outputTokens: 0 })).toBe(0.000001);
      expect(invocationCostUsd({ inputPricePer1k: 0, outputPricePer1k: 0.0009 }, { inputTokens: 0, outputTokens: 3 })).toBe(0.000003);
    });

    test('the sum is rounded, not each part', () => {
      // 0.4 µ$ + 0.4 µ$ = 0.8 µ$ → 1 µ$ (rounding each part first would give 0).
      expect(invocationCostUsd({ inputPricePer1k: 0.0004, outputPricePer1k: 0.0004 }, { inputTokens: 1, outputTokens: 1 })).toBe(0.000001);
    });

    test('results have at most six decimals', () => {
      const prices = [0.00025, 0.0008, 0.003, 0.0125, 0.075];
      for (const p of prices) {
        for (const n of [1, 7, 333, 4_567]) {
          const cost = invocationCostUsd({ inputPricePer1k: p, outputPricePer1k: p * 3 }, { inputTokens: n, outputTokens: n + 1 });
          const exact = (n * p + (n + 1) * p * 3) / 1000;
          expect(Math.abs(cost - exact)).toBeLessThanOrEqual(0.0000005 + 1e-12);
          expect(Number(cost.toFixed(6))).toBe(cost);
        }
      }
    });
  });
});

describe('the service tier that served a request', () => {
  // Nova Pro: Standard $0.0008 / $0.0032 per 1K tokens, Flex 0.5x, Priority 1.75x.
  const novaPro = {
    inputPricePer1k: 0.0008,
    outputPricePer1k: 0.0032,
    serviceTierPrices: {
      flex: { inputPricePer1k: 0.0004, outputPricePer1k: 0.0016 },
      priority: { inputPricePer1k: 0.0014, outputPricePer1k: 0.0056 },
    },
  };
  const usage = { inputTokens: 1_000, outputTokens: 1_000 };

  test('prices a response at the service tier it says served it, whatever was asked for', () => {
    expect(invocationCostUsd({ ...novaPro, serviceTier: 'priority' as const }, usage, 'flex')).toBe(0.002);
    expect(invocationCostUsd({ ...novaPro, serviceTier: 'flex' as const }, usage, 'priority')).toBe(0.007);
    // Asked for Priority, served at Standard (`default`): billed at Standard.
    expect(invocationCostUsd({ ...novaPro, serviceTier: 'priority' as const }, usage, 'default')).toBe(0.004);
  });

  test('falls back to the service tier asked for when the response names none', () => {
    expect(invocationCostUsd({ ...novaPro, serviceTier: 'flex' as const }, usage)).toBe(0.002);
    expect(invocationCostUsd({ ...novaPro, serviceTier: 'priority' as const }, usage)).toBe(0.007);
    expect(invocationCostUsd(novaPro, usage)).toBe(0.004);
  });

  test('charges Standard for Reserved and for a served tier without a configured price', () => {
    expect(invocationCostUsd({ ...novaPro, serviceTier: 'priority' as const }, usage, 'reserved')).toBe(0.004);
    expect(invocationCostUsd({ inputPricePer1k: 0.0008, outputPricePer1k: 0.0032, serviceTier: 'flex' as const }, usage, 'flex')).toBe(0.004);
    const priorityOnly = { inputPricePer1k: 1, outputPricePer1k: 2, serviceTierPrices: { priority: { inputPricePer1k: 3, outputPricePer1k: 4 } } };
    expect(servedTierPrices(priorityOnly, 'flex'))
      .toEqual({ inputPricePer1k: 1, outputPricePer1k: 2 });
  });
});
