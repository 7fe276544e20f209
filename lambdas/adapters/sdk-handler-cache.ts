/**
 * The AWS SDK's handler cache (`cacheMiddleware: true`) with per-call abort signals.
 *
 * Without the cache, every `client.send` sorts and composes the whole middleware stack again
 * (`resolveMiddleware`): a large share of the router's CPU per model call. With it, the stack is
 * composed once per command class, but only for calls made without options: `send(command,
 * { abortSignal })` bypasses the cache and empties it. The router needs the signal (a tier's time
 * limit or the request's deadline cancels the HTTP request), so the signal goes another way: `send`
 * with only an `abortSignal` remembers it for the command's input and sends without options; a
 * middleware at the end of the stack (after signing) ties it to the final HTTP request, and the
 * request handler hands it to the real handler as the SDK would have.
 */
import type { NodeHttp2Handler, NodeHttpHandler } from '@smithy/node-http-handler';

type InnerHandler = NodeHttp2Handler | NodeHttpHandler;
type HttpRequest = Parameters<InnerHandler['handle']>[0];
type HandlerOptions = NonNullable<Parameters<InnerHandler['handle']>[1]>;

/** Signals of commands being sent, by the command's input object; of HTTP requests being made, by request. */
const inputSignals = new WeakMap<object, AbortSignal>();
const requestSignals = new WeakMap<object, AbortSignal>();

/** What of an SDK client this needs (every v3 client has it; its overloads are loosened here). */
interface CachingClient {
  readonly config: { readonly cacheMiddleware?: boolean };
  readonly middlewareStack: { add(middleware: never, options: never): void };
  send(command: never, options?: never): Promise<unknown>;
}

type Send = (command: { readonly input: object }, options?: unknown) => Promise<unknown>;
type Middleware = (next: (args: MiddlewareArgs) => Promise<unknown>) => (args: MiddlewareArgs) => Promise<unknown>;

interface MiddlewareArgs {
  readonly input: object;
  readonly request: unknown;
}

/**
 * The HTTP handler to build a caching client with: `inner`, given each request's signal. Pass the
 * client to {@link withPerCallSignals} once built.
 */
export class PerCallSignalHandler {
  /** The SDK reads the protocol (h2 or http/1.1) of its handler here. */
  readonly metadata: InnerHandler['metadata'];

  constructor(private readonly inner: InnerHandler) {
    this.metadata = inner.metadata;
  }

  handle(request: HttpRequest, options: HandlerOptions = {}): ReturnType<InnerHandler['handle']> {
    const abortSignal = requestSignals.get(request);
    return this.inner.handle(request, abortSignal ? { ...options, abortSignal } : options);
  }

  updateHttpClientConfig(key: never, value: never): void {
    this.inner.updateHttpClientConfig(key, value);
  }

  httpHandlerConfigs(): ReturnType<InnerHandler['httpHandlerConfigs']> {
    return this.inner.httpHandlerConfigs();
  }

  destroy(): void {
    this.inner.destroy();
  }
}

/**
 * Makes `client` (built with `cacheMiddleware: true` and a {@link PerCallSignalHandler}) keep its
 * handler cache for calls that pass only an `abortSignal`; calls with other options go through
 * unchanged (uncached). Each call must send a command of its own (the signal is found by the
 * command's input object, as every caller in the library does).
 */
export function withPerCallSignals<T extends CachingClient>(client: T): T {
  if (client.config.cacheMiddleware !== true) throw new Error('withPerCallSignals: the client must be built with cacheMiddleware: true');
  // Last before the request handler (deserialize step, low priority): the request is the signed one.
  const attach: Middleware = (next) => (args) => {
    const signal = inputSignals.get(args.input);
    if (signal) requestSignals.set(args.request as object, signal);
    return next(args);
  };
  const stack = client.middlewareStack as unknown as { add(middleware: Middleware, options: object): void };
  stack.add(attach, { step: 'deserialize', priority: 'low', name: 'perCallAbortSignal', override: true });
  const send = (client.send as unknown as Send).bind(client);
  const patched: Send = (command, options) => {
    // A command already in flight with a signal (its input is the key) goes the uncached way.
    if (!onlySignal(options) || inputSignals.has(command.input)) return send(command, options);
    const signal = (options as { abortSignal?: AbortSignal }).abortSignal;
    if (!signal) return send(command);
    if (signal.aborted) return Promise.reject(abortError());
    inputSignals.set(command.input, signal);
    const sent = send(command);
    // The retry strategy never sees the signal (it is not in the handler context): without this race
    // an abort during a retry's backoff would wait the backoff out. The call itself then ends at its
    // next HTTP request, which gets the aborted signal.
    let onAbort = (): void => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(abortError());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    sent.catch(() => undefined);
    return Promise.race([sent, aborted]).finally(() => {
      signal.removeEventListener('abort', onAbort);
      inputSignals.delete(command.input);
    });
  };
  (client as unknown as { send: Send }).send = patched;
  return client;
}

/** The error the SDK's HTTP handlers reject an aborted call with. */
function abortError(): Error {
  return Object.assign(new Error('Request aborted'), { name: 'AbortError' });
}

/** Whether `options` are `{ abortSignal }` and nothing else. */
function onlySignal(options: unknown): boolean {
  if (typeof options !== 'object' || options === null) return false;
  const keys = Object.keys(options);
  return keys.length === 1 && keys[0] === 'abortSignal';
}
