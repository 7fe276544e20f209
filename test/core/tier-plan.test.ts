import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { planTiers } from '../../lambdas/core/tier-plan';

function tier(id: string): TierRuntimeConfig {
  return { id, provider: 'bedrock', modelId: `model-${id}`, inputPricePer1k: 0, outputPricePer1k: 0, maxTokens: 1000, timeoutMs: 1000 };
}

// Ascending capability and price, as the runtime config orders them.
const TIERS = ['xs', 's', 'm', 'l'].map(tier);
const ids = (plan: { attempts: TierRuntimeConfig[] }) => plan.attempts.map((t) => t.id);

describe('planTiers: default fallback order (more capable tiers upward, then cheaper ones downward)', () => {
  test.each([
    [0, ['xs', 's', 'm', 'l']],
    [1, ['s', 'm', 'l', 'xs']],
    [2, ['m', 'l', 's', 'xs']],
    [3, ['l', 'm', 's', 'xs']],
  ])('selected index %i → %p', (index, expected) => {
    const plan = planTiers(TIERS, index, undefined, 'any');
    expect(ids(plan)).toEqual(expected);
    expect(plan.hintHonoured).toBe(false);
  });

  test('every tier is tried exactly once', () => {
    for (let i = 0; i < TIERS.length; i++) {
      expect([...ids(planTiers(TIERS, i, undefined, 'ignore'))].sort()).toEqual(['l', 'm', 's', 'xs']);
    }
  });

  test('a classified index out of range is clamped to the tiers', () => {
    expect(ids(planTiers(TIERS, 9, undefined, 'ignore'))[0]).toBe('l');
    expect(ids(planTiers(TIERS, -1, undefined, 'ignore'))[0]).toBe('xs');
  });

  test('a single tier has no fallback', () => {
    expect(ids(planTiers([tier('only')], 0, undefined, 'ignore'))).toEqual(['only']);
  });
});

describe('planTiers: tier hint policies', () => {
  test('ignore: the classified tier is selected whatever the hint', () => {
    for (const hint of ['xs', 'm', 'l']) {
      const plan = planTiers(TIERS, 1, hint, 'ignore');
      expect(plan.attempts[0].id).toBe('s');
      expect(plan.hintHonoured).toBe(false);
    }
  });

  test('cheaper-only: a hint below the classified tier is honoured', () => {
    const plan = planTiers(TIERS, 2, 's', 'cheaper-only');
    expect(ids(plan)).toEqual(['s', 'm', 'l', 'xs']);
    expect(plan.hintHonoured).toBe(true);
  });

  test('cheaper-only: a hint at the classified tier is honoured', () => {
    const plan = planTiers(TIERS, 2, 'm', 'cheaper-only');
    expect(plan.attempts[0].id).toBe('m');
    expect(plan.hintHonoured).toBe(true);
  });

  test('cheaper-only: a hint above the classified tier is refused', () => {
    const plan = planTiers(TIERS, 1, 'l', 'cheaper-only');
    expect(ids(plan)).toEqual(['s', 'm', 'l', 'xs']);
    expect(plan.hintHonoured).toBe(false);
  });

  test('any: a hint above the classified tier is honoured too', () => {
    const plan = planTiers(TIERS, 0, 'l', 'any');
    expect(ids(plan)).toEqual(['l', 'm', 's', 'xs']);
    expect(plan.hintHonoured).toBe(true);
  });

  test('a hint that names no tier is not honoured', () => {
    const plan = planTiers(TIERS, 1, 'nope', 'any');
    expect(plan.attempts[0].id).toBe('s');
    expect(plan.hintHonoured).toBe(false);
  });

  test('no hint: never honoured', () => {
    expect(planTiers(TIERS, 1, undefined, 'any').hintHonoured).toBe(false);
  });
});

describe('planTiers: explicit fallbackOrder', () => {
  test('is followed after the selected tier, which is not tried twice', () => {
    const plan = planTiers(TIERS, 1, undefined, 'ignore', ['l', 's', 'xs']);
    expect(ids(plan)).toEqual(['s', 'l', 'xs']);
  });

  test('unknown tier ids are skipped', () => {
    const plan = planTiers(TIERS, 2, undefined, 'ignore', ['gone', 'xs', 'also-gone', 'l']);
    expect(ids(plan)).toEqual(['m', 'xs', 'l']);
  });

  test('an empty order means no fallback', () => {
    expect(ids(planTiers(TIERS, 3, undefined, 'ignore', []))).toEqual(['l']);
  });

  test('applies to a hinted selection as well', () => {
    const plan = planTiers(TIERS, 3, 'xs', 'cheaper-only', ['xs', 'm']);
    expect(ids(plan)).toEqual(['xs', 'm']);
    expect(plan.hintHonoured).toBe(true);
  });

  test('returns the tier objects themselves', () => {
    const plan = planTiers(TIERS, 0, undefined, 'ignore', ['m']);
    expect(plan.attempts[0]).toBe(TIERS[0]);
    expect(plan.attempts[1]).toBe(TIERS[2]);
  });
});
