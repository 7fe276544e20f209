import Valkey from 'iovalkey';
import type { CircuitBreaker } from '../core/circuit-breaker';
import type { AnswerCache, CachedAnswer } from '../core/ports';

export interface ValkeyConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly password?: string;
  /** Milliseconds a command may take before it fails (and the caller fails open). */
  readonly timeoutMs: number;
}

/**
 * Opens a client that fails fast: a command that cannot complete within `timeoutMs` (server
 * down, network partition) rejects instead of queueing, so the router can answer from a model.
 */
export function connectValkey(options: ValkeyConnectionOptions): Valkey {
  const client = new Valkey({
    host: options.host,
    port: options.port,
    password: options.password,
    tls: options.tls ? {} : undefined,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(options.timeoutMs, 1_000),
    maxRetriesPerRequest: 1,
    lazyConnect: false,
    // Reconnect quickly but never give up: the next invocation should find the cache again.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  });
  // Errors surface on the commands; without a listener iovalkey would log every reconnect attempt.
  client.on('error', () => undefined);
  return client;
}

/** The exact cache on a Redis-protocol server: one JSON string per key, with a TTL. */
export class ValkeyAnswerCache implements AnswerCache {
  constructor(
    private readonly client: Valkey,
    /** The router's breaker of the exact level. */
    readonly breaker?: CircuitBreaker,
  ) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    const raw = await this.client.get(key);
    return raw === null ? undefined : (JSON.parse(raw) as CachedAnswer);
  }

  async set(key: string, answer: CachedAnswer, ttlSeconds: number): Promise<void> {
    await this.client.set(key, JSON.stringify(answer), 'EX', ttlSeconds);
  }

  /** Deletes the entry at `key` if it holds the answer `answerId`: compared and deleted in one script. */
  async evict(key: string, answerId: string): Promise<boolean> {
    return (await this.client.eval(EVICT_SCRIPT, 1, key, answerId)) === 1;
  }

  /** Deletes every key that starts with `keyPrefix` (SCAN MATCH over the keyspace, then UNLINK). */
  async deleteByPrefix(keyPrefix: string): Promise<void> {
    await deleteKeysByPrefix(this.client, keyPrefix);
  }
}

/**
 * Deletes the key if its JSON value's `id` is ARGV[1]: a reader between a compare and a delete
 * could otherwise store a newer answer under the key, which would then be deleted. Valkey's Lua
 * has `cjson`; a value that is not JSON is left alone.
 */
const EVICT_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local ok, answer = pcall(cjson.decode, value)
if ok and type(answer) == 'table' and answer.id == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Deletes every key that starts with `prefix`: SCAN MATCH `<prefix>*` through the whole keyspace
 * (a cursor, COUNT 1,000 per call, so the server is never blocked), UNLINK of each page. The
 * cost grows with the keyspace, not with the keys found: meant for rare requests such as
 * `DELETE /v1/context`. Keys written while it runs may be missed.
 */
export async function deleteKeysByPrefix(client: Valkey, prefix: string): Promise<void> {
  const pattern = `${escapeGlob(prefix)}*`;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    if (keys.length > 0) await client.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** Escapes the glob characters of SCAN MATCH (`*`, `?`, `[`, `]`, `\\`), so the prefix matches literally. */
export function escapeGlob(value: string): string {
  return value.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
