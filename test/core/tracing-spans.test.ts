/**
 * The trace spans of one request (lambdas/core/tracing.ts): one per cache level lookup and store,
 * per user-context read and write, per embedding and per tier attempt, with the outcome of each
 * attempt, as the X-Ray adapter turns them into subsegments.
 */
import { answer, DEADLINE, harness, sdkError, SCORE, USER_CONTEXT } from './cache-doubles';
import type { Caller } from '../../lambdas/core/cache-key';
import type { ChatRequest } from '../../lambdas/core/chat-request';
import type { Span, SpanAnnotations, Spans } from '../../lambdas/core/tracing';

interface Recorded {
  readonly name: string;
  readonly annotations: SpanAnnotations;
  error?: unknown;
}

/** Records every span in the order it started, with its annotations (given and added) and error. */
class RecordingSpans implements Spans {
  readonly spans: Recorded[] = [];
  async span<T>(name: string, fn: (span: Span) => Promise<T>, annotations: SpanAnnotations = {}): Promise<T> {
    const record: Recorded = { name, annotations: { ...annotations } };
    this.spans.push(record);
    try {
      return await fn({ annotate: (key, value) => { (record.annotations as Record<string, unknown>)[key] = value; } });
    } catch (err) {
      record.error = err;
      throw err;
    }
  }
  names(): string[] {
    return this.spans.map((s) => s.name);
  }
}

const ALICE: Caller = { tenantId: 'tenant-a', userId: 'alice' };
const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ messages: [{ role: 'user', text }], ...extra });

describe('trace spans of a chat request', () => {
  test('a miss: every cache level looked up, the tier attempt, then the stores and the context write', async () => {
    const spans = new RecordingSpans();
    const h = harness({ spans, config: { userContext: USER_CONTEXT } });
    h.invoker.script('small', answer('We open at nine.'));

    await h.service.chat(ask('When do you open?', { session: 's1' }), ALICE, DEADLINE);

    // A session's answer is personal: no static level.
    expect(spans.names()).toEqual([
      'context.load',
      'exact.lookup',
      'semantic.lookup',
      'embed',
      'tier.small',
      'exact.store',
      'semantic.store',
      'context.save',
    ]);
    expect(spans.spans.find((s) => s.name === 'tier.small')!.annotations).toEqual({ tier: 'small', attempt: 1, outcome: 'ok' });
    expect(spans.spans.find((s) => s.name === 'exact.lookup')!.annotations).toEqual({ cacheLevel: 'exact' });
    expect(spans.spans.every((s) => s.error === undefined)).toBe(true);
  });

  test('a shared question: the static level first (no variants published: no embedding for it)', async () => {
    const spans = new RecordingSpans();
    const h = harness({ spans });
    h.invoker.script('small', answer('We open at nine.'));

    await h.service.chat(ask('When do you open?'), ALICE, DEADLINE);

    expect(spans.names()).toEqual(['static.lookup', 'exact.lookup', 'semantic.lookup', 'embed', 'tier.small', 'exact.store', 'semantic.store']);
  });

  test('an exact hit: the levels up to the hit, no tier attempt', async () => {
    const spans = new RecordingSpans();
    const h = harness({ spans, semantic: false, staticAnswers: false });
    h.invoker.script('small', answer('We open at nine.'));
    await h.service.chat(ask('When do you open?'), ALICE, DEADLINE);
    spans.spans.length = 0;

    const hit = await h.service.chat(ask('When do you open?'), ALICE, DEADLINE);

    expect(hit.servedBy).toBe('exact');
    expect(spans.names()).toEqual(['exact.lookup']);
  });

  test('a fallback: the failing attempt records its error and kind, the second attempt answers', async () => {
    const spans = new RecordingSpans();
    const h = harness({ spans, exact: false, semantic: false, staticAnswers: false, score: SCORE.small });
    h.invoker.script('small', { fail: sdkError('ThrottlingException', 429) }).script('medium', answer('medium answer'));

    const result = await h.service.chat(ask('When do you open?'), ALICE, DEADLINE);

    expect(result.tierId).toBe('medium');
    expect(spans.names()).toEqual(['tier.small', 'tier.medium']);
    const [failed, second] = spans.spans;
    expect(failed.annotations).toEqual({ tier: 'small', attempt: 1, outcome: 'failed', errorKind: 'throttled' });
    expect(failed.error).toMatchObject({ kind: 'throttled', tierId: 'small' });
    expect(second.annotations).toEqual({ tier: 'medium', attempt: 2, outcome: 'ok' });
    expect(second.error).toBeUndefined();
  });

  test('an answer without text fails its attempt in the span (the response check is part of the attempt)', async () => {
    const spans = new RecordingSpans();
    const h = harness({ spans, exact: false, semantic: false, staticAnswers: false });
    h.invoker.script('small', answer('   ')).script('medium', answer('medium answer'));

    await h.service.chat(ask('When do you open?'), ALICE, DEADLINE);

    expect(spans.spans[0].annotations).toMatchObject({ tier: 'small', outcome: 'failed', errorKind: 'empty' });
  });
});
