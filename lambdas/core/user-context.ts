/**
 * User context: the recent turns of a user's conversation sessions and the user's preferences,
 * kept per tenant and user with a TTL. The router merges them into the model request of a
 * request that names a `session`, and never into a shared cache entry.
 */
import type { ChatMessage } from './chat-request';

export interface UserContext {
  /** Recent turns of the session, oldest first (user/assistant alternating). */
  readonly turns: ChatMessage[];
  /** The user's preferences (`language: de`, `tone: brief`, ...). */
  readonly preferences: Record<string, string>;
}

export interface UserContextLimits {
  /** Most turns kept per session. */
  readonly maxTurns: number;
  readonly ttlSeconds: number;
}

/** Where user context lives. Failures are thrown; the router fails open (no context). */
export interface UserContextStore {
  load(tenantId: string, userId: string, sessionId: string, maxTurns: number): Promise<UserContext>;
  /** Appends turns to a session, keeps the newest `maxTurns`, and renews the TTL. */
  appendTurns(tenantId: string, userId: string, sessionId: string, turns: ChatMessage[], limits: UserContextLimits): Promise<void>;
  /** Replaces the user's preferences. */
  setPreferences(tenantId: string, userId: string, preferences: Record<string, string>, ttlSeconds: number): Promise<void>;
  /** Deletes everything kept for the user (all sessions and preferences). */
  clear(tenantId: string, userId: string): Promise<void>;
}
