import type { BillOption, CostItem, CostPlan, PhasePlan } from './cost-plan';
import { inferenceScopeOf, modelPricesOf, PRICE_FILE, PRICE_KEYS, TITAN_EMBED_TEXT_V2, type ModelPrices } from './prices';
import { CapacityPlan, ScalingPhase } from '../scaling/capacity-plan';

/** Where the semantic cache keeps its vectors (what `VectorStore` provisions). */
export enum PlannerVectorStore {
  /** In the response cache (`VectorStore.valkey()`): no extra infrastructure. */
  VALKEY = 'valkey',
  /** An OpenSearch Serverless collection: OCUs billed around the clock. */
  OPENSEARCH_SERVERLESS = 'opensearch-serverless',
  /** Aurora PostgreSQL with pgvector: the cluster of `databaseReaders` (a writer alone when unset). */
  AURORA_PGVECTOR = 'aurora-pgvector',
}

/** A model tier as the planner prices it. */
export interface PlannerTier {
  /** The tier id (`small`, `medium`, `large`...), as the router names it. */
  readonly tierId: string;
  /**
   * Bedrock model id or inference profile id: its prices come from the price file
   * (`us.`/`eu.`/`apac.` profiles at the geographic price, `global.` at the global one).
   * @default - none: give both prices
   */
  readonly modelId?: string;
  /** USD per 1,000 input tokens. @default - the price file's, for `modelId` */
  readonly inputPricePer1kTokens?: number;
  /** USD per 1,000 output tokens. @default - the price file's, for `modelId` */
  readonly outputPricePer1kTokens?: number;
  /** Mean output tokens of one answer of this tier. @default 300 */
  readonly outputTokens?: number;
  /** Modelled latency of one answer of this tier, in milliseconds. @default 800, 1500, 4000... by position (the last tier 4000) */
  readonly latencyMs?: number;
}

/** The service configuration to price: what the constructs would provision. */
export interface CostPlannerProps {
  /** The model tiers, cheapest first; the last is the largest (the linear baseline's). */
  readonly tiers: PlannerTier[];
  /** Users per day of each phase. @default [1000, 10000, 100000, 1000000] */
  readonly usersPerDay?: number[];
  /** Requests per user per day. @default 10 (the sizing assumption of `CapacityPlan`) */
  readonly requestsPerUser?: number;
  /** Tokens of the system prompt sent with every model request (the natural prompt-cache point). @default 0 */
  readonly systemPromptTokens?: number;
  /** Whether the response cache (ElastiCache for Valkey) is provisioned. @default true */
  readonly responseCache?: boolean;
  /** Nodes of the response cache: the primary and its replicas (`ResponseCache` default: 1 replica). @default 2 */
  readonly cacheNodes?: number;
  /** Node type of the response cache (a key `elasticache.nodeHour.<type>` of the price file). @default 'cache.t4g.medium' */
  readonly cacheNodeType?: string;
  /** Whether the router has a semantic cache (each request that reaches it is embedded). @default true */
  readonly semanticCache?: boolean;
  /** Where the semantic cache keeps its vectors. @default PlannerVectorStore.VALKEY */
  readonly vectorStore?: PlannerVectorStore;
  /** OCUs of an OpenSearch Serverless collection (0.5 indexing + 0.5 search without standby replicas). @default 1 */
  readonly openSearchOcus?: number;
  /**
   * Share of model requests that can wait (the jobs API and the batch worker's queue): the batch
   * pipeline's SQS and DynamoDB are charged for them, and the batch inference and Flex bill options
   * apply to them. @default 0
   */
  readonly batchShare?: number;
  /** Regions the service is deployed in (`RegionalDeployment`): each has its own fixed infrastructure. @default 1 */
  readonly regions?: number;
  /**
   * Aurora readers of a `ReadReplicaDatabase` (0: the writer alone), priced at the phase's minimum ACUs
   * of `CapacityPlan`. @default - no database
   */
  readonly databaseReaders?: number;
  /** Whether requests come through `EdgeDistribution` (CloudFront and WAF). @default false */
  readonly edge?: boolean;
  /** Mean bytes of a response (CloudFront data transfer). @default 2048 */
  readonly responseBytes?: number;
  /** CloudWatch Logs bytes ingested per request (router access log and structured log). @default 1024 */
  readonly logBytesPerRequest?: number;
  /** CloudWatch custom metric series the router's EMF metrics make in one Region. @default 60 */
  readonly customMetrics?: number;
  /**
   * Modelled latency in milliseconds of a request answered by each cache level (`static`, `exact`,
   * `semantic`); a model answer takes its tier's latency plus the lookups before it.
   * @default { static: 15, exact: 20, semantic: 120 }
   */
  readonly levelLatencyMs?: { [level: string]: number };
  /** Latency every request adds in API Gateway and the router, in milliseconds. @default 30 */
  readonly routerOverheadMs?: number;
  /**
   * Prices replacing the price file's: infrastructure keys (`lambda.requestsPerMillion`...,
   * `embeddings.per1kTokens`) or `model:<modelId>:input` / `model:<modelId>:output` (USD per 1,000 tokens).
   * @default - the price file's prices
   */
  readonly priceOverrides?: { [key: string]: number };
}

/** What the replay of a trace measured for one phase. */
export interface TrafficMeasurement {
  /** The phase measured (one of the planner's `usersPerDay`). */
  readonly usersPerDay: number;
  /** Share of requests answered by each cache level (`static`, `exact`, `semantic`), 0..1. */
  readonly hitRate: { [level: string]: number };
  /** Share of requests answered by each tier (by tier id), 0..1; with `hitRate` it sums to 1. */
  readonly tierShare: { [tier: string]: number };
  /** Mean input tokens of the question of a request that reaches a model (the system prompt is added). */
  readonly meanInputTokens: number;
  /** Share of requests embedded by the semantic cache. @default - the requests that no static or exact hit answered */
  readonly semanticLookupShare?: number;
}

const DEFAULT_USERS = [1_000, 10_000, 100_000, 1_000_000];
const DEFAULT_LEVEL_LATENCY: Readonly<Record<string, number>> = { static: 15, exact: 20, semantic: 120 };
const DEFAULT_TIER_LATENCY = [800, 1500];
const LARGEST_TIER_LATENCY = 4000;
const DAYS_PER_MONTH = 365.25 / 12;
const HOURS = 24;
const GIB = 1024 ** 3;
/** TieredRouter's default `memorySize`. */
const ROUTER_MEMORY_GB = 0.5;
/** Bedrock Runtime, SageMaker Runtime and Secrets Manager (ScalableAiService's default VPC), in 2 AZs. */
const INTERFACE_ENDPOINTS = 3;
const AVAILABILITY_ZONES = 2;
/** EdgeDistribution's web ACL: a rate rule and two AWS managed rule groups. */
const WAF_RULES = 3;
/** A prompt cache entry lives 5 minutes after its last use: at least one write per window with traffic. */
const PROMPT_CACHE_WINDOWS_PER_DAY = (24 * 60) / 5;
const SHARE_TOLERANCE = 1e-6;

interface ResolvedTier {
  readonly id: string;
  readonly modelId?: string;
  readonly input: number;
  readonly output: number;
  readonly outputTokens: number;
  readonly latencyMs: number;
  readonly prices?: ModelPrices;
}

/**
 * The cost model of a service built with this library: per phase (users per day), the model
 * tokens of what the caches did not answer, the infrastructure the constructs provision at that
 * phase, the linear baseline (every request to the largest tier, no cache), and what each Bedrock
 * bill option would save. Pure: no AWS calls, no files; the prices are the package's price file
 * (`pricesAsOf`), replaced where `priceOverrides` says.
 *
 * The hit rates and tier mix come from a replay of real traffic through the library's caches and
 * router (`npx cdk-scalable-ai plan` does it), or from production metrics.
 */
export class CostPlanner {
  /** The `asOf` date of the price file. */
  public static pricesAsOf(): string {
    return PRICE_FILE.asOf;
  }

  /** The phases planned, ascending. */
  public readonly usersPerDay: number[];
  private readonly tiers: ResolvedTier[];
  private readonly requestsPerUser: number;
  private readonly overrides: Readonly<Record<string, number>>;

  constructor(private readonly props: CostPlannerProps) {
    this.overrides = validateOverrides(props.priceOverrides ?? {});
    this.usersPerDay = validateUsers(props.usersPerDay ?? DEFAULT_USERS);
    this.requestsPerUser = positive('requestsPerUser', props.requestsPerUser ?? 10);
    nonNegative('systemPromptTokens', props.systemPromptTokens ?? 0);
    share('batchShare', props.batchShare ?? 0);
    integerAtLeast('regions', props.regions ?? 1, 1);
    integerAtLeast('cacheNodes', props.cacheNodes ?? 2, 1);
    positive('openSearchOcus', props.openSearchOcus ?? 1);
    if (props.databaseReaders !== undefined) integerAtLeast('databaseReaders', props.databaseReaders, 0);
    nonNegative('responseBytes', props.responseBytes ?? 2048);
    nonNegative('logBytesPerRequest', props.logBytesPerRequest ?? 1024);
    nonNegative('customMetrics', props.customMetrics ?? 60);
    nonNegative('routerOverheadMs', props.routerOverheadMs ?? 30);
    for (const [level, ms] of Object.entries(props.levelLatencyMs ?? {})) nonNegative(`levelLatencyMs.${level}`, ms);
    if (props.responseCache !== false) this.infra(`elasticache.nodeHour.${props.cacheNodeType ?? 'cache.t4g.medium'}`, 'cacheNodeType');
    this.tiers = this.resolveTiers(props.tiers);
  }

  /** Requests per day of a phase. */
  public requestsPerDay(usersPerDay: number): number {
    return usersPerDay * this.requestsPerUser;
  }

  /** The plan of every phase, from one measurement per phase (in any order). */
  public plan(measurements: TrafficMeasurement[]): CostPlan {
    const byUsers = new Map<number, TrafficMeasurement>();
    for (const m of measurements) {
      if (!this.usersPerDay.includes(m.usersPerDay)) {
        throw new Error(`CostPlanner.plan: a measurement is for ${m.usersPerDay} users/day, which is not a phase (usersPerDay: ${this.usersPerDay.join(', ')})`);
      }
      if (byUsers.has(m.usersPerDay)) throw new Error(`CostPlanner.plan: two measurements for ${m.usersPerDay} users/day`);
      byUsers.set(m.usersPerDay, m);
    }
    const phases = this.usersPerDay.map((users) => {
      const m = byUsers.get(users);
      if (!m) throw new Error(`CostPlanner.plan: no measurement for the phase of ${users} users/day`);
      return this.planPhase(m);
    });
    return { pricesAsOf: PRICE_FILE.asOf, phases };
  }

  /** The plan of every phase with the same measured rates (its `usersPerDay` is ignored). */
  public planUniform(measurement: TrafficMeasurement): CostPlan {
    return this.plan(this.usersPerDay.map((usersPerDay) => ({ ...measurement, usersPerDay })));
  }

  /** The plan of one phase. */
  public planPhase(m: TrafficMeasurement): PhasePlan {
    const where = `the measurement for ${m.usersPerDay} users/day`;
    positive(`${where}: usersPerDay`, m.usersPerDay);
    nonNegative(`${where}: meanInputTokens`, m.meanInputTokens);
    let total = 0;
    for (const [level, rate] of Object.entries(m.hitRate)) total += share(`${where}: hitRate.${level}`, rate);
    for (const [tier, rate] of Object.entries(m.tierShare)) {
      if (!this.tiers.some((t) => t.id === tier)) throw new Error(`CostPlanner: ${where}: tierShare names "${tier}", which is not a tier (${this.tiers.map((t) => t.id).join(', ')})`);
      total += share(`${where}: tierShare.${tier}`, rate);
    }
    if (Math.abs(total - 1) > SHARE_TOLERANCE) throw new Error(`CostPlanner: ${where}: hitRate and tierShare must sum to 1; they sum to ${total}`);

    const p = this.props;
    const requests = this.requestsPerDay(m.usersPerDay);
    const regions = p.regions ?? 1;
    const sys = p.systemPromptTokens ?? 0;
    const inputTokens = sys + m.meanInputTokens;
    const batchShare = p.batchShare ?? 0;
    const items: CostItem[] = [];
    const add = (item: string, usd: number) => items.push({ item, costPerDayUsd: usd });

    const modelCost = new Map<string, { calls: number; cost: number }>();
    for (const t of this.tiers) {
      const calls = requests * (m.tierShare[t.id] ?? 0);
      const cost = calls * perCall(t, inputTokens);
      modelCost.set(t.id, { calls, cost });
      add(`model:${t.id}`, cost);
    }
    const modelCalls = [...modelCost.values()].reduce((a, b) => a + b.calls, 0);

    if (p.semanticCache !== false) {
      const lookupShare = m.semanticLookupShare ?? Math.max(0, 1 - (m.hitRate.static ?? 0) - (m.hitRate.exact ?? 0));
      add('embeddings', requests * share(`${where}: semanticLookupShare`, lookupShare) * m.meanInputTokens / 1000 * this.price('embeddings.per1kTokens'));
    }
    const meanLatencyMs = this.meanLatency(m);
    add('lambda', this.lambdaCost(requests, meanLatencyMs));
    add('apiGateway', requests / 1e6 * this.price('apiGateway.httpRequestsPerMillion'));
    if (p.responseCache !== false) {
      add('elasticache', regions * (p.cacheNodes ?? 2) * HOURS * this.price(`elasticache.nodeHour.${p.cacheNodeType ?? 'cache.t4g.medium'}`));
    }
    if (p.vectorStore === PlannerVectorStore.OPENSEARCH_SERVERLESS) {
      add('opensearch', regions * (p.openSearchOcus ?? 1) * HOURS * this.price('opensearchServerless.ocuHour'));
    }
    if (p.databaseReaders !== undefined || p.vectorStore === PlannerVectorStore.AURORA_PGVECTOR) {
      const instances = 1 + (p.databaseReaders ?? 0);
      add('aurora', regions * instances * CapacityPlan.forPhase(phaseOf(m.usersPerDay)).auroraMinAcu * HOURS * this.price('aurora.serverlessV2AcuHour'));
    }
    const endpoints = INTERFACE_ENDPOINTS + (batchShare > 0 ? 1 : 0);
    add('vpcEndpoints', this.endpointCost(regions, endpoints));
    if (batchShare > 0) {
      const jobs = modelCalls * batchShare;
      // A job is sent, received and deleted (3 SQS requests), and its result written and read once.
      add('sqs', 3 * jobs / 1e6 * this.price('sqs.standardRequestsPerMillion'));
      add('dynamodb', jobs / 1e6 * (this.price('dynamodb.writeRequestsPerMillion') + this.price('dynamodb.readRequestsPerMillion')));
    }
    if (p.edge) {
      add('cloudfront', requests * (p.responseBytes ?? 2048) / GIB * this.price('cloudfront.dataTransferGb'));
      add('waf', (this.price('waf.webAclMonth') + WAF_RULES * this.price('waf.ruleMonth')) / DAYS_PER_MONTH
        + requests / 1e6 * this.price('waf.requestsPerMillion'));
    }
    add('cloudwatch', this.cloudWatchCost(requests, regions));

    const largest = this.tiers[this.tiers.length - 1];
    const linear = requests * perCall(largest, inputTokens)
      + this.lambdaCost(requests, (p.routerOverheadMs ?? 30) + largest.latencyMs)
      + requests / 1e6 * this.price('apiGateway.httpRequestsPerMillion')
      + this.endpointCost(1, INTERFACE_ENDPOINTS)
      + this.cloudWatchCost(requests, 1);

    return {
      usersPerDay: m.usersPerDay,
      requestsPerDay: requests,
      costPerDayUsd: items.reduce((a, b) => a + b.costPerDayUsd, 0),
      linearCostPerDayUsd: linear,
      hitRate: { ...m.hitRate },
      tierShare: Object.fromEntries(this.tiers.map((t) => [t.id, m.tierShare[t.id] ?? 0])),
      meanLatencyMs,
      costBreakdown: items,
      billOptions: this.billOptions(modelCost, sys, regions, batchShare),
    };
  }

  private billOptions(modelCost: Map<string, { calls: number; cost: number }>, sys: number, regions: number, batchShare: number): BillOption[] {
    const tiersWith = (pick: (t: ResolvedTier) => boolean) => this.tiers.filter(pick);
    const sum = (tiers: ResolvedTier[], f: (t: ResolvedTier, c: { calls: number; cost: number }) => number) =>
      tiers.reduce((a, t) => a + f(t, modelCost.get(t.id)!), 0);
    const names = (tiers: ResolvedTier[]) => tiers.map((t) => t.id).join(', ');
    const waits = `${pct(batchShare)} of model requests can wait (batchShare)`;
    const options: BillOption[] = [];

    const batchable = tiersWith((t) => t.prices?.batch !== undefined);
    options.push({
      option: 'batchInference',
      description: batchShare === 0
        ? 'Bedrock batch inference at 0.5x for requests that can wait: batchShare is 0, so none are counted'
        : `${waits}, sent as Bedrock batch inference (jobs of 100+ records) on ${names(batchable) || 'no tier with a batch price'}`,
      savingPerDayUsd: sum(batchable, (t, c) => c.cost * batchShare * (1 - t.prices!.batch!.factor)),
    });

    const flexible = tiersWith((t) => t.prices?.flex !== undefined);
    options.push({
      option: 'flex',
      description: flexible.length === 0
        ? 'the Flex service tier (about 0.5x): no tier\'s model has a Flex price in the price file'
        : `${waits}, on the Flex service tier of ${names(flexible)}`,
      savingPerDayUsd: sum(flexible, (t, c) => c.cost * batchShare * (1 - t.prices!.flex!.factor)),
    });

    const prioritized = tiersWith((t) => t.prices?.priority !== undefined);
    options.push({
      option: 'priority',
      description: prioritized.length === 0
        ? 'the Priority service tier (about 1.75x, faster output): no tier\'s model has a Priority price in the price file'
        : `the interactive requests of ${names(prioritized)} on the Priority service tier (faster output, costs more)`,
      savingPerDayUsd: -sum(prioritized, (t, c) => c.cost * (1 - batchShare) * (t.prices!.priority!.factor - 1)),
    });

    const cacheable = tiersWith((t) => t.prices?.cacheRead !== undefined && sys >= (t.prices.minCacheTokens?.tokens ?? Number.POSITIVE_INFINITY));
    const tooShort = tiersWith((t) => t.prices?.cacheRead !== undefined && !cacheable.includes(t));
    options.push({
      option: 'promptCaching',
      description: sys === 0
        ? 'a prompt cache checkpoint after the system prompt: systemPromptTokens is 0, nothing to cache'
        : `a cache checkpoint after the ${sys}-token system prompt on ${names(cacheable) || 'no tier'}`
          + (tooShort.length ? `; too short for ${tooShort.map((t) => `${t.id} (minimum ${t.prices!.minCacheTokens?.tokens ?? '?'})`).join(', ')}` : ''),
      savingPerDayUsd: sum(cacheable, (t, c) => {
        const calls = c.calls * (1 - batchShare);
        const writes = Math.min(calls, PROMPT_CACHE_WINDOWS_PER_DAY * regions);
        const reads = calls - writes;
        const write = t.prices!.cacheWrite?.factor ?? 1;
        return (sys / 1000) * t.input * (calls - writes * write - reads * t.prices!.cacheRead!.factor);
      }),
    });

    const geographic = tiersWith((t) => t.modelId !== undefined && inferenceScopeOf(t.modelId) === 'geographic' && t.prices?.geographicPremium !== undefined);
    options.push({
      option: 'globalCrossRegion',
      description: geographic.length === 0
        ? 'global cross-Region inference profiles: no tier uses a geographic profile priced above the global one'
        : `global instead of geographic inference profiles for ${names(geographic)}`,
      savingPerDayUsd: sum(geographic, (t, c) => c.cost * (1 - 1 / t.prices!.geographicPremium!.factor)),
    });
    return options;
  }

  private meanLatency(m: TrafficMeasurement): number {
    const levels = { ...DEFAULT_LEVEL_LATENCY, ...(this.props.levelLatencyMs ?? {}) };
    // A model answer comes after the lookups that missed: the semantic one when there is a semantic cache.
    const lookups = this.props.semanticCache !== false ? levels.semantic ?? 0 : this.props.responseCache !== false ? levels.exact ?? 0 : 0;
    let ms = 0;
    for (const [level, rate] of Object.entries(m.hitRate)) ms += rate * (levels[level] ?? 0);
    for (const t of this.tiers) ms += (m.tierShare[t.id] ?? 0) * (t.latencyMs + lookups);
    return (this.props.routerOverheadMs ?? 30) + ms;
  }

  /** The router's requests and duration: it waits for the model, so its duration is the request's latency. */
  private lambdaCost(requests: number, latencyMs: number): number {
    return requests / 1e6 * this.price('lambda.requestsPerMillion') + requests * ROUTER_MEMORY_GB * (latencyMs / 1000) * this.price('lambda.armGbSecond');
  }

  private endpointCost(regions: number, endpoints: number): number {
    return regions * endpoints * AVAILABILITY_ZONES * HOURS * this.price('vpc.interfaceEndpointHour');
  }

  private cloudWatchCost(requests: number, regions: number): number {
    return regions * ((this.props.customMetrics ?? 60) * this.price('cloudwatch.customMetricMonth') + this.price('cloudwatch.dashboardMonth')) / DAYS_PER_MONTH
      + requests * (this.props.logBytesPerRequest ?? 1024) / GIB * this.price('cloudwatch.logsIngestionGb');
  }

  private price(key: string): number {
    if (key in this.overrides) return this.overrides[key];
    // The semantic cache's default embedder, Titan Text Embeddings V2.
    if (key === 'embeddings.per1kTokens') return PRICE_FILE.embeddings[TITAN_EMBED_TEXT_V2].usd;
    return this.infra(key, key);
  }

  private infra(key: string, prop: string): number {
    const found = PRICE_FILE.infrastructure[key];
    if (key in this.overrides) return this.overrides[key];
    if (!found) throw new Error(`CostPlanner: ${prop}: no price "${key}" in the price file; set priceOverrides["${key}"]`);
    return found.usd;
  }

  private resolveTiers(tiers: PlannerTier[]): ResolvedTier[] {
    if (!Array.isArray(tiers) || tiers.length === 0) throw new Error('CostPlanner: tiers must name at least one tier');
    const seen = new Set<string>();
    return tiers.map((t, i) => {
      const at = `tiers[${i}]`;
      if (!t.tierId) throw new Error(`CostPlanner: ${at}.tierId is required`);
      if (seen.has(t.tierId)) throw new Error(`CostPlanner: ${at}.tierId "${t.tierId}" is used twice`);
      seen.add(t.tierId);
      const entry = t.modelId === undefined ? undefined : modelPricesOf(t.modelId);
      const premium = t.modelId !== undefined && inferenceScopeOf(t.modelId) === 'geographic' ? entry?.prices.geographicPremium?.factor ?? 1 : 1;
      const fromFile = (side: 'input' | 'output') => {
        const key = entry ? `model:${entry.id}:${side}` : undefined;
        if (key !== undefined && key in this.overrides) return this.overrides[key];
        return entry ? entry.prices[side].usd * premium : undefined;
      };
      const input = t.inputPricePer1kTokens ?? fromFile('input');
      const output = t.outputPricePer1kTokens ?? fromFile('output');
      if (input === undefined || output === undefined) {
        throw new Error(`CostPlanner: ${at} ("${t.tierId}"): no price: `
          + (t.modelId === undefined ? 'give modelId or both inputPricePer1kTokens and outputPricePer1kTokens'
            : `modelId "${t.modelId}" is not in the price file (${Object.keys(PRICE_FILE.models).join(', ')}); give inputPricePer1kTokens and outputPricePer1kTokens`));
      }
      nonNegative(`${at}.inputPricePer1kTokens`, input);
      nonNegative(`${at}.outputPricePer1kTokens`, output);
      const last = i === tiers.length - 1;
      return {
        id: t.tierId,
        modelId: t.modelId,
        input,
        output,
        outputTokens: nonNegative(`${at}.outputTokens`, t.outputTokens ?? 300),
        latencyMs: nonNegative(`${at}.latencyMs`, t.latencyMs ?? (last ? LARGEST_TIER_LATENCY : DEFAULT_TIER_LATENCY[Math.min(i, DEFAULT_TIER_LATENCY.length - 1)])),
        prices: entry?.prices,
      };
    });
  }
}

function perCall(t: ResolvedTier, inputTokens: number): number {
  return (inputTokens / 1000) * t.input + (t.outputTokens / 1000) * t.output;
}

/** The phase of `CapacityPlan` nearest to a number of users per day (on a log scale). */
function phaseOf(usersPerDay: number): ScalingPhase {
  if (usersPerDay < 3_163) return ScalingPhase.USERS_1K;
  if (usersPerDay < 31_623) return ScalingPhase.USERS_10K;
  if (usersPerDay < 316_228) return ScalingPhase.USERS_100K;
  return ScalingPhase.USERS_1M;
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

function validateUsers(users: number[]): number[] {
  if (!Array.isArray(users) || users.length === 0) throw new Error('CostPlanner: usersPerDay must hold at least one phase');
  users.forEach((u, i) => positive(`usersPerDay[${i}]`, u));
  if (new Set(users).size !== users.length) throw new Error(`CostPlanner: usersPerDay has a phase twice: ${users.join(', ')}`);
  return [...users].sort((a, b) => a - b);
}

function validateOverrides(overrides: { [key: string]: number }): Record<string, number> {
  for (const [key, usd] of Object.entries(overrides)) {
    const model = /^model:(.+):(input|output)$/.exec(key);
    const known = model ? modelPricesOf(model[1]) !== undefined : PRICE_KEYS.includes(key) || key.startsWith('elasticache.nodeHour.');
    if (!known) {
      throw new Error(`CostPlanner: priceOverrides["${key}"] names no price; use one of ${PRICE_KEYS.join(', ')}, `
        + `elasticache.nodeHour.<nodeType>, or model:<modelId>:input|output for ${Object.keys(PRICE_FILE.models).join(', ')}`);
    }
    nonNegative(`priceOverrides["${key}"]`, usd);
  }
  // Model overrides are keyed by the base model id, whatever profile prefix the key used.
  return Object.fromEntries(Object.entries(overrides).map(([key, usd]) => {
    const model = /^model:(.+):(input|output)$/.exec(key);
    return [model ? `model:${modelPricesOf(model[1])!.id}:${model[2]}` : key, usd];
  }));
}

function nonNegative(prop: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`CostPlanner: ${prop} must be a finite number >= 0; got ${value}`);
  return value;
}

function positive(prop: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new Error(`CostPlanner: ${prop} must be a finite number > 0; got ${value}`);
  return value;
}

function share(prop: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new Error(`CostPlanner: ${prop} must be a share from 0 to 1; got ${value}`);
  return value;
}

function integerAtLeast(prop: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new Error(`CostPlanner: ${prop} must be an integer >= ${min}; got ${value}`);
  return value;
}
