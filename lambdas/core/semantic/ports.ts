/**
 * Ports of the semantic cache: an embedder turns text into unit vectors, a vector store keeps
 * entries and finds the nearest ones within a scope.
 *
 * Every call takes an optional abort signal: the router abandons a lookup at its time limit and
 * aborts the signal, so an implementation should stop its work then (cancel the SDK request,
 * release the database connection) and reject. Local tools may omit it.
 */
import type { CachedAnswer } from '../ports';

/** Turns texts into unit-length vectors of a fixed dimension. */
export interface Embedder {
  /** Identifies the model (entries embedded by another model are not comparable). */
  readonly modelId: string;
  readonly dimensions: number;
  embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

/** One cached question with its answer. */
export interface SemanticEntry {
  /** Unique id of the entry. */
  readonly id: string;
  /**
   * Opaque scope: tenant, system prompt and the parameters that change an answer (and the user,
   * for personal entries). A lookup only ever sees entries of its own scope.
   */
  readonly scope: string;
  /** The question as asked. */
  readonly question: string;
  /** Embedding of the question. */
  readonly vector: Float32Array;
  readonly answer: CachedAnswer;
  /**
   * Embedding of the answer: a later entry whose answer embeds close to it shares its answer key.
   * Absent when the caller supplied the key.
   */
  readonly answerVector?: Float32Array;
  /** Answer-equivalence key: entries with equal keys hold equivalent answers. */
  readonly answerKey: string;
  /** Epoch milliseconds of creation. */
  readonly createdAt: number;
}

/** A stored entry and its cosine similarity to the query. */
export interface VectorMatch {
  readonly entry: SemanticEntry;
  readonly similarity: number;
}

export interface StoreOptions {
  /** Seconds the entry lives. */
  readonly ttlSeconds: number;
  /** Most entries one scope keeps; the oldest are evicted beyond it. */
  readonly maxEntriesPerScope: number;
}

/** Where the semantic cache keeps its entries. Failures are thrown; the cache fails open. */
export interface VectorStore {
  /** Creates the index (or table) if it does not exist. Idempotent. */
  ensureIndex(dimensions: number, signal?: AbortSignal): Promise<void>;
  /** The `k` entries of `scope` nearest to `vector`, most similar first. */
  search(scope: string, vector: Float32Array, k: number, signal?: AbortSignal): Promise<VectorMatch[]>;
  put(entry: SemanticEntry, options: StoreOptions, signal?: AbortSignal): Promise<void>;
  /** Deletes every entry of a scope (static answers drop a replaced version's variants). */
  deleteScope(scope: string, signal?: AbortSignal): Promise<void>;
  /**
   * Deletes every entry of every scope that starts with `scopePrefix` (`DELETE /v1/context`: the
   * scopes of a user's personal entries all start with the user's prefix).
   */
  deleteScopePrefix?(scopePrefix: string): Promise<void>;
  /**
   * Deletes one entry (`POST /v1/feedback`: a wrong verdict evicts the entry that answered).
   * @returns whether an entry was deleted
   */
  deleteEntry?(scope: string, id: string, signal?: AbortSignal): Promise<boolean>;
}
