/**
 * A local server that speaks the Amazon Bedrock control-plane protocol (restJson1 over HTTP/1.1:
 * the SDK's `BedrockClient` uses NodeHttpHandler) for batch inference, so tests run the real
 * `@aws-sdk/client-bedrock` (serialization, signing, idempotency token, error deserialization)
 * against it:
 *
 * - CreateModelInvocationJob: `POST /model-invocation-job` with the JSON body of
 *   `CreateModelInvocationJobRequest`, answered `{ "jobArn": "arn:aws:bedrock:<region>:<account>:model-invocation-job/<12 [a-z0-9]>" }`.
 *   The body is validated the way the API reference documents it (required members, `jobName`
 *   pattern and length 1-63, `clientRequestToken` pattern and length 1-256, `roleArn` pattern,
 *   `timeoutDurationInHours` 24-168, `modelInvocationType` `InvokeModel | Converse`, `s3://` URIs),
 *   answering `ValidationException` (400) otherwise. A request that repeats an earlier
 *   `clientRequestToken` gets the earlier job's ARN and creates nothing (the documented
 *   idempotency).
 * - GetModelInvocationJob: `GET /model-invocation-job/{jobIdentifier}` (ARN or id), for tools
 *   that look a job up after creating it.
 *
 * Errors are an HTTP status with the `x-amzn-errortype` header and a `{ "message" }` body, which
 * the SDK turns into an exception whose `name` is the error type. Every request is recorded.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

const ACCOUNT = '111122223333';

/** A CreateModelInvocationJob request as the server saw it. */
export interface RecordedJobRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  /** The parsed JSON body exactly as the client sent it. */
  readonly body: Record<string, unknown>;
  /** `ok`, `idempotent-replay` or the error type answered. */
  outcome: string;
  status: number;
  jobArn?: string;
}

/** A job the server created. */
export interface CreatedJob {
  readonly jobArn: string;
  readonly request: Record<string, unknown>;
  readonly submitTime: Date;
}

export interface ControlPlaneFailure {
  readonly status: number;
  readonly errorType: string;
  readonly message?: string;
}

/** The errors the real service sends for CreateModelInvocationJob. */
export const ControlPlaneFailures = {
  throttling: (): ControlPlaneFailure => ({ status: 429, errorType: 'ThrottlingException', message: 'Too many requests, please wait before trying again.' }),
  validation: (message = 'The provided request is not valid'): ControlPlaneFailure => ({ status: 400, errorType: 'ValidationException', message }),
  quota: (): ControlPlaneFailure => ({ status: 400, errorType: 'ServiceQuotaExceededException', message: 'The number of in-progress batch inference jobs exceeds the quota.' }),
  accessDenied: (): ControlPlaneFailure => ({ status: 403, errorType: 'AccessDeniedException', message: 'User is not authorized to perform: iam:PassRole' }),
  internal: (): ControlPlaneFailure => ({ status: 500, errorType: 'InternalServerException', message: 'Internal server error.' }),
};

const JOB_NAME = /^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9+\-.]){0,63}$/;
const CLIENT_TOKEN = /^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$/;
const ROLE_ARN = /^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role\/.+$/;
const S3_URI = /^s3:\/\/[a-z0-9][\.\-a-z0-9]{1,61}[a-z0-9](\/.*)?$/;

export class LocalBedrockControlServer {
  static async start(options: { region?: string } = {}): Promise<LocalBedrockControlServer> {
    const server = new LocalBedrockControlServer(options.region ?? 'us-east-1');
    await new Promise<void>((resolve, reject) => {
      server.http.once('error', reject);
      server.http.listen(0, '127.0.0.1', () => resolve());
    });
    return server;
  }

  /** Every request, in arrival order. */
  readonly requests: RecordedJobRequest[] = [];
  /** Jobs created, in creation order. */
  readonly jobs: CreatedJob[] = [];
  private readonly byToken = new Map<string, CreatedJob>();
  private readonly failures: ControlPlaneFailure[] = [];
  private readonly http: http.Server;

  private constructor(readonly region: string) {
    this.http = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.writableEnded) this.sendError(res, 500, 'InternalServerException', `local server error: ${String(err)}`);
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** Environment that points `BedrockClient` here (`AWS_ENDPOINT_URL_BEDROCK`), with a region and dummy credentials. */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_BEDROCK: this.url,
      AWS_REGION: this.region,
      AWS_DEFAULT_REGION: this.region,
      AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
      AWS_SECRET_ACCESS_KEY: 'local-test-secret',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  /** Makes the next `times` CreateModelInvocationJob requests fail (queued after failures already set). */
  failNext(failure: ControlPlaneFailure, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push(failure);
  }

  /** Forgets requests, jobs and queued failures. */
  reset(): void {
    this.requests.length = 0;
    this.jobs.length = 0;
    this.byToken.clear();
    this.failures.length = 0;
  }

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    const path = new URL(req.url ?? '/', 'http://local').pathname;
    const method = req.method ?? 'GET';

    if (method === 'GET') {
      const get = /^\/model-invocation-job\/(.+)$/.exec(path);
      if (!get) return this.sendError(res, 404, 'UnknownOperationException', `${method} ${path}`);
      const id = decodeURIComponent(get[1]);
      const job = this.jobs.find((j) => j.jobArn === id || j.jobArn.endsWith(`/${id}`));
      if (!job) return this.sendError(res, 404, 'ResourceNotFoundException', `Job ${id} not found`);
      return this.send(res, 200, {
        ...job.request,
        jobArn: job.jobArn,
        status: 'Submitted',
        submitTime: job.submitTime.toISOString(),
      });
    }
    if (method !== 'POST' || path !== '/model-invocation-job') {
      return this.sendError(res, 404, 'UnknownOperationException', `${method} ${path}`);
    }

    let body: Record<string, unknown> = {};
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]));
    const call: RecordedJobRequest = { method, path, headers, body, outcome: 'ok', status: 0 };
    this.requests.push(call);
    const reject = (status: number, errorType: string, message: string): void => {
      call.outcome = errorType;
      call.status = status;
      this.sendError(res, status, errorType, message);
    };
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
      (call as { body: Record<string, unknown> }).body = body;
    } catch {
      return reject(400, 'SerializationException', 'request body is not JSON');
    }

    const failure = this.failures.shift();
    if (failure) return reject(failure.status, failure.errorType, failure.message ?? failure.errorType);

    const invalid = validate(body);
    if (invalid) return reject(400, 'ValidationException', invalid);

    const token = body.clientRequestToken as string | undefined;
    const earlier = token === undefined ? undefined : this.byToken.get(token);
    if (earlier) {
      call.outcome = 'idempotent-replay';
      call.status = 200;
      call.jobArn = earlier.jobArn;
      return this.send(res, 200, { jobArn: earlier.jobArn });
    }
    const id = Array.from(randomBytes(12), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');
    const job: CreatedJob = { jobArn: `arn:aws:bedrock:${this.region}:${ACCOUNT}:model-invocation-job/${id}`, request: body, submitTime: new Date() };
    this.jobs.push(job);
    if (token !== undefined) this.byToken.set(token, job);
    call.status = 200;
    call.jobArn = job.jobArn;
    return this.send(res, 200, { jobArn: job.jobArn });
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    if (res.writableEnded) return;
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.setHeader('x-amzn-requestid', `local-${Date.now().toString(36)}-${this.requests.length}`);
    res.setHeader('content-length', String(Buffer.byteLength(text)));
    res.end(text);
  }

  private sendError(res: http.ServerResponse, status: number, errorType: string, message: string): void {
    if (res.writableEnded) return;
    res.setHeader('x-amzn-errortype', errorType);
    this.send(res, status, { message });
  }
}

/** The CreateModelInvocationJob constraints of the API reference; a message for the first violation. */
function validate(b: Record<string, unknown>): string | undefined {
  const str = (name: string): string | undefined => (typeof b[name] === 'string' ? (b[name] as string) : undefined);
  for (const name of ['jobName', 'roleArn', 'modelId']) {
    if (!str(name)) return `1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`;
  }
  const jobName = str('jobName')!;
  if (jobName.length > 63 || !JOB_NAME.test(jobName)) return `Value '${jobName}' at 'jobName' failed to satisfy constraint: Member must satisfy regular expression pattern and have length 1-63`;
  if (!ROLE_ARN.test(str('roleArn')!)) return `Value at 'roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: ${ROLE_ARN.source}`;
  const token = b.clientRequestToken;
  if (token !== undefined && (typeof token !== 'string' || token.length > 256 || !CLIENT_TOKEN.test(token))) {
    return `Value '${String(token)}' at 'clientRequestToken' failed to satisfy constraint: Member must satisfy regular expression pattern: ${CLIENT_TOKEN.source}`;
  }
  const hours = b.timeoutDurationInHours;
  if (hours !== undefined && (typeof hours !== 'number' || !Number.isInteger(hours) || hours < 24 || hours > 168)) {
    return `Value '${String(hours)}' at 'timeoutDurationInHours' failed to satisfy constraint: Member must have value between 24 and 168`;
  }
  const type = b.modelInvocationType;
  if (type !== undefined && type !== 'InvokeModel' && type !== 'Converse') {
    return `Value '${String(type)}' at 'modelInvocationType' failed to satisfy constraint: Member must satisfy enum value set: [InvokeModel, Converse]`;
  }
  const input = (b.inputDataConfig as { s3InputDataConfig?: { s3Uri?: unknown; s3InputFormat?: unknown } } | undefined)?.s3InputDataConfig;
  if (!input || typeof input.s3Uri !== 'string' || !S3_URI.test(input.s3Uri)) return "Value at 'inputDataConfig.s3InputDataConfig.s3Uri' failed to satisfy constraint: Member must be an s3:// URI";
  if (input.s3InputFormat !== undefined && input.s3InputFormat !== 'JSONL') return "Value at 'inputDataConfig.s3InputDataConfig.s3InputFormat' failed to satisfy constraint: Member must satisfy enum value set: [JSONL]";
  const output = (b.outputDataConfig as { s3OutputDataConfig?: { s3Uri?: unknown } } | undefined)?.s3OutputDataConfig;
  if (!output || typeof output.s3Uri !== 'string' || !S3_URI.test(output.s3Uri)) return "Value at 'outputDataConfig.s3OutputDataConfig.s3Uri' failed to satisfy constraint: Member must be an s3:// URI";
  return undefined;
}
