import type Valkey from 'iovalkey';
import type { CircuitBreaker } from '../core/circuit-breaker';
import type { ServingRecord, ServingRecordStore, Verdict } from '../core/feedback';

/**
 * Reads the record and records the first verdict, in one atomic step: `false` (a nil reply) when
 * there is no record; else the record and the verdict it already had (`''`: none, this one is
 * recorded). HSET on an existing hash keeps its TTL, and the script never creates a key.
 */
const CLAIM_SCRIPT = `
local record = redis.call('HGET', KEYS[1], 'r')
if not record then return false end
local previous = redis.call('HGET', KEYS[1], 'v')
if not previous then redis.call('HSET', KEYS[1], 'v', ARGV[1]) end
return {record, previous or ''}
`;

/**
 * Serving records on the response cache: one HASH per answer at the key `servingRecordKey` makes
 * (`<prefix>fb:<tenant hash>:<hash>`), field `r` the record (JSON) and `v` the verdict once given,
 * with the feedback window as its TTL. `MEMORY USAGE` on Redis 7: 560 bytes for a model answer or
 * an exact hit, 688 for a semantic hit; static answers less.
 */
export class ValkeyServingRecords implements ServingRecordStore {
  constructor(
    private readonly client: Valkey,
    /** The router's breaker of the feedback level (record writes). */
    readonly breaker?: CircuitBreaker,
  ) {}

  async put(key: string, record: ServingRecord, ttlSeconds: number): Promise<void> {
    const results = await this.client.multi().hset(key, 'r', JSON.stringify(record)).expire(key, Math.max(1, Math.ceil(ttlSeconds))).exec();
    if (!results) throw new Error('the serving record transaction was aborted');
    for (const [err] of results) if (err) throw err;
  }

  async claim(key: string, verdict: Verdict): Promise<{ record: ServingRecord; previous?: Verdict } | undefined> {
    const reply = (await this.client.eval(CLAIM_SCRIPT, 1, key, verdict)) as [string, string] | null;
    if (!reply) return undefined;
    const [record, previous] = reply;
    return { record: JSON.parse(record) as ServingRecord, previous: previous === '' ? undefined : (previous as Verdict) };
  }
}
