import { Readable } from 'node:stream';
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import type { NodeHttp2Handler } from '@smithy/node-http-handler';
import { PerCallSignalHandler, withPerCallSignals } from '../../lambdas/adapters/sdk-handler-cache';

/** An HTTP handler that answers every Converse call at once and records the signal it was given. */
function fakeHandler(): { handler: NodeHttp2Handler; signals: Array<AbortSignal | undefined> } {
  const signals: Array<AbortSignal | undefined> = [];
  const handler = {
    metadata: { handlerProtocol: 'h2' },
    handle: async (_request: unknown, options: { abortSignal?: AbortSignal } = {}) => {
      signals.push(options.abortSignal);
      if (options.abortSignal?.aborted) throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
      const body = JSON.stringify({ output: { message: { role: 'assistant', content: [{ text: 'ok' }] } }, stopReason: 'end_turn', usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } });
      return { response: { statusCode: 200, headers: { 'content-type': 'application/json' }, body: Readable.from([Buffer.from(body)]) } };
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy: () => undefined,
  };
  return { handler: handler as unknown as NodeHttp2Handler, signals };
}

const converse = (): ConverseCommand => new ConverseCommand({ modelId: 'm', messages: [{ role: 'user', content: [{ text: 'hi' }] }] });

function client(handler: NodeHttp2Handler): BedrockRuntimeClient {
  return withPerCallSignals(new BedrockRuntimeClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' },
    maxAttempts: 1,
    cacheMiddleware: true,
    requestHandler: new PerCallSignalHandler(handler),
  }));
}

describe('withPerCallSignals', () => {
  it('composes the middleware stack once for calls that pass an abort signal', async () => {
    const { handler } = fakeHandler();
    const c = client(handler);
    const resolve = jest.spyOn(ConverseCommand.prototype, 'resolveMiddleware');
    try {
      for (let i = 0; i < 3; i++) await c.send(converse(), { abortSignal: new AbortController().signal });
      expect(resolve).toHaveBeenCalledTimes(1);
    } finally {
      resolve.mockRestore();
    }
  });

  it('gives each HTTP request the signal of its own call, concurrent calls included', async () => {
    const { handler, signals } = fakeHandler();
    const c = client(handler);
    const a = new AbortController();
    const b = new AbortController();
    await Promise.all([c.send(converse(), { abortSignal: a.signal }), c.send(converse(), { abortSignal: b.signal }), c.send(converse())]);
    expect(signals).toHaveLength(3);
    expect(signals).toEqual(expect.arrayContaining([a.signal, b.signal, undefined]));
  });

  it('an aborted signal fails the call (the handler sees it)', async () => {
    const { handler } = fakeHandler();
    const c = client(handler);
    const aborted = new AbortController();
    aborted.abort();
    await expect(c.send(converse(), { abortSignal: aborted.signal })).rejects.toThrow('Request aborted');
  });

  it('refuses a client built without cacheMiddleware', () => {
    const { handler } = fakeHandler();
    expect(() => withPerCallSignals(new BedrockRuntimeClient({ region: 'us-east-1', requestHandler: new PerCallSignalHandler(handler) })))
      .toThrow('cacheMiddleware: true');
  });
});
