import type Valkey from 'iovalkey';
import { SsmQuotaOverrides, type SsmQuotaOverridesOptions } from './ssm-quota-overrides';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { CircuitBreaker } from '../core/circuit-breaker';
import { QuotaGate, type QuotaCounter, type QuotaStore } from '../core/quota';

/**
 * The quota counters in Valkey: plain integer keys with a TTL, checked and incremented in one
 * Lua script (atomic: two containers cannot both take the last request of a window).
 */
export class ValkeyQuotaStore implements QuotaStore {
  constructor(private readonly client: Valkey) {}

  async admit(counters: readonly QuotaCounter[]): Promise<number> {
    const args = counters.flatMap((c) => [c.increment, c.refuseAt, Math.max(1, Math.ceil(c.ttlMs))]);
    const refused = await this.client.eval(ADMIT_SCRIPT, counters.length, ...counters.map((c) => c.key), ...args);
    return Number(refused);
  }

  async charge(counters: ReadonlyArray<Pick<QuotaCounter, 'key' | 'ttlMs'>>, amount: number): Promise<void> {
    const tx = this.client.multi();
    for (const c of counters) tx.incrby(c.key, amount).pexpire(c.key, Math.max(1, Math.ceil(c.ttlMs)));
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('the quota charge was not executed');
  }
}

/**
 * KEYS: the counters. ARGV: per counter, its increment, the value at which it refuses, its TTL
 * in milliseconds. Returns the 0-based index of the first counter that refuses (nothing written),
 * or -1 after incrementing every counter (a new key gets its TTL).
 */
const ADMIT_SCRIPT = `
for i = 1, #KEYS do
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current + tonumber(ARGV[3 * i - 2]) >= tonumber(ARGV[3 * i - 1]) then return i - 1 end
end
for i = 1, #KEYS do
  local increment = tonumber(ARGV[3 * i - 2])
  if increment > 0 then
    if redis.call('INCRBY', KEYS[i], increment) == increment then redis.call('PEXPIRE', KEYS[i], ARGV[3 * i]) end
  end
end
return -1
`;

/**
 * The quota gate of a router container, per state of its cache connection (with it, or without:
 * then the fail mode applies), sharing one overrides reader and one breaker; undefined without
 * quotas or without a cache to count in.
 */
export function quotaGates(
  config: RouterRuntimeConfig,
  breaker: CircuitBreaker,
  logger?: SsmQuotaOverridesOptions['logger'],
): ((valkey: Valkey | undefined) => QuotaGate) | undefined {
  const quotas = config.quotas;
  const cache = config.cache;
  if (!quotas || !cache) return undefined;
  const overrides = quotas.overridesParameter
    ? new SsmQuotaOverrides(quotas.overridesParameter, { ttlSeconds: quotas.overridesTtlSeconds, logger })
    : undefined;
  const gateConfig = { ...quotas, keyPrefix: cache.keyPrefix, timeoutMs: cache.timeoutMs };
  return (valkey) => new QuotaGate(valkey ? new ValkeyQuotaStore(valkey) : undefined, gateConfig, { overrides, breaker });
}
