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

  it('an already aborted signal fails the call before any request', async () => {
    const { handler } = fakeHandler();
    const c = client(handler);
    const aborted = new AbortController();
    aborted.abort();
    await expect(c.send(converse(), { abortSignal: aborted.signal })).rejects.toThrow('Request aborted');
  });

  it('an abort during a retry\'s backoff ends the call then, not after the next attempt', async () => {
    let calls = 0;
    const throttling = {
      metadata: { handlerProtocol: 'h2' },
      handle: async () => {
        calls++;
        const body = JSON.stringify({ message: 'Too many requests' });
        return { response: { statusCode: 429, headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'ThrottlingException' }, body: Readable.from([Buffer.from(body)]) } };
      },
      updateHttpClientConfig: () => undefined,
      httpHandlerConfigs: () => ({}),
      destroy: () => undefined,
    } as unknown as NodeHttp2Handler;
    const c = withPerCallSignals(new BedrockRuntimeClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' },
      maxAttempts: 3,
      cacheMiddleware: true,
      requestHandler: new PerCallSignalHandler(throttling),
    }));
    const controller = new AbortController();
    const call = c.send(converse(), { abortSignal: controller.signal });
    while (calls === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    // Rejected in the backoff after the first attempt; the SDK alone would have made a second one first.
    expect(calls).toBe(1);
  });

  it('a command sent again after an aborted call does not inherit its signal', async () => {
    const { handler, signals } = fakeHandler();
    const c = client(handler);
    const command = converse();
    const aborted = new AbortController();
    aborted.abort();
    await expect(c.send(command, { abortSignal: aborted.signal })).rejects.toMatchObject({ name: 'AbortError' });
    await expect(c.send(command)).resolves.toMatchObject({ stopReason: 'end_turn' });
    expect(signals.at(-1)).toBeUndefined();
  });

  it('refuses a client built without cacheMiddleware', () => {
    const { handler } = fakeHandler();
    expect(() => withPerCallSignals(new BedrockRuntimeClient({ region: 'us-east-1', requestHandler: new PerCallSignalHandler(handler) })))
      .toThrow('cacheMiddleware: true');
  });
});
