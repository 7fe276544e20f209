/**
 * `cdk-scalable-ai serve`: the router Lambda's own bundle (assets/lambdas/router/handler/index.js,
 * the file the deployed function runs) behind node:http on a loopback address, for developing
 * routing and cache policy before deploying, and for the load test. Each request becomes an
 * HTTP API payload 2.0 event (lambdas/adapters/http-api-event.ts, the translation the handler
 * tests use too) and the handler's result becomes the response.
 *
 * There is no authentication: the tenant and user are whatever the request says in
 * `x-local-tenant` / `x-local-user` (default `--tenant` / `--user`), put where the API Gateway
 * authorizer would put a verified identity. So serve refuses a non-loopback address unless told
 * `--allow-remote`.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as path from 'node:path';
import { CliError } from './errors';
import type { CliIo } from './eval-cache';
import { parseFlags } from './flags';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig, type TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { onDemandPricesOf } from '../../constructs/planning/prices';
import { fromHttpApiResult, lambdaContext, LOCAL_ACCOUNT_ID, toHttpApiEvent, type LocalAuthorizer } from '../adapters/http-api-event';

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8787,
  tenant: 'local',
  user: 'local',
  /** Bytes of a request body serve reads at most (the router's own limit, maxRequestBytes, is lower by default). */
  maxBodyBytes: 1_048_576,
  /** API Gateway HTTP APIs give an integration at most 30 s. */
  timeoutMs: 30_000,
  /** Milliseconds requests in flight get to finish after SIGINT/SIGTERM. */
  graceMs: 10_000,
  serviceName: 'scalable-ai-local',
} as const;

/** The request headers that say who the caller is, locally. Never passed to the router. */
export const LOCAL_TENANT_HEADER = 'x-local-tenant';
export const LOCAL_USER_HEADER = 'x-local-user';

/** A Bedrock model at its on-demand prices in the package's price file (USD per 1,000 tokens). */
function listedModel(modelId: string): Pick<TierRuntimeConfig, 'modelId' | 'inputPricePer1k' | 'outputPricePer1k'> {
  const prices = onDemandPricesOf(modelId);
  if (!prices) throw new Error(`serve: the price file has no price for ${modelId}`);
  return { modelId, inputPricePer1k: prices.inputPer1k, outputPricePer1k: prices.outputPer1k };
}

/**
 * Tiers when no --config gives them: the e-commerce example's Bedrock tiers (examples/ecommerce-assistant.ts),
 * at the price file's on-demand prices (a US profile at its geographic price), so `x-cost-usd` means something.
 */
export const DEFAULT_TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', ...listedModel('us.amazon.nova-micro-v1:0'), maxTokens: 512, timeoutMs: 8_000 },
  { id: 'medium', provider: 'bedrock', ...listedModel('us.amazon.nova-lite-v1:0'), maxTokens: 1_024, timeoutMs: 10_000 },
  { id: 'large', provider: 'bedrock', ...listedModel('us.anthropic.claude-sonnet-4-5-20250929-v1:0'), maxTokens: 2_048, timeoutMs: 20_000 },
];

export const SERVE_USAGE = `Usage: cdk-scalable-ai serve [options]

Runs the router Lambda's own bundle behind node:http on a loopback address: POST /v1/chat and the
router's other routes, answered with its real adapters (Valkey/Redis caches, Bedrock Converse,
SageMaker InvokeEndpoint). Each request becomes an API Gateway HTTP API (payload 2.0) event.

NO AUTHENTICATION: the tenant and user of a request are taken from its x-local-tenant and
x-local-user headers (default --tenant and --user) and handed to the router as the authorizer's
verdict. Anyone who can reach the port is any tenant. Local development only.

Options:
  --config FILE           the router's runtime configuration (JSON, the shape of
                          constructs/contract/runtime-config.ts: a deployed router's
                          SCALABLE_AI_ROUTER_CONFIG); default: the e-commerce example's three
                          Bedrock tiers, no caches, tenants from --tenant/x-local-tenant
  --redis URL             redis://HOST[:PORT] or rediss:// (TLS): the caches' connection (replaces
                          the config's); adds the exact cache (TTL 1 day) and feedback records
                          when the config has none. No AUTH: a password in the URL is refused
  --bedrock-endpoint URL  Bedrock Runtime endpoint (a server speaking Converse over HTTP/2, h2c
                          for http://); default: the real service in the region
  --sagemaker-endpoint URL  SageMaker Runtime endpoint (InvokeEndpoint, HTTP/1.1); default: real
  --region R              AWS region (default: the SDK's: AWS_REGION, the profile; us-east-1 when
                          every endpoint is local)
  --host H                address to listen on (default ${SERVE_DEFAULTS.host}); loopback only unless
  --allow-remote          lets --host be a non-loopback address (still no authentication)
  --port N                port (default ${SERVE_DEFAULTS.port}; 0: any free port)
  --tenant ID             tenant of requests without x-local-tenant (default ${SERVE_DEFAULTS.tenant})
  --user ID               user of requests without x-local-user (default ${SERVE_DEFAULTS.user})
  --max-body-bytes N      larger request bodies are answered 413 unread (default ${SERVE_DEFAULTS.maxBodyBytes})
  --timeout-ms N          the router's time per request, as the Lambda's remaining time; 504
                          after it (default ${SERVE_DEFAULTS.timeoutMs})
  --grace-ms N            on SIGINT/SIGTERM, time for requests in flight (default ${SERVE_DEFAULTS.graceMs})
  --router-bundle FILE    the router bundle to run (default: the package's
                          assets/lambdas/router/handler/index.js)
  --emf                   let the router's CloudWatch EMF lines through to stdout (default: off)
  --quiet                 no access log on stderr
  -h, --help              show this help

With real Bedrock or SageMaker, the AWS SDK's default credential chain signs the calls (your
profile or environment). With only local endpoints and no credentials, dummy ones are used.
Prints "listening on URL" on stdout once it accepts requests.
`;

export interface ServeArgs {
  readonly config?: string;
  readonly redis?: string;
  readonly bedrockEndpoint?: string;
  readonly sagemakerEndpoint?: string;
  readonly region?: string;
  readonly host: string;
  readonly allowRemote: boolean;
  readonly port: number;
  readonly tenant: string;
  readonly user: string;
  readonly maxBodyBytes: number;
  readonly timeoutMs: number;
  readonly graceMs: number;
  readonly routerBundle?: string;
  readonly emf: boolean;
  readonly quiet: boolean;
  readonly help: boolean;
}

/** Parses the arguments after `serve`; throws {@link CliError} on bad ones (a non-loopback host included). */
export function parseServeArgs(argv: readonly string[]): ServeArgs {
  const values = parseFlags(argv, {
    'config': { type: 'string' },
    'redis': { type: 'string' },
    'bedrock-endpoint': { type: 'string' },
    'sagemaker-endpoint': { type: 'string' },
    'region': { type: 'string' },
    'host': { type: 'string' },
    'allow-remote': { type: 'boolean' },
    'port': { type: 'string' },
    'tenant': { type: 'string' },
    'user': { type: 'string' },
    'max-body-bytes': { type: 'string' },
    'timeout-ms': { type: 'string' },
    'grace-ms': { type: 'string' },
    'router-bundle': { type: 'string' },
    'emf': { type: 'boolean' },
    'quiet': { type: 'boolean' },
    'help': { type: 'boolean', short: 'h' },
  }, SERVE_USAGE);
  const host = values.host ?? SERVE_DEFAULTS.host;
  const allowRemote = values['allow-remote'] ?? false;
  if (!allowRemote && !isLoopback(host)) {
    throw new CliError(`--host ${host} is not a loopback address: serve has no authentication (any caller picks its tenant with x-local-tenant), ` +
      'so it listens on 127.0.0.1, ::1 or localhost only. Add --allow-remote to listen there anyway');
  }
  for (const flag of ['bedrock-endpoint', 'sagemaker-endpoint'] as const) {
    const url = values[flag];
    if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) throw new CliError(`--${flag} must be an http:// or https:// URL; got "${url}"`);
  }
  return {
    config: values.config,
    redis: values.redis,
    bedrockEndpoint: values['bedrock-endpoint'],
    sagemakerEndpoint: values['sagemaker-endpoint'],
    region: values.region,
    host,
    allowRemote,
    port: integer('--port', values.port, SERVE_DEFAULTS.port, 0, 65_535),
    tenant: checkedIdentity('--tenant', values.tenant ?? SERVE_DEFAULTS.tenant),
    user: checkedIdentity('--user', values.user ?? SERVE_DEFAULTS.user),
    maxBodyBytes: integer('--max-body-bytes', values['max-body-bytes'], SERVE_DEFAULTS.maxBodyBytes, 1, 6_000_000),
    timeoutMs: integer('--timeout-ms', values['timeout-ms'], SERVE_DEFAULTS.timeoutMs, 1, 900_000),
    graceMs: integer('--grace-ms', values['grace-ms'], SERVE_DEFAULTS.graceMs, 0, 600_000),
    routerBundle: values['router-bundle'],
    emf: values.emf ?? false,
    quiet: values.quiet ?? false,
    help: values.help ?? false,
  };
}

/** Whether `host` names this machine only: 127.0.0.0/8, ::1 (or IPv4-mapped 127.x), `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

function integer(flag: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`${flag} must be an integer from ${min} to ${max}; got "${raw}"`);
  return n;
}

/** Characters an IAM role or session name may hold: the router may build an ARN of the identity. */
const IDENTITY = /^[\w+=,.@-]{1,64}$/;

function checkedIdentity(flag: string, value: string): string {
  if (!IDENTITY.test(value)) throw new CliError(`${flag} must be 1 to 64 of letters, digits and + = , . @ _ -; got "${value}"`);
  return value;
}

/** The runtime configuration serve runs: the file's (or the defaults), with --redis applied. */
export function serveConfig(args: Pick<ServeArgs, 'config' | 'redis'>): RouterRuntimeConfig {
  let config: RouterRuntimeConfig = {
    tiers: DEFAULT_TIERS,
    tierHintPolicy: 'cheaper-only',
    maxRequestBytes: 32_768,
    maxMessages: 50,
    tenant: { source: 'jwt', claim: 'tenant_id' },
    personalCaching: 'user',
  };
  if (args.config !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(args.config, 'utf8'));
    } catch (err) {
      throw new CliError(`--config ${args.config}: ${(err as Error).message}`);
    }
    const tiers = (parsed as { tiers?: unknown } | null)?.tiers;
    if (!Array.isArray(tiers) || tiers.length === 0) {
      throw new CliError(`--config ${args.config}: not a router configuration (no "tiers" list); see constructs/contract/runtime-config.ts`);
    }
    config = parsed as RouterRuntimeConfig;
  }
  if (args.redis !== undefined) {
    const cache = redisConnection(args.redis, config.cache?.keyPrefix ?? 'sai:', config.cache?.timeoutMs ?? 200);
    config = {
      ...config,
      cache,
      exactCache: config.exactCache ?? { ttlSeconds: 86_400 },
      feedback: config.feedback ?? { windowSeconds: 86_400 },
    };
  }
  return config;
}

function redisConnection(raw: string, keyPrefix: string, timeoutMs: number): NonNullable<RouterRuntimeConfig['cache']> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`--redis must be a URL such as redis://127.0.0.1:6379; got "${raw}"`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new CliError(`--redis must be a redis:// or rediss:// URL; got "${raw}"`);
  if (url.username || url.password) {
    throw new CliError('--redis: serve connects without AUTH (the router reads its AUTH token from Secrets Manager: give cache.authSecretArn in --config instead of a password in the URL)');
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : 6379, tls: url.protocol === 'rediss:', keyPrefix, timeoutMs };
}

/**
 * What of `config` calls AWS itself (not a local endpoint): with none, dummy credentials may sign.
 * A local server does not check signatures; the real services need the user's credentials.
 */
export function awsDependencies(config: RouterRuntimeConfig, args: Pick<ServeArgs, 'bedrockEndpoint' | 'sagemakerEndpoint'>): string[] {
  const out: string[] = [];
  const providers = new Set<string>(config.tiers.map((t) => t.provider));
  if (config.semanticCache) providers.add(config.semanticCache.embedder.provider);
  if (config.staticAnswers?.embedder) providers.add(config.staticAnswers.embedder.provider);
  if (providers.has('bedrock') && !args.bedrockEndpoint) out.push('Bedrock Runtime');
  if (providers.has('sagemaker') && !args.sagemakerEndpoint) out.push('SageMaker Runtime');
  if (config.cache?.authSecretArn || config.originVerification || config.semanticCache?.store.pgvector || config.userProfiles?.secretArn) out.push('Secrets Manager');
  if (config.semanticCache?.store.kind === 'opensearch') out.push('OpenSearch Serverless');
  if (config.userContext?.kind === 'dynamodb') out.push('DynamoDB');
  if (config.userProfiles?.auth === 'iam') out.push('RDS IAM authentication');
  return out;
}

/** A running serve: its URL, and a graceful stop. */
export interface RunningServe {
  readonly url: string;
  readonly port: number;
  /** The router bundle it runs and the configuration that bundle read. */
  readonly bundle: string;
  readonly config: RouterRuntimeConfig;
  /** Stops accepting, lets requests in flight finish within `graceMs`, then drops every connection. */
  close(graceMs?: number): Promise<void>;
}

type RouterHandler = (event: unknown, context: unknown) => Promise<unknown>;

/** The bundle loaded in this process, and the configuration it read: the router reads it once per container. */
let loaded: { readonly bundle: string; readonly configJson: string; readonly handler: RouterHandler } | undefined;

/**
 * Sets the environment the router reads (its configuration, the SDK endpoints, the region and,
 * when nothing calls AWS, dummy credentials) and loads the bundle, as Lambda does at cold start.
 */
function loadRouter(bundle: string, config: RouterRuntimeConfig, args: ServeArgs, io: CliIo): RouterHandler {
  const configJson = JSON.stringify(config);
  if (loaded) {
    if (loaded.bundle !== bundle || loaded.configJson !== configJson) {
      throw new Error('serve: this process already runs the router with another bundle or configuration (the router reads its configuration once, at load)');
    }
    return loaded.handler;
  }
  const env = process.env;
  env[ROUTER_CONFIG_ENV] = configJson;
  env.POWERTOOLS_SERVICE_NAME ??= SERVE_DEFAULTS.serviceName;
  if (!args.emf) env.POWERTOOLS_METRICS_DISABLED = 'true';
  if (args.bedrockEndpoint) env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME = args.bedrockEndpoint;
  if (args.sagemakerEndpoint) env.AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME = args.sagemakerEndpoint;
  const real = awsDependencies(config, args);
  if (args.region) {
    env.AWS_REGION = args.region;
  } else if (!env.AWS_REGION && !env.AWS_DEFAULT_REGION && real.length === 0) {
    env.AWS_REGION = 'us-east-1';
  }
  if (real.length === 0 && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE) {
    // Every call goes to a local endpoint, which does not check the SigV4 signature.
    env.AWS_ACCESS_KEY_ID = 'AKIDLOCALSERVE';
    env.AWS_SECRET_ACCESS_KEY = 'local-serve-not-a-secret';
    env.AWS_EC2_METADATA_DISABLED = 'true';
  } else if (real.length > 0) {
    io.stderr(`serve: calls ${real.join(', ')} in AWS with the SDK's default credentials (region ${env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'from your profile'})\n`);
  }
  // The bundle is CommonJS; the ESM CLI bundle defines `require` (createRequire) in its banner.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(bundle) as { handler?: RouterHandler };
  if (typeof mod.handler !== 'function') throw new CliError(`${bundle} exports no handler function: not the router bundle`);
  loaded = { bundle, configJson, handler: mod.handler };
  return mod.handler;
}

/** The router bundle beside this CLI bundle (assets/lambdas/cli/main → assets/lambdas/router/handler), else under the working directory. */
export function defaultRouterBundle(): string {
  const candidates: string[] = [];
  const script = process.argv[1];
  if (script) {
    try {
      candidates.push(path.resolve(path.dirname(fs.realpathSync(script)), '..', '..', 'router', 'handler', 'index.js'));
    } catch {
      // not a file (a REPL, -e): only the working directory is left
    }
  }
  candidates.push(path.resolve('assets', 'lambdas', 'router', 'handler', 'index.js'));
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new CliError(`no router bundle at ${candidates.join(' or ')}: run \`npx projen bundle\` in the repository, or pass --router-bundle`);
  return found;
}

/** Starts serve; resolves once it accepts requests. */
export async function startServe(args: ServeArgs, io: CliIo): Promise<RunningServe> {
  const config = serveConfig(args);
  const bundle = path.resolve(args.routerBundle ?? defaultRouterBundle());
  if (!fs.existsSync(bundle)) throw new CliError(`--router-bundle ${bundle} does not exist`);
  const handler = loadRouter(bundle, config, args, io);
  const identity = localIdentity(config.tenant, args);

  let closing = false;
  const inFlight = new Set<http.ServerResponse>();
  const server = http.createServer({
    // Slow or stalled clients cannot hold a connection for ever.
    headersTimeout: 10_000,
    requestTimeout: args.timeoutMs + 10_000,
    keepAliveTimeout: 5_000,
  }, (req, res) => {
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    if (closing) res.setHeader('connection', 'close');
    serveRequest(req, res, { handler, identity, args, io }).catch((err: unknown) => {
      io.stderr(`serve: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal Server Error' });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new CliError(`cannot listen on ${args.host}:${args.port}: ${err.code ?? err.message}`)));
    server.listen(args.port, args.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  // A name (localhost) resolves through /etc/hosts: check the address actually bound.
  if (!args.allowRemote && !isLoopback(address.address)) {
    server.close();
    throw new CliError(`--host ${args.host} listens on ${address.address}, which is not a loopback address; serve has no authentication (--allow-remote to accept it anyway)`);
  }
  const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${hostPart}:${address.port}`;

  let closed: Promise<void> | undefined;
  const close = (graceMs = args.graceMs): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      closing = true;
      server.close(() => resolve());
      // Idle keep-alive connections go now; busy ones once their response is written (connection: close).
      server.closeIdleConnections();
      for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      force.unref();
      server.once('close', () => clearTimeout(force));
    });
    return closed;
  };
  return { url, port: address.port, bundle, config, close };
}

/** Where the router finds the caller: the authorizer context API Gateway would set. */
interface LocalIdentity {
  readonly defaultTenant: string;
  readonly defaultUser: string;
  authorizer(tenant: string, user: string): LocalAuthorizer;
}

function localIdentity(tenant: RouterRuntimeConfig['tenant'], args: ServeArgs): LocalIdentity {
  return {
    defaultTenant: args.tenant,
    defaultUser: args.user,
    authorizer: tenant.source === 'jwt'
      ? (t, u) => ({ jwt: { claims: { [tenant.claim ?? 'tenant_id']: t, sub: u } } })
      // IAM: the caller is a session of the role named after the tenant (the router's tenant is the role ARN).
      : (t, u) => ({ iam: { userArn: `arn:aws:sts::${LOCAL_ACCOUNT_ID}:assumed-role/${t}/${u}` } }),
  };
}

interface RequestDeps {
  readonly handler: RouterHandler;
  readonly identity: LocalIdentity;
  readonly args: ServeArgs;
  readonly io: CliIo;
}

async function serveRequest(req: http.IncomingMessage, res: http.ServerResponse, deps: RequestDeps): Promise<void> {
  const started = Date.now();
  const { args, identity } = deps;
  const log = (status: number, note = ''): void => {
    if (args.quiet) return;
    const h = (name: string): string => String(res.getHeader(name) ?? '-');
    deps.io.stderr(`${req.method} ${req.url} ${status} x-cache=${h('x-cache')} x-tier=${h('x-tier')} ${Date.now() - started} ms${note}\n`);
  };

  const body = await readBody(req, args.maxBodyBytes);
  if (body === 'too-large') {
    // Unread: Node drops the connection once the answer is written (connection: close).
    res.setHeader('connection', 'close');
    sendJson(res, 413, { error: { code: 'too-large', message: `Request body is over serve's --max-body-bytes ${args.maxBodyBytes}` } });
    return log(413);
  }
  if (body === 'aborted') return;

  const tenant = headerValue(req, LOCAL_TENANT_HEADER) ?? identity.defaultTenant;
  const user = headerValue(req, LOCAL_USER_HEADER) ?? identity.defaultUser;
  if (!IDENTITY.test(tenant) || !IDENTITY.test(user)) {
    sendJson(res, 400, { error: { code: 'invalid-local-identity', message: `${LOCAL_TENANT_HEADER} and ${LOCAL_USER_HEADER} must be 1 to 64 of letters, digits and + = , . @ _ -` } });
    return log(400);
  }
  const headers = { ...req.headers };
  delete headers[LOCAL_TENANT_HEADER];
  delete headers[LOCAL_USER_HEADER];

  const deadline = started + args.timeoutMs;
  const event = toHttpApiEvent({
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers,
    body,
    authorizer: identity.authorizer(tenant, user),
    sourceIp: req.socket.remoteAddress,
    protocol: `HTTP/${req.httpVersion}`,
    domainName: req.headers.host?.replace(/:\d+$/, ''),
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    // The same deadline the router is told: the time spent reading the body counts.
    timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
  });
  let result: unknown;
  try {
    result = await Promise.race([deps.handler(event, lambdaContext('router', deadline)), timedOut]);
  } catch (err) {
    // A function error: API Gateway answers 500 without details; the details go to the log.
    deps.io.stderr(`serve: the router threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    sendJson(res, 500, { message: 'Internal Server Error' });
    return log(500, ' (the handler threw)');
  } finally {
    clearTimeout(timer);
  }
  if (result === 'timeout') {
    sendJson(res, 504, { error: { code: 'timeout', message: `The router did not answer within --timeout-ms ${args.timeoutMs}` } });
    return log(504);
  }
  const out = fromHttpApiResult(result);
  res.statusCode = out.statusCode;
  for (const [name, value] of Object.entries(out.headers)) res.setHeader(name, value);
  res.setHeader('content-length', out.body.length);
  res.end(out.body);
  log(out.statusCode);
}

/** The body, or `too-large` as soon as it is over `limit` bytes (by content-length or as it arrives), or `aborted`. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve('too-large');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: Buffer | 'too-large' | 'aborted'): void => {
      if (done) return;
      done = true;
      resolve(value);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish('too-large');
      } else {
        chunks.push(chunk);
      }
    });
    req.once('end', () => finish(Buffer.concat(chunks)));
    req.once('aborted', () => finish('aborted'));
    req.once('error', () => finish('aborted'));
  });
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

/** Runs `serve` until SIGINT or SIGTERM; returns the exit code. Throws {@link CliError} for bad input. */
export async function runServe(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseServeArgs(argv);
  if (args.help) {
    io.stdout(SERVE_USAGE);
    return 0;
  }
  if (args.allowRemote && !isLoopback(args.host)) {
    io.stderr(`serve: WARNING: listening on ${args.host} with NO AUTHENTICATION: anyone who reaches the port can act as any tenant and spend your model budget\n`);
  }
  const running = await startServe(args, io);
  const config = running.config;
  io.stderr([
    `serve: the router bundle ${running.bundle}`,
    `serve: NO AUTHENTICATION: a request is tenant "${args.tenant}", user "${args.user}" unless it sends ${LOCAL_TENANT_HEADER} / ${LOCAL_USER_HEADER}`,
    `serve: tiers ${config.tiers.map((t) => `${t.id}=${t.provider}:${t.modelId ?? t.endpointName}`).join(', ')}`,
    `serve: Bedrock ${args.bedrockEndpoint ?? 'in AWS'}${config.tiers.some((t) => t.provider === 'sagemaker') ? `, SageMaker ${args.sagemakerEndpoint ?? 'in AWS'}` : ''}`,
    `serve: caches ${config.cache ? `${config.cache.tls ? 'rediss' : 'redis'}://${config.cache.host}:${config.cache.port} (${[config.exactCache && 'exact', config.semanticCache && 'semantic', config.staticAnswers && 'static', config.userContext && 'user context'].filter(Boolean).join(', ')})` : 'none (add --redis)'}`,
    '',
  ].join('\n'));
  io.stdout(`listening on ${running.url}\n`);

  await new Promise<void>((resolve) => {
    let signals = 0;
    const stop = (signal: NodeJS.Signals): void => {
      if (++signals > 1) return resolve();
      io.stderr(`serve: ${signal}: finishing requests in flight (at most ${args.graceMs} ms; signal again to stop now)\n`);
      running.close().then(() => resolve(), () => resolve());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  // The router's clients (the cache connection, HTTP/2 sessions) keep sockets open as a Lambda
  // container would; nothing is left to do, so the process ends even if they do not close.
  setTimeout(() => process.exit(), 200).unref();
  return 0;
}
