import type Valkey from 'iovalkey';
import type { ChatMessage } from '../core/chat-request';
import { idHash } from '../core/hashing';
import type { UserContext, UserContextLimits, UserContextStore } from '../core/user-context';

/** Parses a stored turn; anything that is not a `{ role, text }` turn is dropped. */
export function parseTurn(raw: string): ChatMessage | undefined {
  try {
    const t = JSON.parse(raw) as { role?: unknown; text?: unknown };
    if ((t.role === 'user' || t.role === 'assistant') && typeof t.text === 'string') return { role: t.role, text: t.text };
  } catch {
    // a corrupt turn is skipped, not fatal
  }
  return undefined;
}

/**
 * User context in Valkey, on the cache connection. Per tenant and user (hashed, so that ids are
 * never key material and `:` in an id cannot collide):
 * - `<prefix>ctx:<sha256(tenant)[:16]>:<sha256(user)[:16]>:s:<sha256(session)[:16]>`: a LIST of
 *   turn JSON, oldest first (RPUSH, LTRIM to the newest `maxTurns`, EXPIRE);
 * - `<prefix>ctx:<tenant>:<user>:prefs`: a HASH of preferences (replaced by DEL + HSET + EXPIRE);
 * - `<prefix>ctx:<tenant>:<user>:sessions`: a SET of the user's session list keys, so that
 *   `clear` finds them all.
 * Every write is one MULTI transaction and renews the TTL of what it touches.
 */
export class ValkeyUserContextStore implements UserContextStore {
  constructor(
    private readonly client: Valkey,
    private readonly keyPrefix: string,
  ) {}

  /** Prefix of every key of one user of one tenant. */
  userPrefix(tenantId: string, userId: string): string {
    return `${this.keyPrefix}ctx:${idHash(tenantId)}:${idHash(userId)}:`;
  }

  sessionKey(tenantId: string, userId: string, sessionId: string): string {
    return `${this.userPrefix(tenantId, userId)}s:${idHash(sessionId)}`;
  }

  preferencesKey(tenantId: string, userId: string): string {
    return `${this.userPrefix(tenantId, userId)}prefs`;
  }

  sessionsKey(tenantId: string, userId: string): string {
    return `${this.userPrefix(tenantId, userId)}sessions`;
  }

  async load(tenantId: string, userId: string, sessionId: string, maxTurns: number): Promise<UserContext> {
    const n = Math.max(0, Math.floor(maxTurns));
    const results = await this.client
      .pipeline()
      .lrange(this.sessionKey(tenantId, userId, sessionId), -n, -1)
      .hgetall(this.preferencesKey(tenantId, userId))
      .exec();
    if (!results) throw new Error('user context: pipeline returned nothing');
    for (const [err] of results) if (err) throw err;
    const raw = n === 0 ? [] : (results[0][1] as string[]);
    const turns = raw.map(parseTurn).filter((t): t is ChatMessage => t !== undefined);
    return { turns, preferences: { ...(results[1][1] as Record<string, string>) } };
  }

  async appendTurns(tenantId: string, userId: string, sessionId: string, turns: ChatMessage[], limits: UserContextLimits): Promise<void> {
    if (turns.length === 0) return;
    const key = this.sessionKey(tenantId, userId, sessionId);
    const sessions = this.sessionsKey(tenantId, userId);
    const ttl = Math.max(1, Math.ceil(limits.ttlSeconds));
    const max = Math.max(1, Math.floor(limits.maxTurns));
    const results = await this.client
      .multi()
      .rpush(key, ...turns.map((t) => JSON.stringify({ role: t.role, text: t.text })))
      .ltrim(key, -max, -1)
      .expire(key, ttl)
      .sadd(sessions, key)
      .expire(sessions, ttl)
      .exec();
    throwOnError(results);
  }

  async setPreferences(tenantId: string, userId: string, preferences: Record<string, string>, ttlSeconds: number): Promise<void> {
    const key = this.preferencesKey(tenantId, userId);
    const entries = Object.entries(preferences);
    const tx = this.client.multi().del(key);
    if (entries.length > 0) tx.hset(key, ...entries.flat()).expire(key, Math.max(1, Math.ceil(ttlSeconds)));
    throwOnError(await tx.exec());
  }

  async clear(tenantId: string, userId: string): Promise<void> {
    const sessions = this.sessionsKey(tenantId, userId);
    // Read and drop the set atomically, so each session list named in it is deleted below.
    const results = await this.client.multi().smembers(sessions).del(sessions, this.preferencesKey(tenantId, userId)).exec();
    throwOnError(results);
    const keys = results![0][1] as string[];
    if (keys.length > 0) await this.client.del(...keys);
  }
}

function throwOnError(results: Array<[Error | null, unknown]> | null): void {
  if (!results) throw new Error('user context: transaction aborted');
  for (const [err] of results) if (err) throw err;
}
