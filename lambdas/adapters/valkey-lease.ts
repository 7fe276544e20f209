import type Valkey from 'iovalkey';
import type { CircuitBreaker } from '../core/circuit-breaker';
import type { LeaseStore } from '../core/coalescing';

/**
 * Leases of request coalescing on the cache server: `SET key token NX PX ttl` takes one; a script
 * compares and deletes in one step to give it back, so a holder whose lease expired (and was
 * taken by another request meanwhile) never releases the new holder's lease.
 */
export class ValkeyLeaseStore implements LeaseStore {
  constructor(
    private readonly client: Valkey,
    /** The router's breaker of the exact level (leases live on the same server). */
    readonly breaker?: CircuitBreaker,
  ) {}

  async acquire(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.client.set(key, token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async release(key: string, token: string): Promise<boolean> {
    return (await this.client.eval(RELEASE_SCRIPT, 1, key, token)) === 1;
  }
}

/** Deletes KEYS[1] only while it holds ARGV[1] (the holder's token). */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
