/**
 * The price file of the cost planner: AWS public on-demand prices in us-east-1, each with the page
 * it was read from and the date of that reading. A TypeScript data module rather than a JSON file,
 * so it compiles into lib/ with the planner and every jsii language reads it through `CostPlanner`.
 *
 * Rules of this file:
 * - Never an invented price. A price that could not be found is left out and listed in `missing`
 *   with the reason; the planner charges nothing for it and says so.
 * - `source` is the page the number was read from. Where the AWS page renders its prices in the
 *   browser (Bedrock, Lambda, ElastiCache and others do), the number was read from a copy that
 *   quotes the AWS page, named in `note`; the AWS page stays the `source` to check against.
 * - `asOf` is the date of the reading: the page's own date when it shows one, else 2026-12-07 (or
 *   2026-12-08, for the entries read again then). The file's `asOf` is the latest of them.
 * - Users override any price with `CostPlannerProps.priceOverrides` (keys: see `PRICE_KEYS`).
 *
 * Internal: not exported from the package root (the planner's API is `CostPlanner`).
 */

/** One price, where it comes from and when it was read. */
export interface Price {
  /** USD per `unit`. */
  readonly usd: number;
  readonly unit: string;
  /** The page the price was read from. */
  readonly source: string;
  /** YYYY-MM-DD: when the price was read (or the page's own date). */
  readonly asOf: string;
  /** Where the number was read, when it was not the AWS page itself. */
  readonly note?: string;
}

/** A multiplier of a model's input or output price (batch inference, service tiers, prompt caching). */
export interface Factor {
  readonly factor: number;
  readonly source: string;
  readonly asOf: string;
  readonly note?: string;
}

/** Bedrock prices of one model, USD per 1,000 tokens, on-demand Standard tier. */
export interface ModelPrices {
  readonly name: string;
  readonly input: Price;
  readonly output: Price;
  /** Batch inference, as a multiple of the on-demand prices. */
  readonly batch?: Factor;
  /** The Flex service tier, as a multiple of Standard (absent: not priced for this model). */
  readonly flex?: Factor;
  /** The Priority service tier, as a multiple of Standard (absent: not priced for this model). */
  readonly priority?: Factor;
  /** Prompt cache writes, as a multiple of the input price (absent: charged as input). */
  readonly cacheWrite?: Factor;
  /** Prompt cache reads, as a multiple of the input price (absent: no prompt caching). */
  readonly cacheRead?: Factor;
  /** Fewest tokens a prompt prefix needs before a cache checkpoint takes. */
  readonly minCacheTokens?: { readonly tokens: number; readonly source: string; readonly asOf: string; readonly note?: string };
  /**
   * Geographic cross-region profiles (`us.`, `eu.`, `apac.`) as a multiple of the global profile's
   * prices, which `input` and `output` are (absent: no global profile priced below geographic).
   */
  readonly geographicPremium?: Factor;
}

export interface PriceFile {
  readonly asOf: string;
  readonly region: string;
  readonly currency: string;
  readonly models: { readonly [modelId: string]: ModelPrices };
  /** Bedrock embedding models, USD per 1,000 input tokens, on-demand. */
  readonly embeddings: { readonly [modelId: string]: Price };
  /** Infrastructure prices by key (see `PRICE_KEYS`). */
  readonly infrastructure: { readonly [key: string]: Price };
  /** What the planner would need but could not find a price for, and why. */
  readonly missing: ReadonlyArray<{ readonly item: string; readonly reason: string }>;
}

const AS_OF = '2026-12-07';
/** The date of this update's readings (the Lambda request price, Titan, the service tiers): the file's `asOf`. */
const REREAD = '2026-12-08';
const BEDROCK_PRICING = 'https://aws.amazon.com/bedrock/pricing/';
/** The AWS Price List Bulk API offer file of Amazon Bedrock in us-east-1 (machine-readable, official). */
const BEDROCK_PRICE_LIST = 'https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonBedrock/current/us-east-1/index.json';
const PRICE_LIST_ASOF = '2026-09-01';
const PRICE_LIST_NOTE = 'Price List publication 2026-09-01T20:50:51Z, as transcribed in github.com/api-evangelist/amazon-nova plans/amazon-nova-plans-pricing.yml';
const PROMPT_CACHING_DOC = 'https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html';
const GLOBAL_CRIS_DOC = 'https://docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html';
/** The Bedrock User Guide page on service tiers: the request field, and which models and Regions offer Flex and Priority. */
const SERVICE_TIERS_DOC = 'https://docs.aws.amazon.com/bedrock/latest/userguide/service-tiers-inference.html';
/** The id of Amazon Titan Text Embeddings V2, the semantic cache's default embedder. */
export const TITAN_EMBED_TEXT_V2 = 'amazon.titan-embed-text-v2:0';
const BATCH_NOTE = 'the Bedrock pricing page states batch inference at a 50% lower price than on-demand (page text captured 2026-10-07 in github.com/api-evangelist/amazon-bedrock)';

const perK = (usd: number, source: string, asOf: string, note?: string): Price => ({ usd, unit: '1K tokens', source, asOf, note });
const batchHalf: Factor = { factor: 0.5, source: BEDROCK_PRICING, asOf: '2026-10-07', note: BATCH_NOTE };
// Flex and Priority of Nova Pro in the Price List are exactly 0.5x and 1.75x its Standard prices
// (input_tokens_flex 0.0004, input_tokens_priority 0.0014 against 0.0008, and the same for output).
const TIER_NOTE = `${PRICE_LIST_NOTE}; the request field and the models offering each tier: ${SERVICE_TIERS_DOC}`;
const flexHalf: Factor = { factor: 0.5, source: BEDROCK_PRICE_LIST, asOf: PRICE_LIST_ASOF, note: TIER_NOTE };
const priority175: Factor = { factor: 1.75, source: BEDROCK_PRICE_LIST, asOf: PRICE_LIST_ASOF, note: TIER_NOTE };
const novaCacheRead: Factor = {
  factor: 0.25,
  source: BEDROCK_PRICING,
  asOf: '2026-10-07',
  note: 'the Bedrock pricing page states cache read tokens at 75% less than input tokens for Amazon Nova (page text captured 2026-10-07 in github.com/api-evangelist/amazon-bedrock)',
};
const novaMinCache = {
  tokens: 1000,
  source: PROMPT_CACHING_DOC,
  asOf: AS_OF,
  note: 'supported-models table of the AWS page (Nova Micro, Lite, Pro: 1,000 tokens per checkpoint), as reproduced in portkey.ai/docs/integrations/llms/bedrock/prompt-caching',
};
const SONNET_NOTE = 'the AWS page renders prices in the browser; $3 input / $15 output per 1M tokens (global), cache write 1.25x and read 0.1x input, '
  + 'regional 10% above global, read from clauder-navi.com/en/bedrock-claude-cost and crazyrouter.com/en/blog/claude-sonnet-4-5-pricing';

export const PRICE_FILE: PriceFile = {
  asOf: REREAD,
  region: 'us-east-1',
  currency: 'USD',
  models: {
    'amazon.nova-micro-v1:0': {
      name: 'Amazon Nova Micro',
      input: perK(0.000035, BEDROCK_PRICE_LIST, PRICE_LIST_ASOF, PRICE_LIST_NOTE),
      output: perK(0.00014, BEDROCK_PRICE_LIST, PRICE_LIST_ASOF, PRICE_LIST_NOTE),
      batch: batchHalf,
      cacheRead: novaCacheRead,
      minCacheTokens: novaMinCache,
    },
    'amazon.nova-lite-v1:0': {
      name: 'Amazon Nova Lite',
      input: perK(0.00006, BEDROCK_PRICE_LIST, PRICE_LIST_ASOF, PRICE_LIST_NOTE),
      output: perK(0.00024, BEDROCK_PRICE_LIST, PRICE_LIST_ASOF, PRICE_LIST_NOTE),
      batch: batchHalf,
      cacheRead: novaCacheRead,
      minCacheTokens: novaMinCache,
    },
    'amazon.nova-pro-v1:0': {
      name: 'Amazon Nova Pro',
      input: perK(0.0008, BEDROCK_PRICE_LIST, PRICE_LIST_ASOF, PRICE_LIST_NOTE),
      output: perK(0.0032, BEDROCK_PRICE_LIST, PRICE_LIST_ASOF, PRICE_LIST_NOTE),
      batch: batchHalf,
      flex: flexHalf,
      priority: priority175,
      cacheRead: novaCacheRead,
      minCacheTokens: novaMinCache,
    },
    'amazon.nova-2-lite-v1:0': {
      name: 'Amazon Nova 2 Lite',
      input: perK(0.00033, BEDROCK_PRICE_LIST, PRICE_LIST_ASOF, PRICE_LIST_NOTE),
      output: perK(0.00275, BEDROCK_PRICE_LIST, PRICE_LIST_ASOF, PRICE_LIST_NOTE),
      // Price List: input_tokens_flex 0.000165 and output_tokens_flex 0.001375, half of Standard.
      flex: flexHalf,
    },
    'anthropic.claude-sonnet-4-5-20250929-v1:0': {
      name: 'Anthropic Claude Sonnet 4.5',
      input: perK(0.003, BEDROCK_PRICING, AS_OF, SONNET_NOTE),
      output: perK(0.015, BEDROCK_PRICING, AS_OF, SONNET_NOTE),
      batch: batchHalf,
      cacheWrite: { factor: 1.25, source: BEDROCK_PRICING, asOf: AS_OF, note: SONNET_NOTE },
      cacheRead: { factor: 0.1, source: BEDROCK_PRICING, asOf: AS_OF, note: SONNET_NOTE },
      minCacheTokens: {
        tokens: 1024,
        source: PROMPT_CACHING_DOC,
        asOf: AS_OF,
        note: 'the AWS page gives 1,024 tokens per checkpoint for Claude Sonnet models; for Sonnet 4.5 as listed in docs.nano-gpt.com and docs.orq.ai prompt-caching tables',
      },
      geographicPremium: {
        factor: 1.1,
        source: GLOBAL_CRIS_DOC,
        asOf: AS_OF,
        note: 'the AWS page: global cross-Region inference for Claude Sonnet 4.5 saves about 10% on input and output token prices against geographic profiles',
      },
    },
  },
  embeddings: {
    [TITAN_EMBED_TEXT_V2]: {
      usd: 0.00002,
      unit: '1K input tokens',
      source: BEDROCK_PRICING,
      asOf: REREAD,
      note: 'THIRD-PARTY: no AWS page with the number was found (the Bedrock pricing page renders it in the browser, and the Price List '
        + 'transcription read here covers Nova only); $0.02 per 1M tokens as openrouter.ai/amazon/titan-embed-text-v2 lists Amazon Bedrock '
        + '(passed through without markup). Check it against the AWS page.',
    },
  },
  infrastructure: {
    'lambda.requestsPerMillion': {
      usd: 0.2,
      unit: '1M requests',
      source: 'https://aws.amazon.com/lambda/pricing/',
      asOf: REREAD,
      note: 'the AWS page\'s own worked example (US East (N. Virginia)): "The monthly request price is $0.20 per 1 million requests"',
    },
    'lambda.armGbSecond': {
      usd: 0.0000133334,
      unit: 'GB-second (Arm, first 7.5B GB-s/month)',
      source: 'https://aws.amazon.com/lambda/pricing/',
      asOf: AS_OF,
      note: 'read from cloudchipr.com/blog/aws-lambda-pricing (US East prices of the AWS page)',
    },
    'apiGateway.httpRequestsPerMillion': {
      usd: 1.0,
      unit: '1M HTTP API requests (first 300M/month)',
      source: 'https://aws.amazon.com/api-gateway/pricing/',
      asOf: AS_OF,
      note: 'read from learnaws.org/2021/01/10/api-gateway-pricing and apigatewaycost.com/aws (US East prices of the AWS page)',
    },
    'elasticache.nodeHour.cache.t4g.medium': {
      usd: 0.052,
      unit: 'node-hour (Valkey, on-demand)',
      source: 'https://aws.amazon.com/elasticache/pricing/',
      asOf: AS_OF,
      note: 'Redis OSS on-demand $0.065/hour (price tables quoting the AWS page in public cost tools) less the 20% of node-based Valkey '
        + '(aws.amazon.com/elasticache/faqs: "up to 20% lower cost per node")',
    },
    'vpc.interfaceEndpointHour': {
      usd: 0.01,
      unit: 'endpoint-hour per Availability Zone',
      source: 'https://aws.amazon.com/privatelink/pricing/',
      asOf: AS_OF,
      note: 'read from awsnegotiations.com/privatelink-cost-analysis.html (the AWS page text shows no numbers in its stored copy)',
    },
    'vpc.interfaceEndpointGb': {
      usd: 0.01, unit: 'GB processed (first 1 PB/month)', source: 'https://aws.amazon.com/privatelink/pricing/', asOf: AS_OF,
    },
    'opensearchServerless.ocuHour': {
      usd: 0.24,
      unit: 'OCU-hour',
      source: 'https://aws.amazon.com/opensearch-service/pricing/',
      asOf: AS_OF,
      note: 'read from awsnegotiations.com/opensearch-serverless-cost and c3x.dev (US East)',
    },
    'aurora.serverlessV2AcuHour': {
      usd: 0.12,
      unit: 'ACU-hour',
      source: 'https://aws.amazon.com/rds/aurora/pricing/',
      asOf: AS_OF,
      note: 'read from c3x.dev/blog/aws-aurora-serverless-v2-cost and awsnegotiations.com (us-east-1)',
    },
    'sqs.standardRequestsPerMillion': {
      usd: 0.4,
      unit: '1M requests (64 KB chunks)',
      source: 'https://aws.amazon.com/sqs/pricing/',
      asOf: AS_OF,
      note: 'read from cloudburn.io/blog/amazon-sqs-pricing (US East, March 2026)',
    },
    'dynamodb.writeRequestsPerMillion': {
      usd: 0.625,
      unit: '1M write request units (on-demand)',
      source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
      asOf: AS_OF,
      note: 'read from airbyte.com/data-engineering-resources/dynamodb-pricing (US East, after the November 2024 reduction)',
    },
    'dynamodb.readRequestsPerMillion': {
      usd: 0.125,
      unit: '1M read request units (on-demand)',
      source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
      asOf: AS_OF,
      note: 'read from airbyte.com/data-engineering-resources/dynamodb-pricing (US East, after the November 2024 reduction)',
    },
    'cloudfront.dataTransferGb': {
      usd: 0.085, unit: 'GB to the internet (United States, first 10 TB/month)', source: 'https://aws.amazon.com/cloudfront/pricing/', asOf: AS_OF,
    },
    'waf.webAclMonth': {
      usd: 5, unit: 'web ACL-month', source: 'https://aws.amazon.com/waf/pricing/', asOf: AS_OF, note: 'read from c3x.dev/blog/aws-waf-cost-explained',
    },
    'waf.ruleMonth': {
      usd: 1, unit: 'rule-month', source: 'https://aws.amazon.com/waf/pricing/', asOf: AS_OF, note: 'read from c3x.dev/blog/aws-waf-cost-explained',
    },
    'waf.requestsPerMillion': {
      usd: 0.6, unit: '1M requests inspected', source: 'https://aws.amazon.com/waf/pricing/', asOf: AS_OF, note: 'read from c3x.dev/blog/aws-waf-cost-explained',
    },
    'cloudwatch.customMetricMonth': {
      usd: 0.3,
      unit: 'metric-month (first 10,000)',
      source: 'https://aws.amazon.com/cloudwatch/pricing/',
      asOf: AS_OF,
      note: 'read from signoz.io/guides/cloudwatch-pricing (US East)',
    },
    'cloudwatch.logsIngestionGb': {
      usd: 0.5,
      unit: 'GB ingested (standard logs)',
      source: 'https://aws.amazon.com/cloudwatch/pricing/',
      asOf: AS_OF,
      note: 'read from factualminds.com/blog/amazon-cloudwatch-pricing-metrics-logs-alarms-dashboards (US East)',
    },
    'cloudwatch.dashboardMonth': {
      usd: 3,
      unit: 'dashboard-month',
      source: 'https://aws.amazon.com/cloudwatch/pricing/',
      asOf: AS_OF,
      note: 'read from factualminds.com/blog/amazon-cloudwatch-pricing-metrics-logs-alarms-dashboards (US East)',
    },
  },
  missing: [
    {
      item: 'Flex and Priority for Nova Micro, Nova Lite and Claude Sonnet 4.5',
      reason: 'the Price List lists Flex/Priority only for Nova Pro and Nova 2 Lite (Flex), and the service tiers page of the Bedrock User Guide '
        + 'does not list these models; the planner shows no saving for tiers without them, and ModelTier.bedrock() needs flexPriceFactor / '
        + 'priorityPriceFactor to call them at Flex or Priority',
    },
    {
      item: 'Flex and Priority of the other models that offer them (OpenAI gpt-oss, DeepSeek, Qwen3 and others on the service tiers page)',
      reason: 'not in the Price List transcription read here; not in this file, so give their factors to ModelTier.bedrock()',
    },
    { item: 'Prompt cache writes of Amazon Nova', reason: 'no write price was found; the planner charges Nova cache writes at the input price' },
    { item: 'Lambda provisioned concurrency', reason: 'its Arm price per GB-s was not found; the router\'s provisioned concurrency (CapacityPlan) is not charged' },
    { item: 'RDS Proxy', reason: 'its price per ACU-hour was not found; the proxy of ReadReplicaDatabase is not charged' },
    { item: 'Aurora storage and I/O', reason: 'prices found only approximately ("about $0.10/GB-month"); not charged' },
    { item: 'CloudWatch alarms', reason: 'the standard alarm price was not found on a page read here; AiMonitoring\'s alarms are not charged' },
    { item: 'CloudFront HTTPS requests', reason: 'the per-10,000-requests price was not in the stored copy of the page; only data transfer is charged' },
    { item: 'Secrets Manager and KMS', reason: 'not looked up; the cache AUTH secret and customer-managed keys (optional) are not charged' },
    { item: 'OpenSearch Serverless storage, ElastiCache backups, data transfer between AZs', reason: 'not looked up; small at these phases' },
  ],
};

/** The infrastructure price keys `priceOverrides` accepts, besides `model:<modelId>:input|output`. */
export const PRICE_KEYS: readonly string[] = [...Object.keys(PRICE_FILE.infrastructure), 'embeddings.per1kTokens'];

/**
 * The price-file entry of a Bedrock model id or inference profile id: `us.amazon.nova-micro-v1:0`,
 * `global.anthropic...` and an ARN ending in either resolve to the base model.
 */
export function modelPricesOf(modelId: string): { readonly id: string; readonly prices: ModelPrices } | undefined {
  const tail = modelId.split('/').pop()!;
  const base = tail.replace(/^(us|eu|apac|us-gov|jp|au|ca|global)\./, '');
  const prices = PRICE_FILE.models[base];
  return prices ? { id: base, prices } : undefined;
}

/**
 * The on-demand (Standard) prices of a Bedrock model id or inference profile id, USD per 1,000
 * tokens, from the price file: a geographic profile (`us.`, `eu.`...) at the model's geographic
 * premium over the global price where the file has one. Undefined for a model it does not price.
 */
export function onDemandPricesOf(modelId: string): { readonly inputPer1k: number; readonly outputPer1k: number } | undefined {
  const entry = modelPricesOf(modelId);
  if (!entry) return undefined;
  const premium = inferenceScopeOf(modelId) === 'geographic' ? entry.prices.geographicPremium?.factor ?? 1 : 1;
  // 12 significant digits: 0.003 x 1.1 is 0.0033, not 0.0033000000000000004.
  const at = (usd: number) => Number((usd * premium).toPrecision(12));
  return { inputPer1k: at(entry.prices.input.usd), outputPer1k: at(entry.prices.output.usd) };
}

/** `global`, `geographic` or `in-region`: which kind of inference a model id names. */
export function inferenceScopeOf(modelId: string): 'global' | 'geographic' | 'in-region' {
  const tail = modelId.split('/').pop()!;
  if (tail.startsWith('global.')) return 'global';
  return /^(us|eu|apac|us-gov|jp|au|ca)\./.test(tail) ? 'geographic' : 'in-region';
}
