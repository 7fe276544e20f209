/**
 * Static answers: FAQ, product and policy answers a tenant publishes as JSON files, each with
 * the question variants that ask for it. A daily loader publishes them into Valkey; the router
 * answers a question from them before any other cache when it matches a variant exactly (after
 * normalization) or, with an embedder, semantically above the static threshold.
 */
import { z } from 'zod';
import { normalizeText } from './cache-key';

/** One answer file (S3 object) of a tenant. */
export const staticAnswerFileSchema = z.object({
  /** The tenant the answers belong to (as the router derives it from the authorizer). */
  tenantId: z.string().min(1).max(2048),
  answers: z.array(z.object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'id must be 1-128 letters, digits, ".", "_" or "-"'),
    questions: z.array(z.string().min(1).max(1024)).min(1, 'questions must hold at least one variant'),
    answer: z.string().min(1).max(32_768),
  }).strict()).max(10_000),
}).strict();

export type StaticAnswerFile = z.infer<typeof staticAnswerFileSchema>;

export interface StaticAnswer {
  readonly id: string;
  readonly answer: string;
}

/** What the router reads of the published static answers. */
export interface StaticAnswerStore {
  /** The answer whose normalized question variant equals `normalizedQuestion`, if any. */
  findExact(tenantId: string, normalizedQuestion: string): Promise<StaticAnswer | undefined>;
  /**
   * The vector-store scope of the tenant's published question variants, for a semantic match;
   * undefined when none are published (or they were published without an embedder).
   */
  vectorScope(tenantId: string): Promise<string | undefined>;
}

/** Normalized form of a question variant: the exact-match key of static answers. */
export function normalizeQuestion(question: string): string {
  return normalizeText(question);
}
