/**
 * The router Lambda's dispatch, without Lambda or API Gateway types: which route a request is,
 * who sent it (from the authorizer context only, with every field type-checked), and the one
 * place where anything unexpected becomes a logged 500 without details.
 */
import type { Caller } from './cache-key';
import { callerFromAuthorizer, type AuthorizerContext } from './caller';
import { errorResponse, JSON_HEADERS, type HttpResponse } from './chat-endpoint';
import { edgeTenantHeaderValue } from './edge-tenant';
import { HttpError } from './errors';
import type { OriginSecretVerifier } from './origin-verification';
import type { MetricsRecorder } from './ports';
import { EDGE_TENANT_HEADER, HEALTH_PATH, ORIGIN_SECRET_HEADER } from '../../constructs/contract/edge';
import type { TenantSource } from '../../constructs/contract/runtime-config';

/** The routes of the router, by HTTP API route key. */
export const ROUTER_ROUTES = ['POST /v1/chat', 'GET /v1/static-answers', 'PUT /v1/context/preferences', 'DELETE /v1/context', 'POST /v1/feedback',
  'GET /v1/profile', 'PUT /v1/profile'] as const;
export type RouterRoute = (typeof ROUTER_ROUTES)[number];

/** What the dispatch reads of an HTTP API (payload 2.0) event. Anything may be missing or mistyped. */
export interface RouterEvent {
  readonly routeKey?: unknown;
  readonly body?: unknown;
  readonly isBase64Encoded?: unknown;
  readonly queryStringParameters?: unknown;
  readonly requestContext?: unknown;
  readonly headers?: unknown;
}

/** A request once dispatched: the route, its caller (undefined: unauthenticated) and its decoded body. */
export interface RoutedRequest {
  readonly caller: Caller | undefined;
  readonly body: string | undefined;
  readonly query: Readonly<Record<string, string | undefined>>;
  /**
   * The `x-edge-tenant` header of a request that passed origin verification (the edge verifier
   * set it); undefined without origin verification, where anyone could have sent it.
   */
  readonly edgeTenant?: string;
}

/** One function per route; each answers a response (its own 4xx/5xx included). */
export type RouteHandlers = Record<RouterRoute, (request: RoutedRequest) => Promise<HttpResponse>>;

export interface DispatchDeps {
  readonly tenant: { readonly source: TenantSource; readonly claim?: string };
  readonly metrics: MetricsRecorder;
  readonly logger: { error(message: string, attributes: Record<string, unknown>): void };
  /** With origin verification: every route but the health route needs a valid origin secret. */
  readonly origin?: OriginSecretVerifier;
}

/** The route Route 53 health checks call: no authorizer, no origin secret (they send no headers). */
export const HEALTH_ROUTE = `GET ${HEALTH_PATH}`;

/**
 * Dispatches one request: 404 for a route the router does not serve, else the route's handler
 * with the caller taken from the authorizer context. Never throws: anything unexpected, from
 * the route or from reading the event, is logged and answered 500 with no details.
 */
export async function dispatchRouterRequest(handlers: RouteHandlers, event: RouterEvent, deps: DispatchDeps): Promise<HttpResponse> {
  try {
    // Says the function runs and nothing else: no dependency's state to an unauthenticated caller.
    if (event.routeKey === HEALTH_ROUTE) return { statusCode: 200, headers: { ...JSON_HEADERS }, body: JSON.stringify({ status: 'ok' }) };
    const route = ROUTER_ROUTES.find((r) => r === event.routeKey);
    if (!route) {
      return errorResponse(new HttpError(404, `No route ${String(event.routeKey)}; this API serves ${ROUTER_ROUTES.join(', ')}`, 'not-found'), deps.metrics);
    }
    let edgeTenant: string | undefined;
    if (deps.origin) {
      const rejected = await verifyOrigin(deps.origin, event.headers, deps);
      if (rejected) return rejected;
      edgeTenant = headerOf(event.headers, EDGE_TENANT_HEADER);
    }
    const caller = callerOf(event.requestContext, deps.tenant) ?? edgeCaller(route, edgeTenant);
    return await handlers[route]({ caller, body: decodedBody(event), query: queryOf(event.queryStringParameters), edgeTenant });
  } catch (err) {
    return internalError(err, deps);
  }
}

/**
 * The caller of a request, from its authorizer context only; undefined (a 401 for the routes)
 * when there is no request context or authorizer, or when a field the tenant or user comes from
 * is not a string (the authorizer never sends one; whatever did is not authenticated).
 */
export function callerOf(requestContext: unknown, tenant: { readonly source: TenantSource; readonly claim?: string }): Caller | undefined {
  const authorizer = field(requestContext, 'authorizer');
  if (authorizer === undefined) return undefined;
  const iam = field(authorizer, 'iam');
  const jwt = field(authorizer, 'jwt');
  let checked: AuthorizerContext;
  if (tenant.source === 'jwt') {
    const claims = field(jwt, 'claims');
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
    // callerFromAuthorizer reads the tenant and `sub` claims only as strings.
    checked = { jwt: { claims: claims as Record<string, string> } };
  } else {
    const userArn = field(iam, 'userArn');
    const cognito = field(iam, 'cognitoIdentity');
    const identityId = field(cognito, 'identityId');
    if (typeof userArn !== 'string') return undefined;
    if (identityId !== undefined && identityId !== null && typeof identityId !== 'string') return undefined;
    checked = { iam: { userArn, cognitoIdentity: typeof identityId === 'string' ? { identityId } : null } };
  }
  const caller = callerFromAuthorizer(checked, tenant.source, tenant.claim);
  return caller && typeof caller.tenantId === 'string' && caller.tenantId.length > 0 ? caller : undefined;
}

/**
 * Behind the edge, the static answers route has no API Gateway authorizer: CloudFront forwards a
 * GET's Authorization header only when it is in the cache key, and the key holds the tenant
 * instead. The tenant is then the one the edge verifier took from the verified JWT, and only on
 * that route of a request that passed origin verification (`edgeTenant` is set only then).
 */
function edgeCaller(route: (typeof ROUTER_ROUTES)[number], edgeTenant: string | undefined): Caller | undefined {
  if (route !== 'GET /v1/static-answers' || edgeTenant === undefined) return undefined;
  let tenantId: string;
  try {
    tenantId = decodeURIComponent(edgeTenant);
  } catch {
    return undefined;
  }
  return tenantId.length > 0 && edgeTenantHeaderValue(tenantId) === edgeTenant ? { tenantId } : undefined;
}

/** The 403 (or, when the secret cannot be read, 503) of a request without a valid origin secret; undefined when it has one. */
async function verifyOrigin(origin: OriginSecretVerifier, headers: unknown, deps: DispatchDeps): Promise<HttpResponse | undefined> {
  const verdict = await origin.verify(headerOf(headers, ORIGIN_SECRET_HEADER));
  if (verdict === 'valid') return undefined;
  if (verdict === 'unavailable') {
    // Fail closed: a request that cannot be checked never gets around the edge and its WAF.
    return errorResponse(new HttpError(503, 'The service cannot verify requests right now. Retry after 5 seconds.', 'unavailable', { 'retry-after': '5' }), deps.metrics);
  }
  return errorResponse(new HttpError(403, 'This API is served through its CloudFront distribution; call the distribution\'s domain', 'forbidden-origin'), deps.metrics);
}

/** The 500 of an unexpected error: logged with its details, answered without them. */
export function internalError(err: unknown, deps: Pick<DispatchDeps, 'logger'>): HttpResponse {
  const e = err instanceof Error ? err : new Error(String(err));
  deps.logger.error('unexpected error', { error: { name: e.name, message: e.message, stack: e.stack } });
  return {
    statusCode: 500,
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({ error: { code: 'internal', message: 'Internal error' } }),
  };
}

/** The body as text (HTTP API base64-encodes binary bodies); undefined when there is none. */
export function decodedBody(event: Pick<RouterEvent, 'body' | 'isBase64Encoded'>): string | undefined {
  if (typeof event.body !== 'string') return undefined;
  return event.isBase64Encoded === true ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

function queryOf(raw: unknown): Record<string, string | undefined> {
  if (typeof raw !== 'object' || raw === null) return {};
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** A request header (HTTP API lower-cases their names); undefined unless a string. */
function headerOf(headers: unknown, name: string): string | undefined {
  const value = field(headers, name);
  return typeof value === 'string' ? value : undefined;
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}
