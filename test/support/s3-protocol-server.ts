/**
 * A local server that speaks the S3 REST protocol (HTTP/1.1, path-style addressing) for what the
 * static answers loader uses, so its tests run the real `@aws-sdk/client-s3` (serialization,
 * signing, XML parsing, pagination, error deserialization) against it:
 *
 * - ListObjectsV2: `GET /{bucket}?list-type=2&prefix=&max-keys=&continuation-token=&start-after=`
 *   → `ListBucketResult` XML with `Contents` (Key, LastModified, ETag, Size, StorageClass),
 *   `KeyCount`, `MaxKeys`, `IsTruncated`, `ContinuationToken`, `NextContinuationToken`, keys in
 *   UTF-8 binary order. `encoding-type=url` is honoured. Pages hold at most
 *   {@link S3ServerOptions.maxKeysPerPage} keys (default 1,000 as in S3), so a test can force
 *   pagination with a small page.
 * - GetObject: `GET /{bucket}/{key}` → the bytes with `ETag`, `Content-Length`, `Last-Modified`.
 * - PutObject: `PUT /{bucket}/{key}` stores the body (with its `Content-Type`) and answers its
 *   `ETag`. The request headers (e.g. `x-amz-server-side-encryption`, checksums) are recorded in
 *   {@link S3Call.headers}. An `aws-chunked` body (the SDK sends one for streams of unknown length)
 *   is answered `NotImplemented`, so a test never stores a framed body by mistake. Failures can be
 *   injected with {@link LocalS3Server.failPut}.
 * - HeadBucket / HeadObject answer too (some tools probe with them).
 *
 * Errors use S3's documented XML error body (`<Error><Code>…</Code><Message>…</Message>…`):
 * `NoSuchBucket` (404), `NoSuchKey` (404), `InvalidArgument` (400), `NotImplemented` (501), and
 * injected failures (e.g. `InternalError` 500 or `SlowDown` 503). Requests are not authenticated.
 *
 * A virtual-hosted-style request (bucket in the Host name, e.g. `bucket.localhost`) is not
 * understood: the first path segment is always the bucket. A client that forgets path-style
 * addressing therefore fails here (NoSuchBucket), which is what the tests rely on.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3ServerOptions {
  /** Host to listen on and to put into {@link LocalS3Server.url} (default `127.0.0.1`). */
  readonly host?: string;
  /** Most keys one ListObjectsV2 page returns, whatever `max-keys` asks (default 1,000). */
  readonly maxKeysPerPage?: number;
  readonly region?: string;
}

/** One request as the server saw it. */
export interface S3Call {
  readonly operation: 'ListObjectsV2' | 'GetObject' | 'PutObject' | 'HeadObject' | 'HeadBucket' | 'Unknown';
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly host: string;
  readonly bucket?: string;
  readonly key?: string;
  /** Request headers (lower-case names), e.g. to check what a PutObject asked for. */
  readonly headers: Record<string, string>;
  /** HTTP status answered. */
  status: number;
}

/** A failure the server answers with instead of the real result, until {@link LocalS3Server.clearFailures}. */
export interface S3Failure {
  readonly status: number;
  readonly code: string;
  readonly message?: string;
}

interface StoredObject {
  readonly body: Buffer;
  readonly etag: string;
  readonly lastModified: Date;
  readonly contentType: string;
}

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Compares two keys by their UTF-8 bytes, the order ListObjectsV2 returns. */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class LocalS3Server {
  static async start(options: S3ServerOptions = {}): Promise<LocalS3Server> {
    const server = new LocalS3Server(options);
    await new Promise<void>((resolve, reject) => {
      server.http.once('error', reject);
      server.http.listen(0, server.host, () => resolve());
    });
    return server;
  }

  /** Every request, in arrival order. */
  readonly calls: S3Call[] = [];
  readonly host: string;
  readonly region: string;
  private readonly maxKeysPerPage: number;
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  private readonly listFailures = new Map<string, S3Failure>();
  private readonly getFailures = new Map<string, S3Failure>();
  private readonly putFailures = new Map<string, S3Failure>();
  private readonly http: http.Server;

  private constructor(options: S3ServerOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.region = options.region ?? 'us-east-1';
    this.maxKeysPerPage = options.maxKeysPerPage ?? 1_000;
    this.http = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.writableEnded) this.sendError(res, undefined, 500, 'InternalError', `local server error: ${String(err)}`, {});
      });
    });
  }

  /** Endpoint URL for the S3 client (`AWS_ENDPOINT_URL_S3` or `endpoint`). */
  get url(): string {
    const port = (this.http.address() as AddressInfo).port;
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${host}:${port}`;
  }

  /** Environment that points the S3 client here, with a region and dummy credentials. */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_S3: this.url,
      AWS_REGION: this.region,
      AWS_DEFAULT_REGION: this.region,
      AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
      AWS_SECRET_ACCESS_KEY: 'local-test-secret',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  createBucket(bucket: string): void {
    if (!this.buckets.has(bucket)) this.buckets.set(bucket, new Map());
  }

  /** Stores an object (creating the bucket); a non-string body is JSON-serialized. */
  putObject(bucket: string, key: string, body: string | Buffer | object, contentType = 'application/json'): void {
    this.createBucket(bucket);
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    this.buckets.get(bucket)!.set(key, {
      body: bytes,
      etag: `"${createHash('md5').update(bytes).digest('hex')}"`,
      lastModified: new Date(Math.floor(Date.now() / 1000) * 1000),
      contentType,
    });
  }

  deleteObject(bucket: string, key: string): void {
    this.buckets.get(bucket)?.delete(key);
  }

  /** The stored bytes of an object (undefined when absent), e.g. what a client wrote with PutObject. */
  getObject(bucket: string, key: string): { body: Buffer; contentType: string } | undefined {
    const o = this.buckets.get(bucket)?.get(key);
    return o && { body: o.body, contentType: o.contentType };
  }

  /** Keys of a bucket under `prefix`, in UTF-8 binary order. */
  keys(bucket: string, prefix = ''): string[] {
    return [...(this.buckets.get(bucket)?.keys() ?? [])].filter((k) => k.startsWith(prefix)).sort(byUtf8);
  }

  /** Removes every object of every bucket (the buckets stay) and the recorded calls and failures. */
  reset(): void {
    for (const objects of this.buckets.values()) objects.clear();
    this.calls.length = 0;
    this.clearFailures();
  }

  /** Every ListObjectsV2 of `bucket` fails with `failure` until cleared (the SDK's retries too). */
  failList(bucket: string, failure: S3Failure): void {
    this.listFailures.set(bucket, failure);
  }

  /** Every GetObject of `bucket`/`key` fails with `failure` until cleared. */
  failGet(bucket: string, key: string, failure: S3Failure): void {
    this.getFailures.set(`${bucket}/${key}`, failure);
  }

  /** Every PutObject into `bucket` fails with `failure` until cleared. */
  failPut(bucket: string, failure: S3Failure): void {
    this.putFailures.set(bucket, failure);
  }

  clearFailures(): void {
    this.listFailures.clear();
    this.getFailures.clear();
    this.putFailures.clear();
  }

  callsOf(operation: S3Call['operation']): S3Call[] {
    return this.calls.filter((c) => c.operation === operation);
  }

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    const url = new URL(req.url ?? '/', 'http://local');
    const query = Object.fromEntries(url.searchParams.entries());
    const [rawBucket = '', ...rest] = url.pathname.replace(/^\//, '').split('/');
    const bucket = decodeURIComponent(rawBucket) || undefined;
    const key = rest.length > 0 ? decodeURIComponent(rest.join('/')) : undefined;
    const method = req.method ?? 'GET';
    const operation: S3Call['operation'] = !bucket
      ? 'Unknown'
      : key === undefined || key === ''
        ? method === 'HEAD' ? 'HeadBucket' : method === 'GET' && query['list-type'] === '2' ? 'ListObjectsV2' : 'Unknown'
        : method === 'GET' ? 'GetObject'
          : method === 'PUT' && Object.keys(query).every((q) => q === 'x-id') ? 'PutObject' // x-id: the SDK's operation marker
            : method === 'HEAD' ? 'HeadObject' : 'Unknown';
    const requestHeaders = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]));
    const call: S3Call = {
      operation, method, path: url.pathname, query, host: req.headers.host ?? '', bucket, key: key || undefined, headers: requestHeaders, status: 0,
    };
    this.calls.push(call);
    const send = (status: number, headers: Record<string, string>, body: string | Buffer): void => {
      call.status = status;
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      res.statusCode = status;
      res.setHeader('x-amz-request-id', randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase());
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      res.setHeader('content-length', String(bytes.length));
      res.end(method === 'HEAD' ? undefined : bytes);
    };
    const fail = (status: number, code: string, message: string, extra: Record<string, string> = {}): void => {
      call.status = status;
      this.sendError(res, method, status, code, message, extra);
    };

    if (operation === 'Unknown') {
      return fail(501, 'NotImplemented', `The local S3 server does not implement ${method} ${url.pathname}?${url.searchParams.toString()}`);
    }
    const objects = this.buckets.get(bucket!);
    if (!objects) return fail(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket! });
    if (operation === 'HeadBucket') return send(200, {}, '');

    if (operation === 'ListObjectsV2') {
      const injected = this.listFailures.get(bucket!);
      if (injected) return fail(injected.status, injected.code, injected.message ?? injected.code);
      return this.listObjectsV2(bucket!, objects, query, send, fail);
    }

    if (operation === 'PutObject') {
      const injected = this.putFailures.get(bucket!);
      if (injected) return fail(injected.status, injected.code, injected.message ?? injected.code);
      if ((requestHeaders['content-encoding'] ?? '').split(',').map((e) => e.trim()).includes('aws-chunked')) {
        return fail(501, 'NotImplemented', 'aws-chunked uploads are not implemented by the local S3 server');
      }
      const body = Buffer.concat(chunks);
      this.putObject(bucket!, key!, body, requestHeaders['content-type'] ?? 'binary/octet-stream');
      return send(200, { etag: objects.get(key!)!.etag }, '');
    }

    const injected = this.getFailures.get(`${bucket}/${key}`);
    if (injected) return fail(injected.status, injected.code, injected.message ?? injected.code);
    const object = objects.get(key!);
    if (!object) return fail(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key! });
    return send(200, {
      'content-type': object.contentType,
      'etag': object.etag,
      'last-modified': object.lastModified.toUTCString(),
      'accept-ranges': 'bytes',
    }, object.body);
  }

  private listObjectsV2(
    bucket: string,
    objects: Map<string, StoredObject>,
    query: Record<string, string>,
    send: (status: number, headers: Record<string, string>, body: string) => void,
    fail: (status: number, code: string, message: string, extra?: Record<string, string>) => void,
  ): void {
    const prefix = query.prefix ?? '';
    const encode = query['encoding-type'] === 'url';
    if (query['encoding-type'] !== undefined && !encode) return fail(400, 'InvalidArgument', 'Invalid Encoding Method specified in Request');
    if (query.delimiter) return fail(501, 'NotImplemented', 'delimiter is not implemented by the local S3 server');
    const requested = query['max-keys'] === undefined ? 1_000 : Number(query['max-keys']);
    if (!Number.isInteger(requested) || requested < 0) return fail(400, 'InvalidArgument', 'max-keys must be a non-negative integer');
    const maxKeys = Math.min(requested, this.maxKeysPerPage);
    let after = query['start-after'] ?? '';
    const token = query['continuation-token'];
    if (token !== undefined) {
      // Our tokens are the base64 of the last key returned (S3's are opaque as well).
      if (!/^[A-Za-z0-9+/=]+$/.test(token)) return fail(400, 'InvalidArgument', 'The continuation token provided is incorrect');
      after = Buffer.from(token, 'base64').toString('utf8');
    }
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && byUtf8(k, after) > 0).sort(byUtf8);
    const page = keys.slice(0, maxKeys);
    const truncated = keys.length > page.length;
    const enc = (value: string): string => xmlEscape(encode ? encodeURIComponent(value).replace(/%2F/g, '/') : value);
    const contents = page.map((k) => {
      const o = objects.get(k)!;
      return `<Contents><Key>${enc(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified>` +
        `<ETag>${xmlEscape(o.etag)}</ETag><Size>${o.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
    }).join('');
    const body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<ListBucketResult xmlns="${XMLNS}">` +
      `<Name>${xmlEscape(bucket)}</Name><Prefix>${enc(prefix)}</Prefix>` +
      (query['start-after'] !== undefined ? `<StartAfter>${enc(query['start-after'])}</StartAfter>` : '') +
      `<KeyCount>${page.length}</KeyCount><MaxKeys>${requested}</MaxKeys>` +
      (encode ? '<EncodingType>url</EncodingType>' : '') +
      `<IsTruncated>${truncated}</IsTruncated>` +
      (token !== undefined ? `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>` : '') +
      (truncated ? `<NextContinuationToken>${Buffer.from(page[page.length - 1], 'utf8').toString('base64')}</NextContinuationToken>` : '') +
      contents +
      '</ListBucketResult>';
    send(200, { 'content-type': 'application/xml' }, body);
  }

  private sendError(
    res: http.ServerResponse,
    method: string | undefined,
    status: number,
    code: string,
    message: string,
    extra: Record<string, string>,
  ): void {
    const requestId = randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase();
    const body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message>` +
      Object.entries(extra).map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`).join('') +
      `<RequestId>${requestId}</RequestId><HostId>local</HostId></Error>`;
    res.statusCode = status;
    res.setHeader('content-type', 'application/xml');
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('content-length', String(Buffer.byteLength(body)));
    res.end(method === 'HEAD' ? undefined : body);
  }
}
