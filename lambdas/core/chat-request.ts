import { z } from 'zod';
import { HttpError } from './errors';
import { parseJsonBody } from './json-body';

/** One turn of a conversation, with its content reduced to text. */
export interface ChatMessage {
  readonly role: 'user' | 'assistant';
  readonly text: string;
}

/** A validated `POST /v1/chat` request. */
export interface ChatRequest {
  readonly messages: ChatMessage[];
  readonly system?: string;
  readonly maxTokens?: number;
  readonly temperature?: number;
  /** Tier the caller asks for; policy decides whether it is honoured. */
  readonly tierHint?: string;
  /**
   * A conversation session of the caller's user: the router merges the session's recent turns
   * and the user's preferences into the model request, and caches the answer for that user only.
   */
  readonly session?: string;
}

export interface RequestLimits {
  readonly maxRequestBytes: number;
  readonly maxMessages: number;
  readonly tierIds: readonly string[];
}

// Content is Converse-like: a string, or a list of `{ text }` blocks.
const contentSchema = z.union([
  z.string(),
  z.array(z.object({ text: z.string() }).strict()).min(1, 'content must hold at least one { text } block'),
]);

const messageSchema = z
  .object({
    role: z.enum(['user', 'assistant'], { error: 'role must be "user" or "assistant"' }),
    content: contentSchema,
  })
  .strict();

const requestSchema = z
  .object({
    messages: z.array(messageSchema, { error: 'messages must be an array of { role, content }' }).min(1, 'messages must not be empty'),
    system: z.string().max(16_384, 'system must be at most 16384 characters').optional(),
    maxTokens: z.number().int('maxTokens must be an integer').min(1, 'maxTokens must be at least 1').optional(),
    temperature: z.number().min(0, 'temperature must be between 0 and 1').max(1, 'temperature must be between 0 and 1').optional(),
    tier: z.string().optional(),
    session: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'session must be 1-128 letters, digits, ".", "_", ":" or "-"').optional(),
  })
  .strict();

/**
 * Parses and validates a raw request body.
 *
 * @throws HttpError 413 when the body is larger than `limits.maxRequestBytes`, 400 when it nests
 *         deeper than MAX_JSON_DEPTH, 400 with a message that names the offending field otherwise.
 */
export function parseChatRequest(body: string | undefined, limits: RequestLimits): ChatRequest {
  if (body === undefined || body.length === 0) {
    throw new HttpError(400, 'Request body is required: { "messages": [{ "role": "user", "content": "..." }] }', 'invalid');
  }
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > limits.maxRequestBytes) {
    throw new HttpError(413, `Request body is ${bytes} bytes; the limit is ${limits.maxRequestBytes} bytes`, 'too-large');
  }
  return validateChatRequest(parseJsonBody(body), limits);
}

/**
 * Validates one chat request given as parsed JSON (the body of `POST /v1/chat`, or one request of
 * a job). Messages name the offending field, prefixed with `at` when given (`requests.3` gives
 * `requests.3.messages.0.role: ...`).
 *
 * @throws HttpError 400 with a message that names the offending field
 */
export function validateChatRequest(json: unknown, limits: Omit<RequestLimits, 'maxRequestBytes'>, at?: string): ChatRequest {
  const where = (...path: PropertyKey[]): string => {
    const full = [...(at === undefined ? [] : [at]), ...path.map(String)];
    return full.length > 0 ? `${full.join('.')}: ` : '';
  };
  const invalid = (message: string, ...path: PropertyKey[]): HttpError => new HttpError(400, `Invalid request: ${where(...path)}${message}`, 'invalid');
  const parsed = requestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(issue.message, ...issue.path);
  }
  const req = parsed.data;
  if (req.messages.length > limits.maxMessages) {
    throw invalid(`at most ${limits.maxMessages} messages are accepted, got ${req.messages.length}`, 'messages');
  }
  const messages: ChatMessage[] = req.messages.map((m, i) => {
    const text = typeof m.content === 'string' ? m.content : m.content.map((b) => b.text).join('\n');
    if (text.trim().length === 0) {
      throw invalid('must not be empty', 'messages', i, 'content');
    }
    return { role: m.role, text };
  });
  // Converse (and most chat templates) require user/assistant alternation, starting and ending with the user.
  messages.forEach((m, i) => {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== expected) {
      throw invalid(`must be "${expected}" (turns alternate, starting with "user")`, 'messages', i, 'role');
    }
  });
  if (messages[messages.length - 1].role !== 'user') {
    throw invalid('the last message must come from the "user"', 'messages');
  }
  if (req.tier !== undefined && !limits.tierIds.includes(req.tier)) {
    throw invalid(`unknown tier "${req.tier}"; known tiers: ${limits.tierIds.join(', ')}`, 'tier');
  }
  return {
    messages,
    system: req.system,
    maxTokens: req.maxTokens,
    temperature: req.temperature,
    tierHint: req.tier,
    session: req.session,
  };
}

/** The text of the last user turn: what the caches and the classifier look at first. */
export function lastUserText(req: ChatRequest): string {
  return req.messages[req.messages.length - 1].text;
}
