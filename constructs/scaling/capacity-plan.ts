/** A phase of growth, by users per day (SEED.md's phases). */
export enum ScalingPhase {
  /** About 1,000 users per day: idle most of the time. */
  USERS_1K = 'users-1k',
  /** About 10,000 users per day. */
  USERS_10K = 'users-10k',
  /** About 100,000 users per day: steady traffic all day. */
  USERS_100K = 'users-100k',
  /** About 1,000,000 users per day. */
  USERS_1M = 'users-1m',
}

/**
 * Recommended capacity bounds of one phase: starting points to give the constructs, to be
 * adjusted with the dashboard's utilization metrics.
 */
export interface PhaseCapacity {
  /** The phase. */
  readonly phase: ScalingPhase;
  /** Aurora Serverless v2 minimum ACU (`serverlessV2MinCapacity`); 0 pauses the cluster when idle. */
  readonly auroraMinAcu: number;
  /** Aurora Serverless v2 maximum ACU (`serverlessV2MaxCapacity`). */
  readonly auroraMaxAcu: number;
  /** Fewest SageMaker instances (or inference component copies): 0 means scale to zero with an inference component. */
  readonly sageMakerMinInstances: number;
  /** Most SageMaker instances. */
  readonly sageMakerMaxInstances: number;
  /** Router provisioned concurrency minimum; 0 means none (on-demand only). */
  readonly routerProvisionedConcurrencyMin: number;
  /** Router provisioned concurrency maximum; 0 means none. */
  readonly routerProvisionedConcurrencyMax: number;
}

/**
 * Capacity bounds per phase, sized from the request rate a phase brings (about 10 requests per
 * user per day, peaks at 8x the daily average, 2 s per model answer, half the requests answered
 * by a cache): 1K users/day is ~0.1 requests/s on average, 1M users/day ~115/s. The README's
 * auto scaling section gives what each bound costs.
 */
export class CapacityPlan {
  /** The recommended bounds of `phase`. */
  public static forPhase(phase: ScalingPhase): PhaseCapacity {
    const plan = PLANS[phase];
    if (!plan) throw new Error(`CapacityPlan.forPhase: unknown phase "${phase}" (one of ${Object.keys(PLANS).join(', ')})`);
    return { phase, ...plan };
  }

  private constructor() {}
}

const PLANS: Record<ScalingPhase, Omit<PhaseCapacity, 'phase'>> = {
  // Idle most hours: the database pauses and the SageMaker tier scales to zero; cold starts are cheaper than idle capacity.
  [ScalingPhase.USERS_1K]: {
    auroraMinAcu: 0,
    auroraMaxAcu: 2,
    sageMakerMinInstances: 0,
    sageMakerMaxInstances: 1,
    routerProvisionedConcurrencyMin: 0,
    routerProvisionedConcurrencyMax: 0,
  },
  // Some traffic most hours, with quiet nights: a small warm floor, no provisioned concurrency yet.
  [ScalingPhase.USERS_10K]: {
    auroraMinAcu: 0.5,
    auroraMaxAcu: 4,
    sageMakerMinInstances: 0,
    sageMakerMaxInstances: 2,
    routerProvisionedConcurrencyMin: 0,
    routerProvisionedConcurrencyMax: 0,
  },
  // Steady: ~12 requests/s average, ~90 at peak, ~50 concurrent router executions at peak.
  [ScalingPhase.USERS_100K]: {
    auroraMinAcu: 1,
    auroraMaxAcu: 16,
    sageMakerMinInstances: 1,
    sageMakerMaxInstances: 4,
    routerProvisionedConcurrencyMin: 5,
    routerProvisionedConcurrencyMax: 50,
  },
  // ~115 requests/s average, ~900 at peak: the router's own cold starts matter at this scale.
  [ScalingPhase.USERS_1M]: {
    auroraMinAcu: 2,
    auroraMaxAcu: 64,
    sageMakerMinInstances: 2,
    sageMakerMaxInstances: 12,
    routerProvisionedConcurrencyMin: 50,
    routerProvisionedConcurrencyMax: 500,
  },
};
