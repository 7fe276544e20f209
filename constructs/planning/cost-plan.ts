/**
 * What the cost planner computes for a trace and a service configuration: the seed's economics
 * table, one row per phase. `npx cdk-scalable-ai plan --json` prints a `CostPlan` as its last line
 * and `--html` draws it; `CostPlanner` (jsii) returns it to Python, Java, .NET and Go users.
 */

/** One line item of a phase's daily bill. */
export interface CostItem {
  /**
   * What is billed: `model:<tier>` for a tier's tokens, else the infrastructure item
   * (`lambda`, `apiGateway`, `elasticache`, `opensearch`, `aurora`, `sqs`, `dynamodb`,
   * `cloudfront`, `cloudwatch`, ...).
   */
  readonly item: string;
  /** USD per day at this phase. */
  readonly costPerDayUsd: number;
}

/** A change to the Bedrock bill the trace could take, and what it would save at this phase. */
export interface BillOption {
  /** `flex`, `priority`, `batchInference`, `promptCaching` or `globalCrossRegion`. */
  readonly option: string;
  /** What the option changes, in one sentence (which tiers or requests it applies to). */
  readonly description: string;
  /** USD per day saved at this phase (negative: it costs more, as Priority does). */
  readonly savingPerDayUsd: number;
}

/** The plan of one phase (a number of users per day). */
export interface PhasePlan {
  readonly usersPerDay: number;
  readonly requestsPerDay: number;
  /** Our total: model tokens plus the infrastructure the constructs provision at this phase. */
  readonly costPerDayUsd: number;
  /** Every request to the largest tier, no cache, the fixed infrastructure of a single-tier deployment. */
  readonly linearCostPerDayUsd: number;
  /** Share of requests answered by each cache level (`static`, `exact`, `semantic`, ...), 0..1. */
  readonly hitRate: { [level: string]: number };
  /** Share of requests served by each model tier (by tier name), 0..1; with hitRate sums to 1. */
  readonly tierShare: { [tier: string]: number };
  /** Mean modelled latency of a request, from the per-level latencies of the configuration. */
  readonly meanLatencyMs: number;
  /** The daily bill by line item; the items sum to costPerDayUsd. */
  readonly costBreakdown: CostItem[];
  /** What each Bedrock bill option would save on this trace at this phase. */
  readonly billOptions: BillOption[];
}

/** The planner's answer. */
export interface CostPlan {
  /** The `asOf` date (YYYY-MM-DD) of the price file the plan used. */
  readonly pricesAsOf: string;
  /** One entry per phase, in ascending usersPerDay. */
  readonly phases: PhasePlan[];
}
