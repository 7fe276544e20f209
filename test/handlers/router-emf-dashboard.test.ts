/**
 * The dashboard charts what the router really writes: the real router handler, against real local
 * servers (Redis for the exact cache and the serving records, PostgreSQL + pgvector over PGlite for
 * the semantic cache, the local Bedrock server for the model and the embeddings), serves a model
 * answer, an exact hit and a semantic hit and takes a wrong verdict on each; every metric of the
 * `ScalableAI` namespace that the AiMonitoring dashboard of the matching stack charts (name,
 * dimension names AND the values the dashboard fixes: ServedBy=model, Tier=small, CacheLevel=exact,
 * service=...) must be in the EMF documents those requests wrote, with exactly those dimensions.
 *
 * A healthy request cannot emit some of them: those are listed in EXCLUDED with the reason, so a
 * metric added to the dashboard fails here until it is classified.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { cacheHierarchyConfig, MODEL, REDIS_PASSWORD } from './cache-hierarchy-config';
import { startRouterHandler, type RouterHandlerHarness } from './router-harness';
import { ModelTier, ScalableAiService } from '../../constructs';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { newStack } from '../constructs/helpers';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { dashboardMetrics, metricKey } from '../support/dashboard-metrics';
import { ACCOUNT, type EmfMetric } from '../support/lambda-harness';
import { PgliteServer } from '../support/pglite-server';
import { RedisServer } from '../support/redis-server';

const SERVICE = 'emf-dashboard-test';
const USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const USER_2 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-2`;
const QUESTION = 'How do I reset my online banking password?';
const PARAPHRASE = 'how can I reset my online banking password please';

/**
 * Dashboard metrics these requests cannot emit, and why. Keys are `metricKey` strings with the
 * stack's dimension values; every entry must still be on the dashboard (a stale one fails too).
 */
const EXCLUDED: Record<string, string> = {
  ...Object.fromEntries(['static', 'exact', 'semantic', 'context', 'cache-connection', 'semantic-store', 'static-index', 'feedback'].flatMap((d) => [
    [`${M.CIRCUIT_OPENED}{Dependency=${d},service=${SERVICE}}`, 'only when a dependency fails repeatedly (test/handlers/router-resilience.test.ts)'],
    [`${M.BREAKER_SKIPS}{Dependency=${d},service=${SERVICE}}`, 'only while a breaker is open (test/handlers/router-resilience.test.ts)'],
  ])),
  [`${M.FALLBACKS}{Tier=small,service=${SERVICE}}`]: 'only when a tier fails and the next one is tried',
  [`${M.MODEL_ERRORS}{Tier=small,service=${SERVICE}}`]: 'only when a model invocation fails',
  [`${M.UNAVAILABLE}{service=${SERVICE}}`]: 'only when every tier failed (503)',
  [`${M.LATENCY}{ServedBy=static,service=${SERVICE}}`]: 'a static answer needs a published static index (static answers loader); this stack has none',
  [`${M.FEEDBACK}{ServedBy=static,Verdict=wrong,service=${SERVICE}}`]: 'a verdict on a static answer: no static answers here (see above)',
  [`${M.LATENCY}{ServedBy=coalesced,service=${SERVICE}}`]: 'only in a burst of identical requests in flight (test/handlers/router-coalescing.test.ts)',
  [`${M.FEEDBACK}{ServedBy=coalesced,Verdict=wrong,service=${SERVICE}}`]: 'a verdict on a coalesced answer: only in a burst (see above)',
};

let redis: RedisServer;
let pglite: PgliteServer;
let aws: LocalAwsServer;
let router: RouterHandlerHarness;
/** The EMF metrics of every request so far. */
const emitted: EmfMetric[] = [];

/** The dashboard of a facade with the handler's configuration: one Bedrock tier `small`, the exact and semantic caches. */
function dashboardOfMatchingStack() {
  const stack = newStack();
  new ScalableAiService(stack, 'Service', {
    tiers: [ModelTier.bedrock({ tierId: 'small', modelId: MODEL, inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 })],
    routerOptions: { serviceName: SERVICE },
  });
  return dashboardMetrics(Template.fromStack(stack)).filter((m) => m.namespace === M.NAMESPACE);
}

async function call(body: unknown, userArn: string, routeKey = 'POST /v1/chat') {
  const reply = await router.call(body, userArn, { routeKey });
  emitted.push(...reply.metrics);
  return { status: reply.status, cache: reply.headers['x-cache'] ?? '', body: reply.body };
}
const ask = (text: string) => ({ messages: [{ role: 'user', content: text }] });

beforeAll(async () => {
  [redis, pglite, aws] = await Promise.all([RedisServer.start({ password: REDIS_PASSWORD }), PgliteServer.start(), LocalAwsServer.start()]);
  const cacheSecret = aws.putSecret('scalable-ai/cache-auth', REDIS_PASSWORD);
  const dbSecret = aws.putSecret('scalable-ai/pgvector', JSON.stringify({ username: 'postgres', password: 'postgres' }));
  const config: RouterRuntimeConfig = {
    ...cacheHierarchyConfig(redis, pglite, cacheSecret, dbSecret),
    feedback: { windowSeconds: 3_600 },
  };
  router = startRouterHandler(aws, config, SERVICE);
  aws.setModel(MODEL, { reply: (r) => `answer to: ${r.messages[r.messages.length - 1].text}` });
});

afterAll(async () => {
  await router?.stop();
  await Promise.all([redis?.dispose(), pglite?.stop(), aws?.close()]);
});

test('every ScalableAI metric the dashboard charts is in the EMF output of a model answer, an exact hit, a semantic hit and their verdicts', async () => {
  const model = await call(ask(QUESTION), USER_1);
  const exact = await call(ask(QUESTION), USER_1);
  const semantic = await call(ask(PARAPHRASE), USER_2);
  expect([model.cache, exact.cache, semantic.cache]).toEqual(['miss', 'exact', 'semantic']);
  // The exact hit's verdict first: it evicts the exact key and the semantic entry (FeedbackEvictions per level).
  const verdicts = [
    await call({ requestId: exact.body.requestId, verdict: 'wrong' }, USER_1, 'POST /v1/feedback'),
    await call({ requestId: semantic.body.requestId, verdict: 'wrong' }, USER_2, 'POST /v1/feedback'),
    await call({ requestId: model.body.requestId, verdict: 'wrong' }, USER_1, 'POST /v1/feedback'),
  ];
  expect(verdicts.map((v) => [v.status, v.body.servedBy])).toEqual([[200, 'exact'], [200, 'semantic'], [200, 'model']]);

  const emittedKeys = new Set(emitted.filter((m) => m.namespace === M.NAMESPACE).map(metricKey));
  const charted = dashboardOfMatchingStack();
  expect(charted.length).toBeGreaterThan(20);
  const chartedKeys = charted.map(metricKey);

  expect(Object.keys(EXCLUDED).filter((k) => !chartedKeys.includes(k))).toEqual([]);
  const missing = chartedKeys.filter((k) => !(k in EXCLUDED) && !emittedKeys.has(k));
  expect(missing).toEqual([]);
  // What was checked, so the test cannot pass vacuously.
  expect(chartedKeys.filter((k) => !(k in EXCLUDED))).toEqual(expect.arrayContaining([
    `${M.LATENCY}{service=${SERVICE}}`,
    `${M.LATENCY}{ServedBy=model,service=${SERVICE}}`,
    `${M.LATENCY}{Tier=small,service=${SERVICE}}`,
    `${M.CACHE_HITS}{CacheLevel=semantic,service=${SERVICE}}`,
    `${M.FEEDBACK}{ServedBy=exact,Verdict=wrong,service=${SERVICE}}`,
    `${M.FEEDBACK_EVICTIONS}{CacheLevel=exact,service=${SERVICE}}`,
  ]));
});
