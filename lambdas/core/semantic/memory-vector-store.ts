import type { SemanticEntry, StoreOptions, VectorMatch, VectorStore } from './ports';
import { cosine } from './vectors';

/**
 * An in-process vector store with exact (brute-force) k-NN. It backs `eval-cache` and other
 * local tools, where no vector database runs; it is not used by the deployed handlers. TTLs are
 * not enforced (a replay has no clock); the per-scope bound is.
 */
export class InMemoryVectorStore implements VectorStore {
  private readonly scopes = new Map<string, SemanticEntry[]>();

  async ensureIndex(): Promise<void> {}

  async search(scope: string, vector: Float32Array, k: number): Promise<VectorMatch[]> {
    const entries = this.scopes.get(scope) ?? [];
    const best: VectorMatch[] = [];
    for (const entry of entries) {
      const similarity = cosine(vector, entry.vector);
      if (best.length < k || similarity > best[best.length - 1].similarity) {
        best.push({ entry, similarity });
        best.sort((a, b) => b.similarity - a.similarity);
        if (best.length > k) best.pop();
      }
    }
    return best;
  }

  async put(entry: SemanticEntry, options: StoreOptions): Promise<void> {
    let entries = this.scopes.get(entry.scope);
    if (!entries) this.scopes.set(entry.scope, (entries = []));
    entries.push(entry);
    if (entries.length > options.maxEntriesPerScope) entries.splice(0, entries.length - options.maxEntriesPerScope);
  }

  /** Entries kept for a scope (for tests and reports). */
  size(scope: string): number {
    return this.scopes.get(scope)?.length ?? 0;
  }
}
