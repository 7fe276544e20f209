/**
 * The layout of bulk (Bedrock batch inference) jobs that the submitter writes and the completion
 * handler reads: record ids and S3 keys. Pure; shared so that both sides agree by construction.
 */
import type { BulkRuntimeConfig, RouterRuntimeConfig, TierRuntimeConfig } from '../../../constructs/contract/runtime-config';
import { idHash } from '../hashing';

/**
 * Record id of item `index`: `R` + the index on 10 digits. Eleven alphanumeric characters, the
 * form of the record ids in Bedrock's documentation; {@link itemIndexOfRecordId} reverses it.
 */
export function recordIdOf(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 9_999_999_999) throw new RangeError(`item index out of range: ${index}`);
  return `R${String(index).padStart(10, '0')}`;
}

/** Item index of a record id written by {@link recordIdOf}; undefined for any other value. */
export function itemIndexOfRecordId(recordId: unknown): number | undefined {
  if (typeof recordId !== 'string') return undefined;
  const m = /^R(\d{10})$/.exec(recordId);
  return m ? Number(m[1]) : undefined;
}

/** Key (without the bucket) of a bulk job's JSONL input. */
export function bulkInputKey(config: Pick<BulkRuntimeConfig, 'inputPrefix'>, tenantId: string, jobId: string): string {
  return `${config.inputPrefix}${idHash(tenantId)}/${jobId}/input.jsonl`;
}

/**
 * Key prefix (without the bucket; ends with `/`) Bedrock writes a bulk job's output under: it adds
 * a folder named after its own job id holding `input.jsonl.out` and `manifest.json.out`.
 */
export function bulkOutputPrefix(config: Pick<BulkRuntimeConfig, 'outputPrefix'>, tenantId: string, jobId: string): string {
  return `${config.outputPrefix}${idHash(tenantId)}/${jobId}/`;
}

/**
 * The tier that runs bulk jobs: the router tier named by `config.tierId`, which must be a Bedrock
 * tier with a model id (batch inference exists for Bedrock models only).
 *
 * @throws Error when the configuration names no such tier.
 */
export function bulkTier(config: Pick<BulkRuntimeConfig, 'tierId'>, routerConfig: Pick<RouterRuntimeConfig, 'tiers'>): TierRuntimeConfig {
  const tier = routerConfig.tiers.find((t) => t.id === config.tierId);
  if (!tier) {
    throw new Error(`Bulk mode: tier "${config.tierId}" is not a tier of the router (tiers: ${routerConfig.tiers.map((t) => t.id).join(', ')})`);
  }
  if (tier.provider !== 'bedrock' || !tier.modelId) {
    throw new Error(`Bulk mode: tier "${tier.id}" is a ${tier.provider} tier; Bedrock batch inference needs a Bedrock tier with a modelId`);
  }
  return tier;
}
