/**
 * Cost plans built by hand for the report tests (not by the planner, so that the report is tested
 * on numbers whose drawing we can predict): four phases 1K..1M users/day at 5 requests per user,
 * a linear baseline of exactly $0.02 a request (so it grows tenfold per phase), and ours from
 * infrastructure-dominated at 1K to 2% of linear at 1M, as in the seed.
 */
import type { CostItem, CostPlan, PhasePlan } from '../../constructs/planning/cost-plan';

const items = (entries: Array<[string, number]>): CostItem[] => entries.map(([item, costPerDayUsd]) => ({ item, costPerDayUsd }));
const total = (list: CostItem[]): number => list.reduce((s, i) => s + i.costPerDayUsd, 0);

type Triple = [number, number, number];

function phase(usersPerDay: number, breakdown: CostItem[], hit: Triple, tier: Triple, meanLatencyMs: number): PhasePlan {
  const requestsPerDay = usersPerDay * 5;
  const costPerDayUsd = total(breakdown);
  const model = breakdown.filter((i) => i.item.startsWith('model:')).reduce((s, i) => s + i.costPerDayUsd, 0);
  return {
    usersPerDay,
    requestsPerDay,
    costPerDayUsd,
    linearCostPerDayUsd: requestsPerDay * 0.02,
    hitRate: { static: hit[0], exact: hit[1], semantic: hit[2] },
    tierShare: { small: tier[0], medium: tier[1], large: tier[2] },
    meanLatencyMs,
    costBreakdown: breakdown,
    billOptions: [
      { option: 'flex', description: 'Flex service tier for the batch worker queue (12% of model requests)', savingPerDayUsd: model * 0.06 },
      { option: 'priority', description: 'Priority service tier for the large tier', savingPerDayUsd: -model * 0.3 },
      { option: 'promptCaching', description: 'Cache the 1,400-token system prompt of the medium and large tiers', savingPerDayUsd: model * 0.18 },
    ],
  };
}

export const FIXTURE_PLAN: CostPlan = {
  pricesAsOf: '2026-11-01',
  phases: [
    phase(1_000, items([['model:large', 20], ['model:medium', 8], ['model:small', 2], ['elasticache', 14], ['lambda', 1], ['apiGateway', 1], ['dynamodb', 2], ['cloudfront', 2], ['cloudwatch', 10]]),
      [0.08, 0.12, 0.1], [0.4, 0.2, 0.1], 940),
    phase(10_000, items([['model:large', 60], ['model:medium', 30], ['model:small', 10], ['elasticache', 28], ['lambda', 5], ['apiGateway', 5], ['dynamodb', 4], ['cloudfront', 3], ['cloudwatch', 5]]),
      [0.1, 0.18, 0.17], [0.33, 0.14, 0.08], 610),
    phase(100_000, items([['model:large', 240], ['model:medium', 110], ['model:small', 40], ['elasticache', 56], ['lambda', 30], ['apiGateway', 25], ['opensearch', 0], ['dynamodb', 9], ['cloudfront', 5], ['cloudwatch', 5]]),
      [0.12, 0.24, 0.24], [0.25, 0.1, 0.05], 330),
    phase(1_000_000, items([['model:large', 900], ['model:medium', 420], ['model:small', 180], ['elasticache', 160], ['lambda', 120], ['apiGateway', 100], ['opensearch', 70], ['dynamodb', 25], ['cloudfront', 15], ['cloudwatch', 10]]),
      [0.14, 0.3, 0.28], [0.18, 0.07, 0.03], 180),
  ],
};

/** Names a user could configure: they must come out as text and run nothing. */
export const HOSTILE = {
  tier: '<script>window.__pwned=1</script>',
  item: '"><img src=x onerror="window.__pwned=2">',
  description: "</dd><svg onload=alert('x')><b>bold</b>&amp;",
  asOf: '2026-11-01</title><script>alert(1)</script>',
} as const;

/** The fixture with every user-configurable string replaced by a hostile one (same numbers). */
export const HOSTILE_PLAN: CostPlan = {
  pricesAsOf: HOSTILE.asOf,
  phases: FIXTURE_PLAN.phases.map((p) => ({
    ...p,
    tierShare: Object.fromEntries(Object.entries(p.tierShare).map(([k, v]) => [k === 'large' ? HOSTILE.tier : k, v])),
    costBreakdown: p.costBreakdown.map((i) => (i.item === 'elasticache' ? { ...i, item: HOSTILE.item } : i)),
    billOptions: p.billOptions.map((o) => (o.option === 'flex' ? { ...o, description: HOSTILE.description } : o)),
  })),
};
