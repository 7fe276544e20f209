/**
 * Where the core marks the steps of a request (cache levels, tier attempts, embeddings) so that a
 * trace shows where its time went. The router binds it to X-Ray subsegments
 * (adapters/powertools-tracing.ts); without tracing it is {@link NO_SPANS}, which only calls `fn`.
 */
export type SpanAnnotations = Record<string, string | number | boolean>;

/** The open span given to its function: annotations known only once the step ran (an outcome). */
export interface Span {
  annotate(key: string, value: string | number | boolean): void;
}

export interface Spans {
  /**
   * Runs `fn` as the step `name`. A rejection of `fn` is recorded on the span and passed on
   * unchanged; spans started inside `fn` are its children.
   */
  span<T>(name: string, fn: (span: Span) => Promise<T>, annotations?: SpanAnnotations): Promise<T>;
}

const NO_SPAN: Span = { annotate: () => undefined };

/** Tracing off: runs each step as it is, at the cost of one function call. */
export const NO_SPANS: Spans = { span: (_name, fn) => fn(NO_SPAN) };
