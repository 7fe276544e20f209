/**
 * Rotation of the origin secret (the value CloudFront adds to every origin request in
 * `x-origin-verify`), in Secrets Manager's four steps. Each step is idempotent: Secrets Manager
 * retries a step that failed or timed out, and a step done twice changes nothing the second time.
 *
 * Routers accept AWSCURRENT, AWSPENDING and AWSPREVIOUS, so requests keep passing while
 * CloudFront deploys the new value: before setSecret the edge sends CURRENT; between setSecret and
 * the end of CloudFront's deployment some edge locations send PENDING, others CURRENT; after
 * finishSecret they are PREVIOUS and CURRENT.
 */
import { ORIGIN_SECRET_HEADER } from '../../constructs/contract/edge';

export type RotationStep = 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
export const ROTATION_STEPS: readonly RotationStep[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

/** Length of a new secret value: letters and digits only (header-safe), well over 256 bits. */
export const ORIGIN_SECRET_LENGTH = 64;

/** The calls of the rotation on Secrets Manager (see adapters in the handler). */
export interface RotationSecrets {
  /** Version ids and their stages, and whether rotation is on. */
  describe(secretId: string): Promise<{ rotationEnabled: boolean; versions: Record<string, string[]> }>;
  /** The value of a version by id and stage, or by stage only; undefined when no version matches. */
  value(secretId: string, select: { versionId?: string; stage: string }): Promise<string | undefined>;
  randomValue(length: number): Promise<string>;
  /** Stores `value` as version `versionId` with stage AWSPENDING. */
  putPending(secretId: string, versionId: string, value: string): Promise<void>;
  /** Moves AWSCURRENT to `versionId` from `fromVersionId` (AWSPREVIOUS follows the old one). */
  promote(secretId: string, versionId: string, fromVersionId: string): Promise<void>;
}

/** One origin of a distribution, by id, and its custom headers. */
export interface OriginHeaders {
  readonly originId: string;
  readonly headers: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

/** The calls of the rotation on CloudFront. */
export interface RotationDistribution {
  /** The origins of the distribution and their custom headers. */
  origins(distributionId: string): Promise<OriginHeaders[]>;
  /**
   * Sets `header` to `value` on every origin (updating the distribution with its ETag, so a
   * concurrent change makes the call fail rather than be lost); false when nothing needed to change.
   */
  setOriginHeader(distributionId: string, header: string, value: string): Promise<boolean>;
}

export interface RotationEvent {
  readonly SecretId: string;
  readonly ClientRequestToken: string;
  readonly Step: string;
}

export interface RotationDeps {
  readonly secrets: RotationSecrets;
  readonly distribution: RotationDistribution;
  readonly distributionId: string;
  readonly logger?: { info(message: string, attributes?: Record<string, unknown>): void };
}

/** Runs one step of a rotation. Throws when the step cannot be done (Secrets Manager retries it). */
export async function rotateOriginSecret(event: RotationEvent, deps: RotationDeps): Promise<void> {
  const { SecretId: secretId, ClientRequestToken: token } = event;
  const step = ROTATION_STEPS.find((s) => s === event.Step);
  if (!step) throw new Error(`Unknown rotation step "${event.Step}"`);
  const described = await deps.secrets.describe(secretId);
  if (!described.rotationEnabled) throw new Error(`Rotation is not enabled on the secret ${secretId}`);
  const stages = described.versions[token];
  if (!stages) throw new Error(`Version ${token} is not a version of the secret ${secretId}`);
  if (stages.includes('AWSCURRENT')) {
    // Done already (a retry of finishSecret, or a rotation that already finished).
    deps.logger?.info('origin secret version already current', { step, versionId: token });
    return;
  }
  if (!stages.includes('AWSPENDING')) throw new Error(`Version ${token} of the secret ${secretId} is not AWSPENDING`);

  switch (step) {
    case 'createSecret': {
      if ((await deps.secrets.value(secretId, { stage: 'AWSCURRENT' })) === undefined) {
        throw new Error(`The secret ${secretId} has no AWSCURRENT value`);
      }
      if ((await deps.secrets.value(secretId, { versionId: token, stage: 'AWSPENDING' })) !== undefined) return;
      await deps.secrets.putPending(secretId, token, await deps.secrets.randomValue(ORIGIN_SECRET_LENGTH));
      deps.logger?.info('origin secret: new pending value created', { versionId: token });
      return;
    }
    case 'setSecret': {
      const pending = await pendingValue(deps.secrets, secretId, token);
      const changed = await deps.distribution.setOriginHeader(deps.distributionId, ORIGIN_SECRET_HEADER, pending);
      deps.logger?.info(changed ? 'origin secret: distribution updated' : 'origin secret: distribution already sends the pending value', {
        distributionId: deps.distributionId, versionId: token,
      });
      return;
    }
    case 'testSecret': {
      const pending = await pendingValue(deps.secrets, secretId, token);
      const origins = await deps.distribution.origins(deps.distributionId);
      const stale = origins.filter((o) => !o.headers.some((h) => h.name.toLowerCase() === ORIGIN_SECRET_HEADER && h.value === pending));
      if (origins.length === 0 || stale.length > 0) {
        throw new Error(`Origins of distribution ${deps.distributionId} without the pending ${ORIGIN_SECRET_HEADER}: `
          + `${origins.length === 0 ? '(the distribution has no origin)' : stale.map((o) => o.originId).join(', ')}`);
      }
      return;
    }
    case 'finishSecret': {
      const current = Object.entries(described.versions).find(([, s]) => s.includes('AWSCURRENT'))?.[0];
      if (!current) throw new Error(`The secret ${secretId} has no AWSCURRENT version`);
      await deps.secrets.promote(secretId, token, current);
      deps.logger?.info('origin secret: pending value is current', { versionId: token, previousVersionId: current });
      return;
    }
  }
}

async function pendingValue(secrets: RotationSecrets, secretId: string, token: string): Promise<string> {
  const value = await secrets.value(secretId, { versionId: token, stage: 'AWSPENDING' });
  if (value === undefined || value.length === 0) throw new Error(`Version ${token} of the secret ${secretId} has no pending value`);
  return value;
}
