/**
 * The translation between plain HTTP and what API Gateway HTTP APIs hand a Lambda integration
 * with payload format 2.0: the request as an `APIGatewayProxyEventV2` with an authorizer context,
 * a Lambda `Context` whose remaining time is the request's deadline, and the function's result back
 * into an HTTP status, headers, cookies and body. `cdk-scalable-ai serve` runs the router bundle on
 * it, and the handler tests build their events with it: one implementation of the event shape.
 *
 * What API Gateway does and this follows (developer guide, "Create AWS Lambda proxy integrations
 * for HTTP APIs"): header names are lower-cased and duplicate headers joined with commas; Cookie
 * headers go to `cookies` (joined, then split on `;`), not to `headers`; duplicate query parameters
 * are joined with commas; a binary body is base64-encoded with `isBase64Encoded`; each of the
 * result's `cookies` becomes a `set-cookie` header; a result without `statusCode` is a 200 whose
 * JSON-serialized value is the body.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';

/** The account id the local events and contexts carry (an AWS example account id: no real account). */
export const LOCAL_ACCOUNT_ID = '111122223333';

/** The authorizer verdict an event carries: an IAM caller, JWT claims, or none (no `authorizer` at all). */
export interface LocalAuthorizer {
  /** IAM authorizer: the caller's principal ARN, and the Cognito identity it signed with, if any. */
  readonly iam?: { readonly userArn: string; readonly cognitoIdentityId?: string };
  /** JWT authorizer: the verified token's claims. */
  readonly jwt?: { readonly claims: Record<string, string>; readonly scopes?: string[] };
}

/** One HTTP request, as node:http (or a test) has it. */
export interface HttpRequestInput {
  readonly method: string;
  /** Path and query string, e.g. `/v1/static-answers?q=returns`. */
  readonly url: string;
  /** Header names in any case; repeated headers as arrays. */
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The raw body (bytes or text); undefined or empty: no body. */
  readonly body?: Buffer | string;
  /** Base64-encode the body even when it is text (as API Gateway does for binary media). */
  readonly forceBase64?: boolean;
  /** Undefined: the event has no authorizer context (an unauthenticated route). */
  readonly authorizer?: LocalAuthorizer;
  /** @default `$METHOD $PATH` (the route an HTTP API with explicit routes matched) */
  readonly routeKey?: string;
  /** @default '127.0.0.1' */
  readonly sourceIp?: string;
  /** @default a random id */
  readonly requestId?: string;
  /** @default Date.now() */
  readonly timeEpoch?: number;
  /** @default 'HTTP/1.1' */
  readonly protocol?: string;
  /** @default 'localhost' */
  readonly domainName?: string;
}

/** The HTTP response a function result stands for. */
export interface HttpResponseOutput {
  readonly statusCode: number;
  /** Lower-cased header names; `set-cookie` holds one entry per cookie. */
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

/** Media types whose bodies stay text in the event (API Gateway base64-encodes others). */
const TEXT_MEDIA = /^(text\/|application\/(json|[\w.+-]+\+json|xml|[\w.+-]+\+xml|x-www-form-urlencoded|javascript|graphql))/i;

/** The payload 2.0 event of one request. */
export function toHttpApiEvent(input: HttpRequestInput): APIGatewayProxyEventV2 {
  const method = input.method.toUpperCase();
  const queryAt = input.url.indexOf('?');
  const rawPath = queryAt >= 0 ? input.url.slice(0, queryAt) : input.url;
  const rawQueryString = queryAt >= 0 ? input.url.slice(queryAt + 1) : '';
  const headers: Record<string, string> = {};
  const cookieHeaders: string[] = [];
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const values = typeof value === 'string' ? [value] : [...value];
    if (lower === 'cookie') cookieHeaders.push(...values);
    else headers[lower] = headers[lower] === undefined ? values.join(',') : `${headers[lower]},${values.join(',')}`;
  }
  const cookies = cookieHeaders.join(';').split(';').map((c) => c.trim()).filter(Boolean);
  const query = queryParameters(rawQueryString);
  const routeKey = input.routeKey ?? `${method} ${rawPath}`;
  const timeEpoch = input.timeEpoch ?? Date.now();
  const domainName = input.domainName ?? 'localhost';
  const body = bodyOf(input, headers['content-type'], headers['content-encoding']);
  const authorizer = authorizerContext(input.authorizer);
  const event: APIGatewayProxyEventV2 & { requestContext: { authorizer?: unknown } } = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(query ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: 'local',
      domainName,
      domainPrefix: domainName.split('.')[0],
      http: {
        method,
        path: rawPath,
        protocol: input.protocol ?? 'HTTP/1.1',
        sourceIp: input.sourceIp ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: input.requestId ?? randomUUID(),
      routeKey,
      stage: '$default',
      time: clfTime(timeEpoch),
      timeEpoch,
      ...(authorizer ? { authorizer } : {}),
    },
    ...(body ? { body: body.text } : {}),
    isBase64Encoded: body?.base64 ?? false,
  };
  return event;
}

/**
 * A Lambda context for one invocation whose remaining time runs out at `deadline` (epoch ms): the
 * router sizes its model and cache time limits from it, as in Lambda.
 */
export function lambdaContext(functionName: string, deadline: number, requestId: string = randomUUID()): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:${LOCAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The HTTP response API Gateway makes of a function's payload 2.0 result. */
export function fromHttpApiResult(result: unknown): HttpResponseOutput {
  if (!isStructured(result)) {
    // No statusCode: API Gateway answers 200 with the result, serialized, as a JSON body.
    const text = typeof result === 'string' ? result : JSON.stringify(result) ?? '';
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(text, 'utf8') };
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name.toLowerCase()] = String(value);
  if (result.cookies && result.cookies.length > 0) headers['set-cookie'] = [...result.cookies];
  const text = result.body ?? '';
  const body = result.isBase64Encoded ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
  return { statusCode: result.statusCode ?? 200, headers, body };
}

function isStructured(result: unknown): result is APIGatewayProxyStructuredResultV2 {
  return typeof result === 'object' && result !== null && typeof (result as { statusCode?: unknown }).statusCode === 'number';
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The event's body: text when it is text, else base64, so that no byte is lost: a compressed
 * body (`content-encoding`) or bytes that are not UTF-8 go base64 whatever the content type says.
 */
function bodyOf(
  input: HttpRequestInput,
  contentType: string | undefined,
  contentEncoding: string | undefined,
): { text: string; base64: boolean } | undefined {
  if (input.body === undefined || input.body.length === 0) return undefined;
  const bytes = typeof input.body === 'string' ? Buffer.from(input.body, 'utf8') : input.body;
  const textual = contentType === undefined || TEXT_MEDIA.test(contentType.trim());
  const encoded = contentEncoding !== undefined && contentEncoding.trim().toLowerCase() !== 'identity';
  if (input.forceBase64 || !textual || encoded) return { text: bytes.toString('base64'), base64: true };
  try {
    return { text: UTF8.decode(bytes), base64: false };
  } catch {
    return { text: bytes.toString('base64'), base64: true };
  }
}

function queryParameters(raw: string): Record<string, string> | undefined {
  if (raw === '') return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = out[k] === undefined ? v : `${out[k]},${v}`;
  return Object.keys(out).length > 0 ? out : undefined;
}

function authorizerContext(a: LocalAuthorizer | undefined): Record<string, unknown> | undefined {
  if (!a) return undefined;
  if (a.jwt) return { jwt: { claims: { ...a.jwt.claims }, scopes: a.jwt.scopes ?? null } };
  if (a.iam) {
    return {
      iam: {
        accessKey: 'ASIALOCAL',
        accountId: LOCAL_ACCOUNT_ID,
        callerId: 'AROALOCAL:local',
        cognitoIdentity: a.iam.cognitoIdentityId ? { amr: [], identityId: a.iam.cognitoIdentityId, identityPoolId: 'local' } : null,
        principalOrgId: null,
        userArn: a.iam.userArn,
        userId: 'AROALOCAL:local',
      },
    };
  }
  return {};
}

/** `27/Nov/2026:07:00:00 +0000`, the format of `requestContext.time`. */
function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
