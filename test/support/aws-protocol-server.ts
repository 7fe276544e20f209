/**
 * A local server that speaks the wire protocols of the AWS APIs the router calls, so handler
 * tests run the real AWS SDK v3 clients (serialization, signing, HTTP handlers, error
 * deserialization) against it.
 *
 * - Bedrock Runtime `Converse`: `POST /model/{modelId}/converse` (restJson1). The SDK's
 *   BedrockRuntimeClient talks HTTP/2 (NodeHttp2Handler), so it is served over plaintext HTTP/2
 *   (h2c) on {@link LocalAwsServer.http2Url}.
 * - Bedrock Runtime `InvokeModel` for embedding models (Titan Text Embeddings V2):
 *   `POST /model/{modelId}/invoke` with `{ inputText, dimensions, normalize }`, answered with
 *   `{ embedding, inputTextTokenCount }`.
 * - SageMaker Runtime `InvokeEndpoint`: `POST /endpoints/{name}/invocations` (restJson1 with a
 *   raw payload; here an OpenAI chat-completions container), HTTP/1.1. An endpoint registered
 *   with {@link LocalAwsServer.setEmbeddingEndpoint} is an embedding container instead (Hugging
 *   Face TEI / feature extraction: `{ inputs }` in, `[[...], ...]` or `{ embeddings }` out).
 * - Secrets Manager `GetSecretValue`: `POST /` with `X-Amz-Target: secretsmanager.GetSecretValue`
 *   (awsJson1_1), HTTP/1.1.
 * - SSM Parameter Store `GetParameter`: `POST /` with `X-Amz-Target: AmazonSSM.GetParameter`
 *   (awsJson1_1), HTTP/1.1.
 *
 * Both listeners route every operation; {@link LocalAwsServer.env} points each SDK client at the
 * listener its default HTTP handler speaks. Errors are an HTTP status with the
 * `x-amzn-errortype` header and a `{ "message" }` body, which is what the SDK turns into an
 * exception whose `name` is the error type.
 *
 * Per test, a model (Bedrock model id or SageMaker endpoint name) can be given a reply and a token
 * usage, and failures can be queued for its next calls (and for the next secret reads); every call
 * is recorded, and so is every TCP connection each listener accepts ({@link connections}). Embeddings are
 * deterministic: {@link hashedTrigramEmbedding} of the text (similar texts get similar vectors).
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/** A chat turn as the server saw it, whatever the wire format. */
export interface SeenMessage {
  readonly role: string;
  readonly text: string;
}

/** What a model was asked, normalized from the Converse or OpenAI chat body. */
export interface ModelCallRequest {
  readonly service: 'bedrock' | 'sagemaker';
  /** Bedrock model id (URL-decoded) or SageMaker endpoint name. */
  readonly target: string;
  /** System prompt (Converse `system` blocks, or an OpenAI `system` message). */
  readonly system?: string;
  /** Conversation turns, without the OpenAI `system` message. */
  readonly messages: SeenMessage[];
  readonly maxTokens?: number;
  readonly temperature?: number;
  /** Bedrock service tier asked for (Converse `serviceTier.type`). */
  readonly serviceTier?: string;
}

export interface ModelScript {
  /** Answer text, or a function of the request. Default: echoes the last user message. */
  readonly reply?: string | ((request: ModelCallRequest) => string);
  /** Reported token usage. Default: words in (system + messages) and words in the reply. */
  readonly usage?: TokenUsage;
  /** Default: `end_turn` (Bedrock) or `stop` (SageMaker). */
  readonly stopReason?: string;
  /**
   * Bedrock: the service tier the response says served it (`serviceTier.type`); `null` sends
   * none. Default: the one asked for, as Bedrock does when it has the capacity; none if none was.
   */
  readonly servedTier?: string | null;
  /**
   * An odd answer: this JSON body is sent (status 200) instead of the well-formed one built from
   * `reply`, `usage` and `stopReason` (e.g. a Converse `{}`, or `content: []`).
   */
  readonly body?: unknown;
  /** A broken answer: this text is sent verbatim (status 200, `application/json`), e.g. a truncated or non-JSON body. */
  readonly rawBody?: string;
}

/** A failure to inject into a model's next call(s). */
export type InjectedFailure =
  | { readonly kind: 'error'; readonly status: number; readonly errorType: string; readonly message?: string }
  /** Hold the response for `ms` milliseconds (then answer normally, if the client still waits). */
  | { readonly kind: 'hang'; readonly ms: number };

/** The errors the real services send, as the SDK models them. */
export const Failures = {
  throttling: (): InjectedFailure => ({ kind: 'error', status: 429, errorType: 'ThrottlingException', message: 'Too many requests, please wait before trying again.' }),
  internal: (): InjectedFailure => ({ kind: 'error', status: 500, errorType: 'InternalServerException', message: 'The server encountered an internal error.' }),
  validation: (message = 'Malformed input request.'): InjectedFailure => ({ kind: 'error', status: 400, errorType: 'ValidationException', message }),
  serviceUnavailable: (): InjectedFailure => ({ kind: 'error', status: 503, errorType: 'ServiceUnavailableException', message: 'Service is unavailable.' }),
  modelTimeout: (): InjectedFailure => ({ kind: 'error', status: 408, errorType: 'ModelTimeoutException', message: 'Model has timed out in processing the request.' }),
  /** SageMaker: the container answered with an error. */
  sageMakerModelError: (): InjectedFailure => ({ kind: 'error', status: 424, errorType: 'ModelError', message: 'Received server error (500) from primary with message "boom".' }),
  /** SageMaker: the endpoint is scaling or not ready (no modelled throttling error). */
  sageMakerNotReady: (): InjectedFailure => ({ kind: 'error', status: 429, errorType: 'ModelNotReadyException', message: 'Model is not ready.' }),
  /** SageMaker: the inference component has no copy (scaled to zero, or still scaling out). */
  sageMakerNoCapacity: (): InjectedFailure => ({
    kind: 'error',
    status: 400,
    errorType: 'ValidationError',
    message: 'Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress (if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API.',
  }),
  hang: (ms: number): InjectedFailure => ({ kind: 'hang', ms }),
};

export interface RecordedCall {
  readonly request: ModelCallRequest;
  /** The parsed JSON body exactly as the client sent it. */
  readonly body: unknown;
  readonly headers: Record<string, string>;
  /** HTTP version the call came over (`2.0` for Bedrock's HTTP/2 client, `1.1` otherwise). */
  readonly httpVersion: string;
  /** How the server answered: `ok`, an error type, or `aborted` (the client went away while it hung). */
  outcome: 'ok' | 'aborted' | string;
  status?: number;
  /** For `ok`: what the server answered. */
  response?: { readonly text: string; readonly usage: TokenUsage };
}

/** What an embedding call asked for and how it was answered. */
export interface EmbeddingCall {
  readonly service: 'bedrock' | 'sagemaker';
  /** Bedrock model id (URL-decoded) or SageMaker endpoint name. */
  readonly target: string;
  /** The parsed JSON body exactly as the client sent it. */
  readonly body: unknown;
  /** The texts to embed. */
  readonly inputs: string[];
  readonly headers: Record<string, string>;
  readonly httpVersion: string;
  outcome: 'ok' | 'aborted' | string;
  status?: number;
}

/** How a model or endpoint embeds texts. */
export interface EmbeddingScript {
  /** Vector of a text. Default: {@link hashedTrigramEmbedding} (normalized). */
  readonly embed?: (text: string, dimensions: number) => number[];
}

/** A SageMaker embedding endpoint. */
export interface EmbeddingEndpointScript extends EmbeddingScript {
  readonly dimensions: number;
  /** `array`: `[[...], ...]` (TEI `/embed`); `embeddings`: `{ "embeddings": [[...], ...] }`. Default `array`. */
  readonly format?: 'array' | 'embeddings';
}

/** The output sizes Titan Text Embeddings V2 accepts. */
const TITAN_V2_DIMENSIONS = [256, 512, 1024];

/**
 * A deterministic embedding: hashed character trigrams of the lower-cased text (with word
 * boundaries), each adding ±1 to one of `dimensions` components, normalized to unit length.
 * Texts that share most trigrams get a high cosine similarity.
 */
export function hashedTrigramEmbedding(text: string, dimensions: number): number[] {
  const v = new Array<number>(dimensions).fill(0);
  const padded = ` ${text.toLowerCase().replace(/\s+/g, ' ').trim()} `;
  for (let i = 0; i + 3 <= padded.length; i++) {
    const digest = createHash('sha256').update(padded.slice(i, i + 3)).digest();
    v[digest.readUInt32BE(0) % dimensions] += digest[4] < 128 ? 1 : -1;
  }
  const norm = Math.sqrt(v.reduce((n, x) => n + x * x, 0));
  return norm > 0 ? v.map((x) => x / norm) : v;
}

export interface SecretCall {
  readonly secretId: string;
  readonly found: boolean;
}

export interface ParameterCall {
  readonly name: string;
  readonly found: boolean;
}

const ACCOUNT = '111122223333';

/** Minimal common surface of `http.ServerResponse` and `http2.Http2ServerResponse`. */
interface AnyResponse {
  statusCode: number;
  readonly writableEnded: boolean;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
  once(event: 'close', listener: () => void): unknown;
}

interface AnyRequest extends AsyncIterable<Buffer | string> {
  readonly httpVersion: string;
  readonly method?: string;
  readonly url?: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

function words(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

export class LocalAwsServer {
  /** Starts both listeners on free ports of 127.0.0.1. */
  static async start(options: { region?: string } = {}): Promise<LocalAwsServer> {
    const server = new LocalAwsServer(options.region ?? 'us-east-1');
    await server.listen();
    return server;
  }

  /** Every model call, in arrival order. */
  readonly calls: RecordedCall[] = [];
  /** Every GetSecretValue call, in arrival order. */
  readonly secretCalls: SecretCall[] = [];
  /** Every GetParameter call, in arrival order. */
  readonly parameterCalls: ParameterCall[] = [];
  /** Every embedding call (Bedrock InvokeModel, SageMaker embedding endpoints), in arrival order. */
  readonly embeddingCalls: EmbeddingCall[] = [];
  /** TCP connections accepted since start (or {@link resetConnectionCounts}), per listener. */
  readonly connections = { http1: 0, http2: 0 };

  private readonly scripts = new Map<string, ModelScript>();
  private readonly failures = new Map<string, InjectedFailure[]>();
  private readonly secretFailures: InjectedFailure[] = [];
  private readonly secrets = new Map<string, { arn: string; name: string; value: string }>();
  private readonly parameters = new Map<string, string>();
  private readonly parameterFailures: InjectedFailure[] = [];
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly pendingHangs = new Set<() => void>();
  private defaultScript: ModelScript = {};
  private readonly embeddingScripts = new Map<string, EmbeddingScript>();
  private readonly embeddingEndpoints = new Map<string, EmbeddingEndpointScript>();

  private constructor(readonly region: string) {
    const onRequest = (req: AnyRequest, res: AnyResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.writableEnded) this.sendError(res, 500, 'InternalFailure', `local server error: ${String(err)}`);
      });
    };
    this.h1 = http.createServer((req, res) => onRequest(req, res));
    this.h2 = http2.createServer((req, res) => onRequest(req, res));
    this.h1.on('connection', () => this.connections.http1++);
    this.h2.on('connection', () => this.connections.http2++);
    this.h2.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
  }

  /** Plaintext HTTP/2 (h2c) URL: for clients on NodeHttp2Handler (Bedrock Runtime). */
  get http2Url(): string {
    return `http://127.0.0.1:${(this.h2.address() as AddressInfo).port}`;
  }

  /** HTTP/1.1 URL: for clients on NodeHttpHandler (SageMaker Runtime, Secrets Manager). */
  get http1Url(): string {
    return `http://127.0.0.1:${(this.h1.address() as AddressInfo).port}`;
  }

  /**
   * Environment that points the SDK's clients at this server (service-specific endpoint
   * variables), with a region and dummy static credentials.
   */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: this.http2Url,
      AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: this.http1Url,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: this.http1Url,
      AWS_ENDPOINT_URL_SSM: this.http1Url,
      AWS_REGION: this.region,
      AWS_DEFAULT_REGION: this.region,
      AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
      AWS_SECRET_ACCESS_KEY: 'local-test-secret',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  /** Sets the reply of one model (Bedrock model id or SageMaker endpoint name). */
  setModel(target: string, script: ModelScript): void {
    this.scripts.set(target, script);
  }

  /** Sets the reply of every model without its own script. */
  setDefault(script: ModelScript): void {
    this.defaultScript = script;
  }

  /** Makes the next `times` calls of a model fail (queued after failures already set). */
  failNext(target: string, failure: InjectedFailure, times = 1): void {
    const queue = this.failures.get(target) ?? [];
    for (let i = 0; i < times; i++) queue.push(failure);
    this.failures.set(target, queue);
  }

  /** Makes the next `times` GetSecretValue calls fail or hang (e.g. {@link Failures.hang}: accepted, never answered). */
  failNextSecret(failure: InjectedFailure, times = 1): void {
    for (let i = 0; i < times; i++) this.secretFailures.push(failure);
  }

  /** Stores a String parameter (GetParameter finds it by name). */
  putParameter(name: string, value: string): void {
    this.parameters.set(name, value);
  }

  /** Makes the next `times` GetParameter calls fail or hang. */
  failNextParameter(failure: InjectedFailure, times = 1): void {
    for (let i = 0; i < times; i++) this.parameterFailures.push(failure);
  }

  /** Starts counting {@link connections} from zero. */
  resetConnectionCounts(): void {
    this.connections.http1 = 0;
    this.connections.http2 = 0;
  }

  /** Stores a secret; returns its ARN. GetSecretValue finds it by ARN or by name. */
  putSecret(name: string, value: string): string {
    const arn = `arn:aws:secretsmanager:${this.region}:${ACCOUNT}:secret:${name}-AbCdEf`;
    const secret = { arn, name, value };
    this.secrets.set(arn, secret);
    this.secrets.set(name, secret);
    return arn;
  }

  /** Calls of one model (all models when `target` is absent). */
  callsOf(target?: string): RecordedCall[] {
    return target === undefined ? [...this.calls] : this.calls.filter((c) => c.request.target === target);
  }

  /**
   * Forgets the model calls, scripts and queued failures. Secrets and {@link secretCalls} stay:
   * a client reads a credential once and caches it, so its read may predate the current test.
   */
  reset(): void {
    this.calls.length = 0;
    this.scripts.clear();
    this.failures.clear();
    this.defaultScript = {};
    this.embeddingCalls.length = 0;
    this.embeddingScripts.clear();
    this.embeddingEndpoints.clear();
    this.secretFailures.length = 0;
    this.parameterFailures.length = 0;
  }

  /** Sets how a Bedrock embedding model embeds (default: {@link hashedTrigramEmbedding}). */
  setEmbeddingModel(modelId: string, script: EmbeddingScript): void {
    this.embeddingScripts.set(modelId, script);
  }

  /** Makes a SageMaker endpoint an embedding container (instead of an OpenAI chat container). */
  setEmbeddingEndpoint(endpointName: string, script: EmbeddingEndpointScript): void {
    this.embeddingEndpoints.set(endpointName, script);
  }

  /** Closes both listeners, dropping open connections and pending hangs. */
  async close(): Promise<void> {
    for (const cancel of [...this.pendingHangs]) cancel();
    for (const session of this.sessions) session.destroy();
    this.h1.closeAllConnections();
    await Promise.all([
      new Promise<void>((resolve) => this.h1.close(() => resolve())),
      new Promise<void>((resolve) => this.h2.close(() => resolve())),
    ]);
  }

  private async listen(): Promise<void> {
    await Promise.all(
      [this.h1, this.h2].map(
        (srv) =>
          new Promise<void>((resolve, reject) => {
            srv.once('error', reject);
            srv.listen(0, '127.0.0.1', () => resolve());
          }),
      ),
    );
  }

  private async handle(req: AnyRequest, res: AnyResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://local');
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    };
    if (req.method !== 'POST') return this.sendError(res, 404, 'UnknownOperationException', `${req.method} ${url.pathname}`);

    const converse = /^\/model\/([^/]+)\/converse$/.exec(url.pathname);
    if (converse) return this.model(res, 'bedrock', decodeURIComponent(converse[1]), raw, req);
    const invokeModel = /^\/model\/([^/]+)\/invoke$/.exec(url.pathname);
    if (invokeModel) return this.embedding(res, 'bedrock', decodeURIComponent(invokeModel[1]), raw, req);
    const invoke = /^\/endpoints\/([^/]+)\/invocations$/.exec(url.pathname);
    if (invoke && this.embeddingEndpoints.has(decodeURIComponent(invoke[1]))) {
      return this.embedding(res, 'sagemaker', decodeURIComponent(invoke[1]), raw, req);
    }
    if (invoke) return this.model(res, 'sagemaker', decodeURIComponent(invoke[1]), raw, req);
    if (url.pathname === '/' && header('x-amz-target') === 'secretsmanager.GetSecretValue') return this.getSecretValue(res, raw);
    if (url.pathname === '/' && header('x-amz-target') === 'AmazonSSM.GetParameter') return this.getParameter(res, raw);
    return this.sendError(res, 404, 'UnknownOperationException', `no such operation: POST ${url.pathname} (${header('x-amz-target') ?? 'no X-Amz-Target'})`);
  }

  private async model(
    res: AnyResponse,
    service: 'bedrock' | 'sagemaker',
    target: string,
    raw: string,
    req: AnyRequest,
  ): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return this.sendError(res, 400, service === 'bedrock' ? 'ValidationException' : 'ValidationError', 'request body is not JSON');
    }
    const request = service === 'bedrock' ? fromConverse(target, body) : fromOpenAiChat(target, body);
    const call: RecordedCall = {
      request,
      body,
      headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !k.startsWith(':')).map(([k, v]) => [k, String(v)])),
      httpVersion: req.httpVersion,
      outcome: 'ok',
    };
    this.calls.push(call);

    const failure = this.failures.get(target)?.shift();
    if (failure?.kind === 'error') {
      call.outcome = failure.errorType;
      call.status = failure.status;
      return this.sendError(res, failure.status, failure.errorType, failure.message ?? failure.errorType);
    }
    if (failure?.kind === 'hang') {
      const stillWanted = await this.hold(res, failure.ms);
      if (!stillWanted) {
        call.outcome = 'aborted';
        return;
      }
    }

    const script = this.scripts.get(target) ?? this.defaultScript;
    const lastUser = [...request.messages].reverse().find((m) => m.role === 'user')?.text ?? '';
    const text = typeof script.reply === 'function' ? script.reply(request) : (script.reply ?? `[${target}] ${lastUser}`);
    const promptText = [request.system ?? '', ...request.messages.map((m) => m.text)].join(' ');
    const usage = script.usage ?? { inputTokens: words(promptText), outputTokens: words(text) };
    call.status = 200;
    call.response = { text, usage };
    if (script.rawBody !== undefined && !res.writableEnded) {
      res.statusCode = 200;
      res.setHeader('content-type', 'application/json');
      res.end(script.rawBody);
      return;
    }
    if (script.body !== undefined) {
      if (service === 'sagemaker') res.setHeader('x-amzn-invoked-production-variant', 'AllTraffic');
      return this.send(res, 200, 'application/json', script.body);
    }
    if (service === 'bedrock') {
      return this.send(res, 200, 'application/json', {
        output: { message: { role: 'assistant', content: [{ text }] } },
        stopReason: script.stopReason ?? 'end_turn',
        usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, totalTokens: usage.inputTokens + usage.outputTokens },
        metrics: { latencyMs: 1 },
        ...servedTierField(script.servedTier === undefined ? request.serviceTier : script.servedTier),
      });
    }
    res.setHeader('x-amzn-invoked-production-variant', 'AllTraffic');
    return this.send(res, 200, 'application/json', {
      id: `chatcmpl-${this.calls.length}`,
      object: 'chat.completion',
      model: target,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: script.stopReason ?? 'stop' }],
      usage: { prompt_tokens: usage.inputTokens, completion_tokens: usage.outputTokens, total_tokens: usage.inputTokens + usage.outputTokens },
    });
  }

  /**
   * Bedrock `InvokeModel` on a Titan-style embedding model, or `InvokeEndpoint` on an embedding
   * endpoint: validates the body as the service would, records the call, applies queued failures.
   */
  private async embedding(res: AnyResponse, service: 'bedrock' | 'sagemaker', target: string, raw: string, req: AnyRequest): Promise<void> {
    const validation = service === 'bedrock' ? 'ValidationException' : 'ValidationError';
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return this.sendError(res, 400, validation, 'request body is not JSON');
    }
    const b = (body ?? {}) as { inputText?: unknown; dimensions?: unknown; normalize?: unknown; inputs?: unknown };
    const inputs = service === 'bedrock'
      ? (typeof b.inputText === 'string' ? [b.inputText] : [])
      : (typeof b.inputs === 'string' ? [b.inputs] : Array.isArray(b.inputs) ? b.inputs.map(String) : []);
    const call: EmbeddingCall = {
      service,
      target,
      body,
      inputs,
      headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !k.startsWith(':')).map(([k, v]) => [k, String(v)])),
      httpVersion: req.httpVersion,
      outcome: 'ok',
    };
    this.embeddingCalls.push(call);
    const reject = (status: number, errorType: string, message: string): void => {
      call.outcome = errorType;
      call.status = status;
      this.sendError(res, status, errorType, message);
    };

    const failure = this.failures.get(target)?.shift();
    if (failure?.kind === 'error') return reject(failure.status, failure.errorType, failure.message ?? failure.errorType);
    if (failure?.kind === 'hang' && !(await this.hold(res, failure.ms))) {
      call.outcome = 'aborted';
      return;
    }

    if (service === 'bedrock') {
      if (typeof b.inputText !== 'string' || b.inputText.length === 0) {
        return reject(400, validation, 'Malformed input request: #/inputText: expected minLength: 1, please reformat your input and try again.');
      }
      const dimensions = b.dimensions === undefined ? 1024 : b.dimensions;
      if (typeof dimensions !== 'number' || !TITAN_V2_DIMENSIONS.includes(dimensions)) {
        return reject(400, validation, `Malformed input request: #/dimensions: ${String(dimensions)} is not a valid enum value, please reformat your input and try again.`);
      }
      const embed = this.embeddingScripts.get(target)?.embed ?? hashedTrigramEmbedding;
      const embedding = embed(b.inputText, dimensions);
      const inputTextTokenCount = words(b.inputText);
      call.status = 200;
      res.setHeader('x-amzn-bedrock-input-token-count', String(inputTextTokenCount));
      res.setHeader('x-amzn-bedrock-invocation-latency', '1');
      return this.send(res, 200, 'application/json', { embedding, inputTextTokenCount });
    }

    const endpoint = this.embeddingEndpoints.get(target)!;
    if (inputs.length === 0) return reject(400, validation, 'inputs must be a string or a non-empty array of strings');
    const embed = endpoint.embed ?? hashedTrigramEmbedding;
    const vectors = inputs.map((text) => embed(text, endpoint.dimensions));
    call.status = 200;
    res.setHeader('x-amzn-invoked-production-variant', 'AllTraffic');
    return this.send(res, 200, 'application/json', endpoint.format === 'embeddings' ? { embeddings: vectors } : vectors);
  }

  /** Waits `ms`; resolves false when the client went away (or the server closes) first. */
  private hold(res: AnyResponse, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (wanted: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.pendingHangs.delete(cancel);
        resolve(wanted);
      };
      const cancel = (): void => finish(false);
      const timer = setTimeout(() => finish(true), ms);
      this.pendingHangs.add(cancel);
      res.once('close', cancel);
    });
  }

  private async getSecretValue(res: AnyResponse, raw: string): Promise<void> {
    const failure = this.secretFailures.shift();
    if (failure?.kind === 'error') return this.sendError(res, failure.status, failure.errorType, failure.message ?? failure.errorType, 'application/x-amz-json-1.1');
    if (failure?.kind === 'hang' && !(await this.hold(res, failure.ms))) return;
    let secretId = '';
    try {
      secretId = String((JSON.parse(raw) as { SecretId?: unknown }).SecretId ?? '');
    } catch {
      // handled below
    }
    const secret = this.secrets.get(secretId);
    this.secretCalls.push({ secretId, found: secret !== undefined });
    if (!secret) {
      return this.sendError(res, 400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.", 'application/x-amz-json-1.1');
    }
    return this.send(res, 200, 'application/x-amz-json-1.1', {
      ARN: secret.arn,
      Name: secret.name,
      SecretString: secret.value,
      VersionId: '00000000-0000-0000-0000-000000000001',
      VersionStages: ['AWSCURRENT'],
      CreatedDate: 1_700_000_000,
    });
  }

  private async getParameter(res: AnyResponse, raw: string): Promise<void> {
    const failure = this.parameterFailures.shift();
    if (failure?.kind === 'error') return this.sendError(res, failure.status, failure.errorType, failure.message ?? failure.errorType, 'application/x-amz-json-1.1');
    if (failure?.kind === 'hang' && !(await this.hold(res, failure.ms))) return;
    let name = '';
    try {
      name = String((JSON.parse(raw) as { Name?: unknown }).Name ?? '');
    } catch {
      // handled below
    }
    const value = this.parameters.get(name);
    this.parameterCalls.push({ name, found: value !== undefined });
    if (value === undefined) return this.sendError(res, 400, 'ParameterNotFound', `Parameter ${name} not found.`, 'application/x-amz-json-1.1');
    return this.send(res, 200, 'application/x-amz-json-1.1', {
      Parameter: {
        Name: name,
        Type: 'String',
        Value: value,
        Version: 1,
        ARN: `arn:aws:ssm:${this.region}:${ACCOUNT}:parameter/${name}`,
        DataType: 'text',
        LastModifiedDate: 1_700_000_000,
      },
    });
  }

  private send(res: AnyResponse, status: number, contentType: string, body: unknown): void {
    if (res.writableEnded) return;
    res.statusCode = status;
    res.setHeader('content-type', contentType);
    res.setHeader('x-amzn-requestid', `local-${Date.now().toString(36)}-${this.calls.length}`);
    res.end(JSON.stringify(body));
  }

  private sendError(res: AnyResponse, status: number, errorType: string, message: string, contentType = 'application/json'): void {
    if (res.writableEnded) return;
    res.setHeader('x-amzn-errortype', errorType);
    this.send(res, status, contentType, { __type: errorType, message });
  }
}

function blocksText(blocks: unknown): string {
  if (!Array.isArray(blocks)) return '';
  return blocks.map((b) => (typeof (b as { text?: unknown })?.text === 'string' ? (b as { text: string }).text : '')).join('');
}

/** Normalizes a Converse request body. */
function fromConverse(target: string, body: unknown): ModelCallRequest {
  const b = (body ?? {}) as {
    messages?: Array<{ role?: string; content?: unknown }>;
    system?: unknown;
    inferenceConfig?: { maxTokens?: number; temperature?: number };
    serviceTier?: { type?: unknown };
  };
  const system = Array.isArray(b.system) ? blocksText(b.system) : undefined;
  return {
    service: 'bedrock',
    target,
    system: system || undefined,
    messages: (b.messages ?? []).map((m) => ({ role: String(m.role), text: blocksText(m.content) })),
    maxTokens: b.inferenceConfig?.maxTokens,
    temperature: b.inferenceConfig?.temperature,
    serviceTier: typeof b.serviceTier?.type === 'string' ? b.serviceTier.type : undefined,
  };
}

/** The Converse response's `serviceTier` member, when there is a tier to report. */
function servedTierField(tier: string | null | undefined): { serviceTier?: { type: string } } {
  return tier ? { serviceTier: { type: tier } } : {};
}

/** Normalizes an OpenAI chat-completions request body. */
function fromOpenAiChat(target: string, body: unknown): ModelCallRequest {
  const b = (body ?? {}) as { messages?: Array<{ role?: string; content?: unknown }>; max_tokens?: number; temperature?: number };
  const all = (b.messages ?? []).map((m) => ({ role: String(m.role), text: typeof m.content === 'string' ? m.content : blocksText(m.content) }));
  const system = all.filter((m) => m.role === 'system').map((m) => m.text).join('\n');
  return {
    service: 'sagemaker',
    target,
    system: system || undefined,
    messages: all.filter((m) => m.role !== 'system'),
    maxTokens: b.max_tokens,
    temperature: b.temperature,
  };
}
