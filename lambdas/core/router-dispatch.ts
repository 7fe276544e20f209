/**
 * The router Lambda's dispatch, without Lambda or API Gateway types: which route a request is,
 * who sent it (from the authorizer context only, with every field type-checked), and the one
 * place where anything unexpected becomes a logged 500 without details.
 */
import type { Caller } from './cache-key';
import { callerFromAuthorizer, type AuthorizerContext } from './caller';
import { errorResponse, JSON_HEADERS, type HttpResponse } from './chat-endpoint';
import { HttpError } from './errors';
import type { MetricsRecorder } from './ports';
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
}

/** A request once dispatched: the route, its caller (undefined: unauthenticated) and its decoded body. */
export interface RoutedRequest {
  readonly caller: Caller | undefined;
  readonly body: string | undefined;
  readonly query: Readonly<Record<string, string | undefined>>;
}

/** One function per route; each answers a response (its own 4xx/5xx included). */
export type RouteHandlers = Record<RouterRoute, (request: RoutedRequest) => Promise<HttpResponse>>;

export interface DispatchDeps {
  readonly tenant: { readonly source: TenantSource; readonly claim?: string };
  readonly metrics: MetricsRecorder;
  readonly logger: { error(message: string, attributes: Record<string, unknown>): void };
}

/**
 * Dispatches one request: 404 for a route the router does not serve, else the route's handler
 * with the caller taken from the authorizer context. Never throws: anything unexpected, from
 * the route or from reading the event, is logged and answered 500 with no details.
 */
export async function dispatchRouterRequest(handlers: RouteHandlers, event: RouterEvent, deps: DispatchDeps): Promise<HttpResponse> {
  try {
    const route = ROUTER_ROUTES.find((r) => r === event.routeKey);
    if (!route) {
      return errorResponse(new HttpError(404, `No route ${String(event.routeKey)}; this API serves ${ROUTER_ROUTES.join(', ')}`, 'not-found'), deps.metrics);
    }
    const caller = callerOf(event.requestContext, deps.tenant);
    return await handlers[route]({ caller, body: decodedBody(event), query: queryOf(event.queryStringParameters) });
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

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}
