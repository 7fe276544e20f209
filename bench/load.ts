/**
 * `npm run load`: drives `cdk-scalable-ai serve` (the real CLI bundle, running the router Lambda's
 * own bundle) with a bounded number of connections for a bounded time, on loopback only, against
 * a real Redis-protocol server (test/support/redis-server.ts) and a local server speaking Bedrock
 * Converse over HTTP/2 (test/support/aws-protocol-server.ts). The traffic mixes
 * - hits: questions from a small pool, asked again and again (the exact cache answers them);
 * - misses: questions never asked before (a model answers);
 * - fallbacks: new questions for which the local model server is told to throttle the classified
 *   tier once, so the router falls back to the next tier.
 * Each response is counted by how it was served (`x-cache`, and the body's `routing.attempts`).
 *
 *   npm run load                                         # 10 connections, 30 s, closed loop
 *   npm run -s load -- --json                            # ... and one JSON object as the last line
 *   npm run load -- --expected-rps 30 --multiplier 10    # the seed's "test at 10x expected load": paced at 300/s
 *
 * Closed loop (default): each connection sends its next request when the previous one is answered.
 * Paced (--expected-rps R [--multiplier N]): requests are scheduled at N×R per second whatever
 * the answers do (open loop, at most --connections in flight); a request's latency counts from
 * its scheduled time, so a server that falls behind shows it in p99 (no coordinated omission),
 * and the report gives the achieved rate beside the target.
 *
 * The driver is a node:http keep-alive agent loop, not autocannon: it must read each response's
 * headers and body to count hits, misses and fallbacks, choose each request's kind, and queue the
 * model server's failure for a fallback request, which autocannon's fixed request list cannot.
 * It prints numbers and asserts nothing (DESIGN.md §7); the machine is shared, so compare runs.
 */
import * as http from 'node:http';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { servedBy } from './load-outcome';
import { percentile, post, processCpuMs, startServe, stopChild } from './serve-process';
import { DEFAULT_TIERS } from '../lambdas/cli/serve';
import { Failures, LocalAwsServer } from '../test/support/aws-protocol-server';
import { RedisServer } from '../test/support/redis-server';

/** Repeated questions: after its first answer, each one is an exact-cache hit. */
const POOL_SIZE = 40;

const USAGE = `Usage: npm run load -- [options]

  --connections N     connections (and requests in flight) at most (default 10, at most 256)
  --duration D        how long to send: 20s, 2s, 1m, 500ms (default 30s, at most 10m)
  --hit-share X       share of requests repeating a pooled question (default 0.6)
  --fallback-share X  share of new questions whose first tier is throttled (default 0.1)
  --expected-rps R    the expected load; with it requests are paced at R x --multiplier per second
  --multiplier N      times the expected load to run (default 1; needs --expected-rps)
  --json              print one JSON object as the last line
  -h, --help          show this help
`;

interface LoadArgs {
  readonly connections: number;
  readonly durationMs: number;
  readonly hitShare: number;
  readonly fallbackShare: number;
  readonly expectedRps?: number;
  readonly multiplier: number;
  readonly json: boolean;
}

class UsageError extends Error {}

function parseLoadArgs(argv: string[]): LoadArgs | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'connections': { type: 'string' },
      'duration': { type: 'string' },
      'hit-share': { type: 'string' },
      'fallback-share': { type: 'string' },
      'expected-rps': { type: 'string' },
      'multiplier': { type: 'string' },
      'json': { type: 'boolean' },
      'help': { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const num = (flag: string, raw: string | undefined, fallback: number, min: number, max: number, int = false): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) throw new UsageError(`--${flag} must be ${int ? 'an integer' : 'a number'} from ${min} to ${max}; got "${raw}"`);
    return n;
  };
  const hitShare = num('hit-share', values['hit-share'], 0.6, 0, 1);
  const fallbackShare = num('fallback-share', values['fallback-share'], 0.1, 0, 1);
  if (hitShare + fallbackShare > 1) throw new UsageError('--hit-share plus --fallback-share must be at most 1 (the rest are misses)');
  if (values.multiplier !== undefined && values['expected-rps'] === undefined) throw new UsageError('--multiplier needs --expected-rps (the load it multiplies)');
  return {
    connections: num('connections', values.connections, 10, 1, 256, true),
    durationMs: duration(values.duration ?? '30s'),
    hitShare,
    fallbackShare,
    expectedRps: values['expected-rps'] === undefined ? undefined : num('expected-rps', values['expected-rps'], 0, 0.1, 100_000),
    multiplier: num('multiplier', values.multiplier, 1, 0.01, 1_000),
    json: values.json ?? false,
  };
}

function duration(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!m) throw new UsageError(`--duration must look like 20s, 500ms or 1m; got "${raw}"`);
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1_000);
  if (ms < 100 || ms > 600_000) throw new UsageError(`--duration must be from 100ms to 10m; got "${raw}"`);
  return ms;
}

/** A small deterministic PRNG (Park-Miller minimal standard): the same mix on every run. */
function random(seed: number): () => number {
  let state = seed % 2_147_483_647;
  return () => {
    state = (state * 48_271) % 2_147_483_647;
    return (state - 1) / 2_147_483_646;
  };
}

const TOPICS = ['my card payment', 'a refund', 'the exchange rate', 'a transfer to a friend', 'my PIN', 'a top-up', 'a cash withdrawal', 'my account'];

type Kind = 'hit' | 'miss' | 'fallback';

interface Outcome {
  readonly ok: boolean;
  readonly ms: number;
  /** The HTTP status; `network` for no answer; `200-not-a-chat-answer` for a 200 whose body is no chat answer. */
  readonly status: number | 'network' | '200-not-a-chat-answer';
  readonly servedBy?: 'hit' | 'miss' | 'fallback';
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  let args: LoadArgs | undefined;
  try {
    args = parseLoadArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`load: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (!args) {
    process.stdout.write(USAGE);
    return;
  }
  const log = (text: string): void => void process.stderr.write(`load: ${text}\n`);

  const [redis, aws] = await Promise.all([RedisServer.start(), LocalAwsServer.start()]);
  let serve: Awaited<ReturnType<typeof startServe>> | undefined;
  try {
    // The local model server's credentials and region (dummy: it checks no signature).
    const env = { ...process.env, ...aws.env() };
    delete env.AWS_PROFILE;
    serve = await startServe(['--port', '0', '--redis', `redis://${redis.host}:${redis.port}`, '--bedrock-endpoint', aws.http2Url, '--tenant', 'load', '--quiet'], env);
    const base = new URL(serve.url);
    log(`serve ${serve.url} (redis ${redis.binary.version.split(' ').slice(0, 3).join(' ')}, Bedrock Converse on ${aws.http2Url})`);
    const agent = new http.Agent({ keepAlive: true, maxSockets: args.connections });

    // One request first: which tier the router classifies these questions to (the one to throttle).
    const probe = await post(agent, base, JSON.stringify({ messages: [{ role: 'user', content: 'How do I check the status of my card payment?' }] }));
    if (probe.status !== 200) throw new Error(`the first request failed: ${probe.status} ${probe.body}`);
    const classified = (JSON.parse(probe.body) as { routing: { classifiedTier: string } }).routing.classifiedTier;
    const throttled = DEFAULT_TIERS.find((t) => t.id === classified)?.modelId;
    if (!throttled) throw new Error(`the router classified to tier "${classified}", which serve's default tiers do not have`);

    const pool = Array.from({ length: POOL_SIZE }, (_, i) => `How do I ask about ${TOPICS[i % TOPICS.length]}, question ${i}?`);
    const rnd = random(77);
    let sequence = 0;
    const nextRequest = (): { kind: Kind; body: string } => {
      const n = sequence++;
      const r = rnd();
      const kind: Kind = r < args.hitShare ? 'hit' : r < args.hitShare + args.fallbackShare ? 'fallback' : 'miss';
      const text = kind === 'hit' ? pool[Math.floor(rnd() * pool.length)] : `What happened to ${TOPICS[n % TOPICS.length]}, case ${n}?`;
      return { kind, body: JSON.stringify({ messages: [{ role: 'user', content: text }] }) };
    };

    const targetRps = args.expectedRps === undefined ? undefined : args.expectedRps * args.multiplier;
    const outcomes: Outcome[] = [];
    const sent: Record<Kind, number> = { hit: 0, miss: 0, fallback: 0 };
    const modelCallsBefore = aws.calls.length;
    const serveCpuBefore = processCpuMs(serve.child.pid);
    const ownCpuBefore = process.cpuUsage();
    const started = Date.now();
    const sendUntil = started + args.durationMs;
    let slot = 0;
    log(`${args.connections} connections for ${args.durationMs} ms, ${targetRps === undefined ? 'closed loop' : `paced at ${targetRps} requests/s`}`);

    const worker = async (): Promise<void> => {
      for (;;) {
        let scheduled = Date.now();
        if (targetRps !== undefined) {
          scheduled = started + (slot++ * 1_000) / targetRps;
          if (scheduled >= sendUntil) return;
          const wait = scheduled - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        } else if (scheduled >= sendUntil) {
          return;
        }
        const { kind, body } = nextRequest();
        sent[kind]++;
        // Throttles the next call of the classified tier: this request's, or one in flight with it.
        if (kind === 'fallback') aws.failNext(throttled, Failures.throttling());
        try {
          const res = await post(agent, base, body);
          const ms = Date.now() - scheduled;
          if (res.status !== 200) {
            outcomes.push({ ok: false, ms, status: res.status });
            continue;
          }
          const served = servedBy(res.headers['x-cache'], res.body);
          if (served === 'not-a-chat-answer') {
            outcomes.push({ ok: false, ms, status: '200-not-a-chat-answer' });
            continue;
          }
          outcomes.push({ ok: true, ms, status: 200, servedBy: served });
        } catch {
          outcomes.push({ ok: false, ms: Date.now() - scheduled, status: 'network' });
        }
      }
    };
    await Promise.all(Array.from({ length: args.connections }, () => worker()));
    const elapsedS = (Date.now() - started) / 1_000;
    const serveCpuAfter = processCpuMs(serve.child.pid);
    const ownCpu = process.cpuUsage(ownCpuBefore);
    agent.destroy();

    const latencies = outcomes.map((o) => o.ms).sort((a, b) => a - b);
    const count = (k: Outcome['servedBy']): number => outcomes.filter((o) => o.servedBy === k).length;
    const statuses: Record<string, number> = {};
    for (const o of outcomes) statuses[String(o.status)] = (statuses[String(o.status)] ?? 0) + 1;
    const rps = Math.round((outcomes.length / elapsedS) * 10) / 10;
    const perRequest = Math.max(1, outcomes.length);
    const report = {
      requests: outcomes.length,
      errors: outcomes.filter((o) => !o.ok).length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      rps,
      hits: count('hit'),
      misses: count('miss'),
      fallbacks: count('fallback'),
      sent,
      statuses,
      modelCalls: aws.calls.length - modelCallsBefore,
      // Where the CPU went: serve (the router) and this process (the driver and the model server).
      cpuMsPerRequest: {
        serve: serveCpuBefore === undefined || serveCpuAfter === undefined ? null : round2((serveCpuAfter - serveCpuBefore) / perRequest),
        driverAndModelServer: round2((ownCpu.user + ownCpu.system) / 1_000 / perRequest),
      },
      connections: args.connections,
      durationS: Math.round(elapsedS * 100) / 100,
      mode: targetRps === undefined ? 'closed-loop' : 'paced',
      ...(targetRps === undefined ? {} : {
        expectedRps: args.expectedRps,
        multiplier: args.multiplier,
        targetRps,
        achievedRps: rps,
        achievedShare: Math.round((rps / targetRps) * 1000) / 1000,
      }),
      machine: { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.arch()}` },
    };

    const exitCode = await stopChild(serve.child);
    if (exitCode !== 0) {
      log(`serve exited with ${exitCode} on SIGTERM:\n${serve.stderrTail()}`);
      process.exitCode = 1;
    }
    serve = undefined;

    const lines = [
      `requests ${report.requests} in ${report.durationS} s: ${report.rps}/s${targetRps === undefined ? '' : ` (target ${targetRps}/s: ${(report.achievedShare! * 100).toFixed(1)}% achieved)`}`,
      `errors   ${report.errors}${report.errors ? ` (${JSON.stringify(statuses)})` : ''}`,
      `latency  p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms${targetRps === undefined ? '' : ' (from each request\'s scheduled time)'}`,
      `served   ${report.hits} exact-cache hits, ${report.misses} model answers, ${report.fallbacks} fallbacks (${report.modelCalls} model calls)`,
      `cpu      ${report.cpuMsPerRequest.serve ?? '?'} ms per request in serve, ${report.cpuMsPerRequest.driverAndModelServer} ms in the driver and model server`,
      `machine  ${report.machine.cpus} CPUs, Node ${report.machine.node}; shared: compare runs, not machines`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    if (report.errors > 0) process.exitCode = 1;
  } finally {
    if (serve) await stopChild(serve.child);
    await Promise.all([aws.close(), redis.dispose()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`load: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
