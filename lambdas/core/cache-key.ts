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
 * Canonical form of a text for cache keys, changed only where the change cannot change the answer.
 *
 * Plain prose is put in Unicode NFKC, lower-cased, its whitespace collapsed, and trailing
 * punctuation that does not change a question ("?", "!", ".") dropped: "Do you ship to Canada?"
 * and "do you ship to  canada" are one question. Code is kept exactly as written, because case
 * and indentation change what it means: code spans and fences (`` `...` ``, ```` ``` ````) and
 * any stretch of text between them that looks like code ({@link looksLikeCode}: indentation,
 * braces, semicolons, `=`, calls, snake_case or camelCase identifiers...). So
 * "Why does `const Foo = 1; console.log(foo)` throw?" and the same with `const foo` are two
 * questions, and so are two Python snippets that differ only in indentation.
 *
 * Linear in the length of the text (one pass; the trailing punctuation is trimmed by a scan, not a
 * backtracking pattern).
 */
export function normalizeText(text: string): string {
  const segments = splitCode(text);
  const out: string[] = [];
  segments.forEach((segment, i) => {
    if (segment.code || looksLikeCode(segment.text)) {
      out.push(segment.text);
      return;
    }
    let prose = segment.text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ');
    if (i === 0) prose = prose.replace(/^ /, '');
    if (i === segments.length - 1) prose = trimTrailingPunctuation(prose);
    out.push(prose);
  });
  return out.join('');
}

/** Prose and code segments of a text: code fences and spans are code; an unclosed one runs to the end. */
function splitCode(text: string): Array<{ text: string; code: boolean }> {
  const segments: Array<{ text: string; code: boolean }> = [];
  let prose = 0;
  let i = text.indexOf('`');
  while (i !== -1) {
    const fence = text.startsWith('```', i);
    const close = fence ? text.indexOf('```', i + 3) : text.indexOf('`', i + 1);
    const end = close === -1 ? text.length : close + (fence ? 3 : 1);
    if (i > prose) segments.push({ text: text.slice(prose, i), code: false });
    segments.push({ text: text.slice(i, end), code: true });
    prose = end;
    i = end >= text.length ? -1 : text.indexOf('`', end);
  }
  if (prose < text.length || segments.length === 0) segments.push({ text: text.slice(prose), code: false });
  return segments;
}

/** Drops trailing whitespace, "?", "!" and "." by scanning back from the end. */
function trimTrailingPunctuation(text: string): string {
  let end = text.length;
  while (end > 0) {
    const c = text[end - 1];
    if (c !== '?' && c !== '!' && c !== '.' && !/\s/.test(c)) break;
    end--;
  }
  return text.slice(0, end);
}

const CODE_SIGNS: readonly RegExp[] = [
  /\n(?: {2}|\t)/, // an indented line
  /[{};=\\]/, // braces, statements, assignments and comparisons, escapes
  /[\w\])]\(|\(\)/, // a call: f(x), a[0](), ()
  /->|=>|::|<\/|\/>/,
  /\[[^\]\s]{0,40}\]/, // an index or a list: a[0], [1,2] (bounded, so that "[[[[..." stays linear)
  /[A-Za-z0-9]_[A-Za-z0-9]|(?:^|\s)_[A-Za-z]/, // snake_case, _private
  /[a-z][A-Z][a-z]{1,40}[A-Z]/, // camelCase with two humps: getElementById
  /\$[A-Za-z_{(]/, // shell and template variables
  /(?:^|\n) *(?:def|class|import|from|function|const|let|var|return|#include|#!|public|private|fn|func|package|SELECT|select|if|for|while) /,
];

/** Whether a stretch of text without backticks looks like code: case and spacing may then matter. */
export function looksLikeCode(text: string): boolean {
  return CODE_SIGNS.some((re) => re.test(text));
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
  // The tenant hash in the key lets an operator drop one tenant's entries with SCAN MATCH, and
  // the user hash of a personal key lets DELETE /v1/context find the user's entries.
  const scope = personal && caller.userId !== undefined ? personalExactKeyPrefix(prefix, caller.tenantId, caller.userId) : `${prefix}exact:${idHash(caller.tenantId)}:`;
  return `${scope}${sha256Hex(canonical)}`;
}

/**
 * The prefix of every personal exact-cache key of one user (`<prefix>exact:<tenant hash>:u:<user
 * hash>:`): what `DELETE /v1/context` deletes. Shared keys (`<prefix>exact:<tenant hash>:<sha>`)
 * never start with it.
 */
export function personalExactKeyPrefix(prefix: string, tenantId: string, userId: string): string {
  return `${prefix}exact:${idHash(tenantId)}:u:${idHash(userId)}:`;
}

/**
 * The prefix of every semantic scope of one user's personal entries (whatever the conversation,
 * system prompt or parameters): the router puts it in front of the scope of a personal lookup, so
 * that `DELETE /v1/context` can find the user's entries in the vector store. Hex and fixed-length,
 * like the scope hash it precedes.
 */
export function personalScopePrefix(tenantId: string, userId: string): string {
  return `u${idHash(tenantId)}${idHash(userId)}`;
}

/**
 * Whether a request may be cached at all: a personal one needs a user id to be scoped to. Pass
 * `personal` when it is known: the personal-data scan then runs once per request.
 */
export function isCacheable(caller: Caller, req: ChatRequest, personal = isPersonal(req)): boolean {
  return !personal || caller.userId !== undefined;
}
