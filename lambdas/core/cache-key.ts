import { lastUserText, type ChatRequest } from './chat-request';
import { idHash, sha256Hex } from './hashing';
import { containsPersonalData } from './personal-data';

/** Who is asking: set by the authorizer, never by the request body. */
export interface Caller {
  readonly tenantId: string;
  /** Stable id of the end user within the tenant, when the authorizer provides one. */
  readonly userId?: string;
}

/**
 * Canonical form of a text for cache keys: Unicode NFKC, lower case, whitespace collapsed,
 * trailing punctuation that does not change a question ("?", "!", ".") dropped.
 */
export function normalizeText(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[\s?!.]+$/u, '');
}

/**
 * Whether a request is personal: a conversation (its earlier turns may carry the user's data),
 * a request that names a session (the router merges the user's context into it), or a question
 * that carries the asker's personal data (a name, an e-mail address, an account number, a
 * diagnosis...: {@link containsPersonalData}). Personal answers are cached for their user only,
 * or not at all.
 */
export function isPersonal(req: ChatRequest): boolean {
  return req.messages.length > 1 || req.session !== undefined || containsPersonalData(lastUserText(req));
}

/**
 * The exact-cache key of a request.
 *
 * It hashes everything that changes an answer: the tenant, the system prompt, the messages,
 * maxTokens, temperature and the tier that was asked for. Only the question (the last user turn)
 * is normalized, so "Do you ship to Canada?" and "do you ship to canada" share an entry; the
 * system prompt and earlier turns count as written (case and spacing can matter there: code,
 * identifiers). A personal request is scoped to its user as well; any other question is shared
 * by the users of one tenant. Tenants never share a key.
 */
export function exactCacheKey(prefix: string, caller: Caller, req: ChatRequest, tierId: string | undefined, personal = isPersonal(req)): string {
  const canonical = JSON.stringify({
    v: 1,
    tenant: caller.tenantId,
    user: personal ? (caller.userId ?? null) : null,
    system: req.system ?? null,
    messages: req.messages.map((m, i) => [m.role, i === req.messages.length - 1 ? normalizeText(m.text) : m.text]),
    maxTokens: req.maxTokens ?? null,
    temperature: req.temperature ?? null,
    tier: tierId ?? null,
  });
  // The tenant hash in the key lets an operator drop one tenant's entries with SCAN MATCH.
  return `${prefix}exact:${idHash(caller.tenantId)}:${sha256Hex(canonical)}`;
}

/** Whether a request may be cached at all: a personal one needs a user id to be scoped to. */
export function isCacheable(caller: Caller, req: ChatRequest): boolean {
  return !isPersonal(req) || caller.userId !== undefined;
}
