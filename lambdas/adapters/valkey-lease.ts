import type Valkey from 'iovalkey';
import type { CircuitBreaker } from '../core/circuit-breaker';
import type { LeaseState, LeaseStore } from '../core/coalescing';

/**
 * Leases of request coalescing on the cache server. One script reads the lease and takes it when
 * it is free (so a waiter also learns that the holder's answer was not cached); another compares
 * the token and deletes (or turns the lease into the not-cached marker) in one step, so a holder
 * whose lease expired (and was taken by another request meanwhile) never touches the new one.
 */
export class ValkeyLeaseStore implements LeaseStore {
  constructor(
    private readonly client: Valkey,
    /** The router's breaker of the exact level (leases live on the same server). */
    readonly breaker?: CircuitBreaker,
  ) {}

  async acquire(key: string, token: string, ttlMs: number): Promise<LeaseState> {
    const held = await this.client.eval(ACQUIRE_SCRIPT, 1, key, token, String(ttlMs));
    if (held === null) return 'taken';
    return held === NOT_CACHED ? 'uncached' : 'held';
  }

  async release(key: string, token: string, uncachedForMs?: number): Promise<boolean> {
    return (await this.client.eval(RELEASE_SCRIPT, 1, key, token, String(uncachedForMs ?? 0), NOT_CACHED)) === 1;
  }
}

/** The value of a released lease whose holder's answer is not cached (no token looks like it). */
const NOT_CACHED = '!not-cached';

/** Returns the value of KEYS[1]; when there is none, sets it to ARGV[1] for ARGV[2] ms and returns nil. */
const ACQUIRE_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`;

/**
 * While KEYS[1] holds ARGV[1] (the holder's token): deletes it, or with ARGV[2] > 0 ms replaces it
 * by ARGV[3] (the not-cached marker) for that long.
 */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2]) return 1 end
return redis.call('DEL', KEYS[1])
`;
