import { CostPlanner, PlannerVectorStore, type CostPlannerProps, type TrafficMeasurement } from '../../constructs';
import { PRICE_FILE } from '../../constructs/planning/prices';

const infra = (key: string) => PRICE_FILE.infrastructure[key].usd;
const GIB = 1024 ** 3;
const DAYS_PER_MONTH = 365.25 / 12;

/** One tier with round prices: 100 input + 100 output tokens cost $0.0003 a call. */
const SMALL = { tierId: 'small', inputPricePer1kTokens: 0.001, outputPricePer1kTokens: 0.002, outputTokens: 100, latencyMs: 1000 };
const LARGE = { tierId: 'large', inputPricePer1kTokens: 0.01, outputPricePer1kTokens: 0.03, outputTokens: 200, latencyMs: 3000 };
const BASE: CostPlannerProps = { tiers: [SMALL, LARGE], usersPerDay: [1000], requestsPerUser: 10, semanticCache: false };
const HALF: TrafficMeasurement = { usersPerDay: 1000, hitRate: { exact: 0.5 }, tierShare: { small: 0.4, large: 0.1 }, meanInputTokens: 100 };

function phase(props: Partial<CostPlannerProps> = {}, m: Partial<TrafficMeasurement> = {}) {
  return new CostPlanner({ ...BASE, ...props }).plan([{ ...HALF, ...m }]).phases[0];
}

function item(p: ReturnType<typeof phase>, name: string): number {
  const found = p.costBreakdown.find((i) => i.item === name);
  if (!found) throw new Error(`no item ${name} in ${p.costBreakdown.map((i) => i.item).join(', ')}`);
  return found.costPerDayUsd;
}

describe('CostPlanner', () => {
  test('model cost per tier from calls × tokens × prices (hand-computed)', () => {
    const p = phase();
    expect(p.requestsPerDay).toBe(10_000);
    // small: 4,000 calls × (0.1 × 0.001 + 0.1 × 0.002) = $1.20; large: 1,000 × (0.1 × 0.01 + 0.2 × 0.03) = $7.00
    expect(item(p, 'model:small')).toBeCloseTo(1.2, 10);
    expect(item(p, 'model:large')).toBeCloseTo(7.0, 10);
  });

  test('a price change moves the cost by exactly the expected amount', () => {
    const before = phase();
    const dearer = phase({ tiers: [{ ...SMALL, inputPricePer1kTokens: 0.002 }, LARGE] });
    // 4,000 calls × 100 input tokens × $0.001 more per 1,000
    expect(dearer.costPerDayUsd - before.costPerDayUsd).toBeCloseTo(0.4, 10);
    const api = phase({ priceOverrides: { 'apiGateway.httpRequestsPerMillion': 3 } });
    expect(item(api, 'apiGateway')).toBeCloseTo(0.03, 10);
    expect(api.costPerDayUsd - before.costPerDayUsd).toBeCloseTo(0.01 * (3 - infra('apiGateway.httpRequestsPerMillion')), 10);
    // A system prompt is input to every model call: 5,000 calls, 1,000 tokens, small $0.001 and large $0.01 per 1,000.
    expect(phase({ systemPromptTokens: 1000 }).costPerDayUsd - before.costPerDayUsd).toBeCloseTo(4000 * 0.001 + 1000 * 0.01, 8);
  });

  test('model prices from the price file: a geographic profile pays its premium, overrides replace the file', () => {
    const sonnet = PRICE_FILE.models['anthropic.claude-sonnet-4-5-20250929-v1:0'];
    const tier = (modelId: string) => ({ tierId: 'large', modelId, outputTokens: 0 });
    const cost = (modelId: string, overrides?: Record<string, number>) =>
      item(phase({ tiers: [tier(modelId)], priceOverrides: overrides }, { tierShare: { large: 0.5 } }), 'model:large');
    // 5,000 calls × 100 input tokens
    expect(cost('global.anthropic.claude-sonnet-4-5-20250929-v1:0')).toBeCloseTo(500 * sonnet.input.usd, 10);
    expect(cost('us.anthropic.claude-sonnet-4-5-20250929-v1:0')).toBeCloseTo(500 * sonnet.input.usd * 1.1, 10);
    expect(cost('us.anthropic.claude-sonnet-4-5-20250929-v1:0', { 'model:anthropic.claude-sonnet-4-5-20250929-v1:0:input': 0.004 })).toBeCloseTo(2, 10);
  });

  test('the breakdown sums to the total, and the infrastructure follows the configuration', () => {
    const p = phase({
      semanticCache: true, edge: true, batchShare: 0.2, databaseReaders: 1, vectorStore: PlannerVectorStore.OPENSEARCH_SERVERLESS, regions: 2,
    });
    expect(p.costBreakdown.reduce((a, b) => a + b.costPerDayUsd, 0)).toBeCloseTo(p.costPerDayUsd, 10);
    expect(p.costBreakdown.map((i) => i.item)).toEqual(['model:small', 'model:large', 'embeddings', 'lambda', 'apiGateway', 'elasticache',
      'opensearch', 'aurora', 'vpcEndpoints', 'sqs', 'dynamodb', 'cloudfront', 'waf', 'cloudwatch']);
    expect(item(p, 'elasticache')).toBeCloseTo(2 * 2 * 24 * infra('elasticache.nodeHour.cache.t4g.medium'), 10);
    expect(item(p, 'opensearch')).toBeCloseTo(2 * 24 * infra('opensearchServerless.ocuHour'), 10);
    // 1K users/day: CapacityPlan lets Aurora pause (0 ACU minimum).
    expect(item(p, 'aurora')).toBe(0);
    // 4 interface endpoints (with SQS for the batch pipeline) × 2 AZs × 2 Regions
    expect(item(p, 'vpcEndpoints')).toBeCloseTo(4 * 2 * 2 * 24 * infra('vpc.interfaceEndpointHour'), 10);
    // 20% of 5,000 model calls are jobs: 3 SQS requests each
    expect(item(p, 'sqs')).toBeCloseTo(3 * 1000 / 1e6 * infra('sqs.standardRequestsPerMillion'), 12);
    // Titan Text Embeddings V2 from the price file: 10,000 requests × 50% not answered by the exact cache × 100 tokens
    expect(item(p, 'embeddings')).toBeCloseTo(10_000 * 0.5 * 100 / 1000 * PRICE_FILE.embeddings['amazon.titan-embed-text-v2:0'].usd, 12);
    expect(item(phase({ semanticCache: true, priceOverrides: { 'embeddings.per1kTokens': 0.001 } }), 'embeddings')).toBeCloseTo(0.5, 10);
    const none = phase({ responseCache: false });
    expect(none.costBreakdown.map((i) => i.item)).not.toContain('elasticache');
  });

  test('at 1M users/day Aurora is priced at its CapacityPlan minimum ACUs for writer and readers', () => {
    const p = new CostPlanner({ ...BASE, usersPerDay: [1_000_000], databaseReaders: 2 }).planUniform(HALF).phases[0];
    expect(item(p, 'aurora')).toBeCloseTo(3 * 2 * 24 * infra('aurora.serverlessV2AcuHour'), 10);
  });

  test('the linear baseline: every request to the largest tier, and the fixed infrastructure of a single-tier deployment', () => {
    const p = phase({ regions: 3, edge: true });
    const R = 10_000;
    const model = R * (0.1 * 0.01 + 0.2 * 0.03);
    const lambda = R / 1e6 * infra('lambda.requestsPerMillion') + R * 0.5 * ((30 + 3000) / 1000) * infra('lambda.armGbSecond');
    const api = R / 1e6 * infra('apiGateway.httpRequestsPerMillion');
    const endpoints = 3 * 2 * 24 * infra('vpc.interfaceEndpointHour');
    const cloudwatch = (60 * infra('cloudwatch.customMetricMonth') + infra('cloudwatch.dashboardMonth')) / DAYS_PER_MONTH
      + R * 1024 / GIB * infra('cloudwatch.logsIngestionGb');
    expect(p.linearCostPerDayUsd).toBeCloseTo(model + lambda + api + endpoints + cloudwatch, 10);
  });

  test('modelled latency: levels and tiers weighted by their shares, model answers after the lookups', () => {
    const p = phase({ levelLatencyMs: { exact: 10 }, routerOverheadMs: 5 });
    // 0.5 × 10 + 0.4 × (1000 + 10) + 0.1 × (3000 + 10) + 5
    expect(p.meanLatencyMs).toBeCloseTo(5 + 404 + 301 + 5, 10);
    expect(p.tierShare).toEqual({ small: 0.4, large: 0.1 });
  });

  test('bill options: batch, global profiles and prompt caching save what the formulas say; Priority costs more', () => {
    const props: Partial<CostPlannerProps> = {
      tiers: [
        { tierId: 'small', modelId: 'amazon.nova-pro-v1:0', outputTokens: 100 },
        { tierId: 'large', modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', outputTokens: 200 },
      ],
      batchShare: 0.2,
      systemPromptTokens: 1024,
    };
    const p = phase(props);
    const option = (name: string) => p.billOptions.find((o) => o.option === name)!;
    const small = item(p, 'model:small');
    const large = item(p, 'model:large');
    expect(p.billOptions.map((o) => o.option)).toEqual(['batchInference', 'flex', 'priority', 'promptCaching', 'globalCrossRegion']);
    expect(option('batchInference').savingPerDayUsd).toBeCloseTo((small + large) * 0.2 * 0.5, 10);
    expect(option('flex').savingPerDayUsd).toBeCloseTo(small * 0.2 * 0.5, 10); // only Nova Pro has a Flex price
    expect(option('priority').savingPerDayUsd).toBeCloseTo(-small * 0.8 * 0.75, 10);
    expect(option('globalCrossRegion').savingPerDayUsd).toBeCloseTo(large * (1 - 1 / 1.1), 10);
    // Sonnet only (Nova's minimum prefix is 1,000, so 1,024 qualifies too): calls × 80% interactive,
    // 288 five-minute windows write, the rest read.
    const sonnetIn = 0.003 * 1.1;
    const novaIn = 0.0008;
    const saving = (calls: number, input: number, write: number, read: number) => {
      const writes = Math.min(calls, 288);
      return 1.024 * input * (calls - writes * write - (calls - writes) * read);
    };
    expect(option('promptCaching').savingPerDayUsd).toBeCloseTo(saving(4000 * 0.8, novaIn, 1, 0.25) + saving(1000 * 0.8, sonnetIn, 1.25, 0.1), 8);
    expect(option('promptCaching').description).toContain('small, large');
    const short = phase({ ...props, systemPromptTokens: 1010 }).billOptions.find((o) => o.option === 'promptCaching')!;
    expect(short.description).toContain('too short for large (minimum 1024)');
  });

  test('phases: the default four, one measurement each, in ascending order', () => {
    const planner = new CostPlanner({ tiers: [SMALL] });
    expect(planner.usersPerDay).toEqual([1000, 10000, 100000, 1000000]);
    const m = { hitRate: { exact: 0.9 }, tierShare: { small: 0.1 }, meanInputTokens: 20 };
    const plan = planner.plan([1_000_000, 1000, 100_000, 10_000].map((usersPerDay) => ({ ...m, usersPerDay })));
    expect(plan.pricesAsOf).toBe(PRICE_FILE.asOf);
    expect(plan.phases.map((p) => p.requestsPerDay)).toEqual([10_000, 100_000, 1_000_000, 10_000_000]);
    expect(CostPlanner.pricesAsOf()).toBe(PRICE_FILE.asOf);
  });

  test.each<[string, Partial<CostPlannerProps>, RegExp]>([
    ['no tiers', { tiers: [] }, /tiers must name at least one tier/],
    ['a tier twice', { tiers: [SMALL, SMALL] }, /tiers\[1\]\.tierId "small" is used twice/],
    ['an unpriced model', { tiers: [{ tierId: 'x', modelId: 'meta.llama3-70b-instruct-v1:0' }] }, /tiers\[0\] \("x"\): no price: modelId "meta.llama3-70b-instruct-v1:0" is not in the price file/],
    ['no model, no prices', { tiers: [{ tierId: 'x' }] }, /give modelId or both inputPricePer1kTokens/],
    ['a negative price', { tiers: [{ ...SMALL, outputPricePer1kTokens: -1 }] }, /tiers\[0\]\.outputPricePer1kTokens must be a finite number >= 0/],
    ['batchShare over 1', { batchShare: 1.5 }, /batchShare must be a share from 0 to 1; got 1.5/],
    ['zero requests per user', { requestsPerUser: 0 }, /requestsPerUser must be a finite number > 0/],
    ['a phase twice', { usersPerDay: [10, 10] }, /usersPerDay has a phase twice/],
    ['fractional regions', { regions: 1.5 }, /regions must be an integer >= 1/],
    ['an unknown price key', { priceOverrides: { 'lambda.gbSecond': 1 } }, /priceOverrides\["lambda.gbSecond"\] names no price; use one of lambda.requestsPerMillion/],
    ['an unpriced cache node', { cacheNodeType: 'cache.r7g.large' }, /cacheNodeType: no price "elasticache.nodeHour.cache.r7g.large" in the price file; set priceOverrides/],
  ])('rejects %s, naming the prop', (_name, props, error) => {
    expect(() => new CostPlanner({ ...BASE, ...props })).toThrow(error);
  });

  test('an unlisted cache node type is accepted with its price given', () => {
    const p = phase({ cacheNodeType: 'cache.r7g.large', priceOverrides: { 'elasticache.nodeHour.cache.r7g.large': 0.1 } });
    expect(item(p, 'elasticache')).toBeCloseTo(2 * 24 * 0.1, 10);
  });

  test.each<[string, Partial<TrafficMeasurement>, RegExp]>([
    ['shares that do not sum to 1', { hitRate: { exact: 0.6 } }, /hitRate and tierShare must sum to 1; they sum to 1.1/],
    ['an unknown tier', { tierShare: { small: 0.4, huge: 0.1 } }, /tierShare names "huge", which is not a tier \(small, large\)/],
    ['a negative rate', { hitRate: { exact: -0.5, static: 1 } }, /hitRate.exact must be a share from 0 to 1/],
    ['another phase', { usersPerDay: 5 }, /a measurement is for 5 users\/day, which is not a phase/],
  ])('rejects a measurement with %s', (_name, m, error) => {
    expect(() => new CostPlanner(BASE).plan([{ ...HALF, ...m }])).toThrow(error);
  });

  test('rejects a plan with a phase unmeasured', () => {
    expect(() => new CostPlanner({ ...BASE, usersPerDay: [1000, 2000] }).plan([HALF])).toThrow(/no measurement for the phase of 2000 users\/day/);
  });
});
