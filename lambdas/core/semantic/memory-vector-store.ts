import type { SemanticEntry, StoreOptions, VectorMatch, VectorStore } from './ports';
import { type VectorMatrix, createVectorMatrix } from './vector-matrix';

/** One scope's entries and their vectors, in the same order. */
interface ScopeEntries {
  readonly entries: SemanticEntry[];
  readonly matrix: VectorMatrix;
}

/**
 * An in-process vector store with exact (brute-force) k-NN. It backs `eval-cache` and other
 * local tools, where no vector database runs; it is not used by the deployed handlers. TTLs are
 * not enforced (a replay has no clock); the per-scope bound is.
 *
 * A scope's vectors are packed into one {@link VectorMatrix}, so a search is one pass over
 * contiguous memory (with WebAssembly SIMD where available): the 85M similarities of a 13k-row
 * replay take seconds. Similarities are single-precision dot products, as in Valkey and pgvector.
 */
export class InMemoryVectorStore implements VectorStore {
  private readonly scopes = new Map<string, ScopeEntries>();

  async ensureIndex(): Promise<void> {}

  async search(scope: string, vector: Float32Array, k: number, signal?: AbortSignal): Promise<VectorMatch[]> {
    signal?.throwIfAborted();
    const data = this.scopes.get(scope);
    if (!data || data.entries.length === 0 || k <= 0) return [];
    const similarities = data.matrix.similarities(vector);
    // The best k, most similar first; on a tie the earlier entry stays ahead.
    const bestIndex: number[] = [];
    const bestSimilarity: number[] = [];
    for (let e = 0; e < similarities.length; e++) {
      const similarity = similarities[e];
      const size = bestIndex.length;
      if (size === k && !(similarity > bestSimilarity[size - 1])) continue;
      let at = size;
      while (at > 0 && bestSimilarity[at - 1] < similarity) at--;
      bestIndex.splice(at, 0, e);
      bestSimilarity.splice(at, 0, similarity);
      if (bestIndex.length > k) {
        bestIndex.pop();
        bestSimilarity.pop();
      }
    }
    return bestIndex.map((e, r) => ({ entry: data.entries[e], similarity: bestSimilarity[r] }));
  }

  async put(entry: SemanticEntry, options: StoreOptions, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    let data = this.scopes.get(entry.scope);
    if (!data) {
      data = { entries: [], matrix: createVectorMatrix(entry.vector.length) };
      this.scopes.set(entry.scope, data);
    }
    data.matrix.append(entry.vector);
    data.entries.push(entry);
    const excess = data.entries.length - options.maxEntriesPerScope;
    if (excess > 0) {
      data.entries.splice(0, excess);
      data.matrix.dropOldest(excess);
    }
  }

  async deleteScope(scope: string): Promise<void> {
    this.scopes.delete(scope);
  }

  async deleteScopePrefix(scopePrefix: string): Promise<void> {
    for (const scope of [...this.scopes.keys()]) if (scope.startsWith(scopePrefix)) this.scopes.delete(scope);
  }

  /** Entries kept for a scope (for tests and reports). */
  size(scope: string): number {
    return this.scopes.get(scope)?.entries.length ?? 0;
  }
}
