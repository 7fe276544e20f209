/**
 * `npm run bench`: what the router costs, measured on loopback against local protocol servers.
 *
 * - routerOverhead: the same Bedrock Converse call three ways, to the local Bedrock-protocol server
 *   (test/support/aws-protocol-server.ts, answering at once): through `cdk-scalable-ai serve` (the
 *   router Lambda's own bundle, caches off, so every request reaches the model), through the
 *   open-source Portkey gateway (`@portkey-ai/gateway`, provider bedrock, custom host = the local
 *   server, dummy keys; it signs with SigV4 and sends Converse over HTTP/1.1), and directly.
 *   Sequential p50/p99 after a warm-up, requests/s at --connections for --duration, and CPU ms per
 *   request of the serve and Portkey processes (utime+stime from /proc).
 * - cacheHit: sequential p50/p99 of one question answered from the exact cache (serve --redis with
 *   the test Redis-protocol server on loopback).
 * - coldStart: the router bundle's bytes and module init time (bench/router-cold-start.ts), for the
 *   default configuration and for one with every store.
 * - semanticCache: hitRate / wrongHitRate / threshold from bench/results/eval-cache-banking77.json
 *   (the committed result of bench/eval-cache-banking77.sh); --semantic re-runs it (minutes).
 * - synthSeconds: wall time of `npx cdk synth -q` of the example app (--no-synth skips it).
 *
 * --runs N repeats routerOverhead and cacheHit; each field is the median of the runs, with its
 * min/max under `spread`, and the router/Portkey ratios are taken within each run (the machine is
 * shared and noisy: compare within a run, not across machines). Progress goes to stderr; with
 * --json the last stdout line is one JSON object. It asserts nothing (DESIGN.md §7).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { COLD_START_CONFIGS, coldStart, median } from './router-cold-start';
import { percentile, post, processCpuMs, startServe, stopChild } from './serve-process';
import { DEFAULT_TIERS } from '../lambdas/cli/serve';
import { LocalAwsServer } from '../test/support/aws-protocol-server';
import { RedisServer } from '../test/support/redis-server';

const REPO = path.resolve(__dirname, '..');
const SEMANTIC_RESULT = path.join(REPO, 'bench', 'results', 'eval-cache-banking77.json');
const PORTKEY = path.join(REPO, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
/** Makes Portkey listen on 127.0.0.1 (it listens on every interface, with no option to change it). */
const LOOPBACK_PRELOAD = path.join(REPO, 'bench', 'listen-loopback.cjs');
const DEFAULT_CONFIG = 'Bedrock, no cache';
const EVERY_STORE_CONFIG = 'Bedrock + SageMaker + Valkey + pgvector + DynamoDB user context';

const USAGE = `Usage: npm run bench -- [options]

  --runs N           repetitions of routerOverhead and cacheHit (default 3)
  --requests N       sequential requests per measurement, after the warm-up (default 300)
  --warmup N         warm-up requests per measurement (default 30)
  --duration D       time of each requests/s measurement: 10s, 500ms (default 10s)
  --connections N    connections of the requests/s measurement (default 10)
  --cold-runs N      fresh processes per cold-start configuration (default 10)
  --semantic         re-run bench/eval-cache-banking77.sh (minutes) instead of reading its committed result
  --no-synth         skip timing npx cdk synth
  --json             print one JSON object as the last line
  -h, --help         show this help
`;

interface BenchArgs {
  readonly runs: number;
  readonly requests: number;
  readonly warmup: number;
  readonly durationMs: number;
  readonly connections: number;
  readonly coldRuns: number;
  readonly semantic: boolean;
  readonly synth: boolean;
  readonly json: boolean;
}

class UsageError extends Error {}

function parseBenchArgs(argv: string[]): BenchArgs | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'runs': { type: 'string' },
      'requests': { type: 'string' },
      'warmup': { type: 'string' },
      'duration': { type: 'string' },
      'connections': { type: 'string' },
      'cold-runs': { type: 'string' },
      'semantic': { type: 'boolean' },
      'no-synth': { type: 'boolean' },
      'json': { type: 'boolean' },
      'help': { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const int = (flag: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} must be an integer from ${min} to ${max}; got "${raw}"`);
    return n;
  };
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec((values.duration ?? '10s').trim());
  const durationMs = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : 1_000) : NaN;
  if (!(durationMs >= 100 && durationMs <= 300_000)) throw new UsageError(`--duration must be from 100ms to 300s, like 10s or 500ms; got "${values.duration}"`);
  return {
    runs: int('runs', values.runs, 3, 1, 50),
    requests: int('requests', values.requests, 300, 1, 100_000),
    warmup: int('warmup', values.warmup, 30, 0, 10_000),
    durationMs,
    connections: int('connections', values.connections, 10, 1, 256),
    coldRuns: int('cold-runs', values['cold-runs'], 10, 1, 200),
    semantic: values.semantic ?? false,
    synth: !(values['no-synth'] ?? false),
    json: values.json ?? false,
  };
}

const log = (text: string): void => void process.stderr.write(`bench: ${text}\n`);
const round2 = (x: number): number => Math.round(x * 100) / 100;

/** How one target is called: its base URL, path, headers and the body of a new (distinct) question. */
interface Target {
  readonly url: URL;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body: () => string;
  /** The process serving it, for its CPU time (none for the direct call). */
  readonly pid?: number;
}

interface Measured {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly rps: number;
  readonly cpuMsPerRequest: number | null;
}

/** Distinct questions, so no cache on the way can answer them. */
let questionSeq = 0;
const question = (): string => `How do I check the status of my card payment, case ${questionSeq++}?`;

async function sequential(agent: http.Agent, t: Target, warmup: number, requests: number): Promise<number[]> {
  const send = async (): Promise<number> => {
    const started = process.hrtime.bigint();
    const res = await post(agent, t.url, t.body(), t.path, t.headers);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (res.status !== 200) throw new Error(`${t.url.origin}${t.path} answered ${res.status}: ${res.body.slice(0, 300)}`);
    return ms;
  };
  for (let i = 0; i < warmup; i++) await send();
  const out: number[] = [];
  for (let i = 0; i < requests; i++) out.push(await send());
  return out.sort((a, b) => a - b);
}

/** Closed loop: `connections` workers for `durationMs`; returns answered requests per second. */
async function throughput(t: Target, connections: number, durationMs: number): Promise<{ rps: number; requests: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let ok = 0;
  let errors = 0;
  const started = Date.now();
  const until = started + durationMs;
  const worker = async (): Promise<void> => {
    while (Date.now() < until) {
      try {
        const res = await post(agent, t.url, t.body(), t.path, t.headers);
        if (res.status === 200) ok++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, () => worker()));
  agent.destroy();
  if (errors > 0) log(`${t.url.origin}${t.path}: ${errors} errors during the requests/s measurement (not counted)`);
  return { rps: Math.round((ok / ((Date.now() - started) / 1_000)) * 10) / 10, requests: ok + errors };
}

async function measure(t: Target, args: BenchArgs, withRps: boolean): Promise<Measured> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const cpuBefore = processCpuMs(t.pid);
  const lat = await sequential(agent, t, args.warmup, args.requests);
  agent.destroy();
  let rps = 0;
  let sent = args.warmup + args.requests;
  if (withRps) {
    const r = await throughput(t, args.connections, args.durationMs);
    rps = r.rps;
    sent += r.requests;
  }
  const cpuAfter = processCpuMs(t.pid);
  return {
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    rps,
    cpuMsPerRequest: cpuBefore === undefined || cpuAfter === undefined ? null : round2((cpuAfter - cpuBefore) / sent),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts the Portkey gateway (its own start-server bin) on loopback and waits until it answers. */
async function startPortkey(): Promise<{ child: ChildProcess; url: URL }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--require', LOOPBACK_PRELOAD, PORTKEY, `--port=${port}`, '--headless'], {
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => void (out = (out + c.toString('utf8')).slice(-4_000)));
  child.stderr!.on('data', (c: Buffer) => void (out = (out + c.toString('utf8')).slice(-4_000)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Portkey did not start within 30 s:\n${out}`)), 30_000);
    const check = setInterval(() => {
      if (out.includes('Ready for connections')) {
        clearTimeout(timer);
        clearInterval(check);
        resolve();
      }
    }, 50);
    child.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(check);
      reject(new Error(`Portkey exited (${code}) before listening:\n${out}`));
    });
  });
  return { child, url: new URL(`http://127.0.0.1:${port}`) };
}

interface Spread {
  readonly min: number;
  readonly max: number;
}

type Row = Record<string, number | null>;

/** Median of each numeric field over the runs, with its min/max (null when a run has none). */
function summarize(runs: Row[]): { median: Row; spread: Record<string, Spread | null> } {
  const med: Row = {};
  const spread: Record<string, Spread | null> = {};
  for (const key of Object.keys(runs[0])) {
    const xs = runs.map((r) => r[key]).filter((x): x is number => typeof x === 'number');
    const all = xs.length === runs.length;
    med[key] = all ? round2(median(xs)) : null;
    spread[key] = all ? { min: round2(Math.min(...xs)), max: round2(Math.max(...xs)) } : null;
  }
  return { median: med, spread };
}

function semanticCache(rerun: boolean): { hitRate: number; wrongHitRate: number; threshold: number; source: string } {
  if (rerun) {
    log('re-running bench/eval-cache-banking77.sh (minutes)');
    execFileSync('bash', [path.join(REPO, 'bench', 'eval-cache-banking77.sh')], { cwd: REPO, stdio: ['ignore', 2, 2], timeout: 3_600_000 });
  }
  const r = JSON.parse(readFileSync(SEMANTIC_RESULT, 'utf8')) as { hitRate: number; wrongHitRate: number; threshold: number };
  return {
    hitRate: r.hitRate,
    wrongHitRate: r.wrongHitRate,
    threshold: r.threshold,
    source: rerun ? 're-run now (bench/eval-cache-banking77.sh)' : 'committed bench/results/eval-cache-banking77.json (--semantic re-runs it)',
  };
}

function synthSeconds(): number {
  log('timing npx cdk synth -q of the example app');
  const started = Date.now();
  execFileSync('npx', ['cdk', 'synth', '-q'], { cwd: REPO, stdio: ['ignore', 2, 2], timeout: 900_000 });
  return round2((Date.now() - started) / 1_000);
}

async function main(): Promise<void> {
  let args: BenchArgs | undefined;
  try {
    args = parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (!args) {
    process.stdout.write(USAGE);
    return;
  }

  const [redis, aws] = await Promise.all([RedisServer.start(), LocalAwsServer.start()]);
  const children: ChildProcess[] = [];
  try {
    const env = { ...process.env, ...aws.env() };
    delete env.AWS_PROFILE;
    const common = ['--port', '0', '--bedrock-endpoint', aws.http2Url, '--tenant', 'bench', '--quiet'];
    // Caches off: every request reaches the model.
    const router = await startServe(common, env);
    children.push(router.child);
    const cached = await startServe([...common, '--redis', `redis://${redis.host}:${redis.port}`], env);
    children.push(cached.child);
    let portkey: { child: ChildProcess; url: URL } | undefined;
    let portkeyError: string | null = null;
    try {
      portkey = await startPortkey();
      children.push(portkey.child);
    } catch (err) {
      portkeyError = (err as Error).message;
      log(`Portkey is not measured: ${portkeyError}`);
    }

    const chat = (): string => JSON.stringify({ messages: [{ role: 'user', content: question() }] });
    // Which Bedrock model the router calls for these questions: Portkey and the direct call use it too.
    const probe = await post(new http.Agent(), new URL(router.url), chat());
    if (probe.status !== 200) throw new Error(`serve's first request failed: ${probe.status} ${probe.body}`);
    const tierId = (JSON.parse(probe.body) as { routing: { classifiedTier: string } }).routing.classifiedTier;
    const tier = DEFAULT_TIERS.find((t) => t.id === tierId);
    if (!tier?.modelId) throw new Error(`the router classified to tier "${tierId}", which has no Bedrock model in serve's defaults`);
    const modelId = tier.modelId;
    const maxTokens = tier.maxTokens;
    log(`model ${modelId} (tier ${tierId}); serve ${router.url}, serve with the exact cache ${cached.url}${portkey ? `, Portkey ${portkey.url.origin}` : ''}, upstream ${aws.http1Url} (HTTP/1.1) and ${aws.http2Url} (h2c)`);

    const routerTarget: Target = { url: new URL(router.url), path: '/v1/chat', body: chat, pid: router.child.pid };
    const portkeyTarget: Target | undefined = portkey && {
      url: portkey.url,
      path: '/v1/chat/completions',
      headers: {
        'x-portkey-provider': 'bedrock',
        'x-portkey-custom-host': aws.http1Url,
        'x-portkey-aws-access-key-id': 'AKIDLOCALTEST',
        'x-portkey-aws-secret-access-key': 'local-test-secret',
        'x-portkey-aws-region': aws.region,
      },
      body: () => JSON.stringify({ model: modelId, max_tokens: maxTokens, messages: [{ role: 'user', content: question() }] }),
      pid: portkey.child.pid,
    };
    const directTarget: Target = {
      url: new URL(aws.http1Url),
      path: `/model/${encodeURIComponent(modelId)}/converse`,
      body: () => JSON.stringify({ messages: [{ role: 'user', content: [{ text: question() }] }], inferenceConfig: { maxTokens } }),
    };
    const hitQuestion = JSON.stringify({ messages: [{ role: 'user', content: 'How do I check the status of my card payment?' }] });
    const hitTarget: Target = { url: new URL(cached.url), path: '/v1/chat', body: () => hitQuestion, pid: cached.child.pid };
    const first = await post(new http.Agent(), hitTarget.url, hitQuestion);
    if (first.status !== 200) throw new Error(`serve --redis failed: ${first.status} ${first.body}`);

    const overheadRuns: Row[] = [];
    const hitRuns: Row[] = [];
    let cacheMisses = 0;
    for (let run = 1; run <= args.runs; run++) {
      log(`run ${run}/${args.runs}: router`);
      const r = await measure(routerTarget, args, true);
      log(`run ${run}/${args.runs}: Portkey`);
      const p = portkeyTarget ? await measure(portkeyTarget, args, true) : undefined;
      log(`run ${run}/${args.runs}: direct`);
      const d = await measure(directTarget, args, false);
      log(`run ${run}/${args.runs}: exact-cache hit`);
      const hitAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const hitLat: number[] = [];
      for (let i = 0; i < args.warmup + args.requests; i++) {
        const started = process.hrtime.bigint();
        const res = await post(hitAgent, hitTarget.url, hitQuestion);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        if (res.status !== 200) throw new Error(`cache-hit request answered ${res.status}`);
        if (res.headers['x-cache'] === 'miss') cacheMisses++;
        if (i >= args.warmup) hitLat.push(ms);
      }
      hitAgent.destroy();
      hitLat.sort((a, b) => a - b);
      const ratio = (a: number | undefined, b: number | undefined): number | null =>
        (a === undefined || b === undefined || b === 0 ? null : round2(a / b));
      overheadRuns.push({
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        rps: r.rps,
        cpuMsPerRequest: r.cpuMsPerRequest,
        portkeyP50Ms: p?.p50Ms ?? null,
        portkeyP99Ms: p?.p99Ms ?? null,
        portkeyRps: p?.rps ?? null,
        portkeyCpuMsPerRequest: p?.cpuMsPerRequest ?? null,
        directP50Ms: d.p50Ms,
        directP99Ms: d.p99Ms,
        p50VsPortkey: ratio(r.p50Ms, p?.p50Ms),
        p99VsPortkey: ratio(r.p99Ms, p?.p99Ms),
        rpsVsPortkey: ratio(r.rps, p?.rps),
        addedP50VsPortkey: ratio(r.p50Ms - d.p50Ms, p === undefined ? undefined : p.p50Ms - d.p50Ms),
      });
      hitRuns.push({ p50Ms: percentile(hitLat, 50), p99Ms: percentile(hitLat, 99) });
    }

    const overhead = summarize(overheadRuns);
    const hit = summarize(hitRuns);
    const { p50VsPortkey, p99VsPortkey, rpsVsPortkey, addedP50VsPortkey, ...overheadFields } = overhead.median;
    log(`cold start: ${args.coldRuns} fresh processes per configuration`);
    const configs = { default: COLD_START_CONFIGS[DEFAULT_CONFIG], everyStore: COLD_START_CONFIGS[EVERY_STORE_CONFIG] };
    const cold = coldStart(configs, args.coldRuns);
    const semantic = semanticCache(args.semantic);
    const synth = args.synth ? synthSeconds() : null;

    const report = {
      routerOverhead: {
        ...overheadFields,
        // Router / Portkey within each run (median over runs): below 1 means the router is faster (rps: above 1).
        ratios: { p50: p50VsPortkey, p99: p99VsPortkey, rps: rpsVsPortkey, addedP50: addedP50VsPortkey },
        spread: overhead.spread,
        portkeyError,
        runs: overheadRuns,
      },
      cacheHit: { ...hit.median, spread: hit.spread, missesSeen: cacheMisses },
      coldStart: {
        default: { bundleBytes: cold.bundleBytes, initMs: round2(median(cold.initMs.default)) },
        everyStore: { bundleBytes: cold.bundleBytes, initMs: round2(median(cold.initMs.everyStore)) },
        configurations: { default: DEFAULT_CONFIG, everyStore: EVERY_STORE_CONFIG },
      },
      semanticCache: semantic,
      synthSeconds: synth,
      settings: {
        runs: args.runs,
        requests: args.requests,
        warmup: args.warmup,
        durationMs: args.durationMs,
        connections: args.connections,
        coldRuns: args.coldRuns,
        modelId,
      },
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.arch()}`, loadavg: os.loadavg().map(round2) },
    };

    const o = overhead.median;
    const ratios = report.routerOverhead.ratios;
    const s = (k: string): string => {
      const sp = overhead.spread[k];
      return sp ? ` [${sp.min}-${sp.max}]` : '';
    };
    const v = (x: number | null | undefined): string => (x === null || x === undefined ? 'n/a' : String(x));
    const lines = [
      `                      p50 ms          p99 ms          req/s (${args.connections} conn)   CPU ms/req`,
      `router (serve)        ${v(o.p50Ms)}${s('p50Ms')}   ${v(o.p99Ms)}${s('p99Ms')}   ${v(o.rps)}${s('rps')}   ${v(o.cpuMsPerRequest)}`,
      `Portkey gateway       ${v(o.portkeyP50Ms)}${s('portkeyP50Ms')}   ${v(o.portkeyP99Ms)}${s('portkeyP99Ms')}   ${v(o.portkeyRps)}${s('portkeyRps')}   ${v(o.portkeyCpuMsPerRequest)}`,
      `direct Converse       ${v(o.directP50Ms)}${s('directP50Ms')}   ${v(o.directP99Ms)}${s('directP99Ms')}`,
      `router / Portkey      p50 ${v(ratios.p50)}x, p99 ${v(ratios.p99)}x, req/s ${v(ratios.rps)}x (same run, median of ${args.runs})`,
      ...(portkeyError ? [`Portkey not measured: ${portkeyError.split('\n')[0]}`] : []),
      `exact-cache hit       p50 ${v(hit.median.p50Ms)} ms, p99 ${v(hit.median.p99Ms)} ms`,
      `cold start            ${(cold.bundleBytes / 1e6).toFixed(2)} MB bundle; init ${report.coldStart.default.initMs} ms (default), ${report.coldStart.everyStore.initMs} ms (every store)`,
      `semantic cache        hitRate ${(semantic.hitRate * 100).toFixed(1)}%, wrongHitRate ${(semantic.wrongHitRate * 100).toFixed(2)}% at threshold ${semantic.threshold} (${semantic.source})`,
      `cdk synth             ${synth === null ? 'skipped (--no-synth)' : `${synth} s`}`,
      `machine               ${report.machine.cpus} CPUs (${report.machine.cpuModel}), Node ${report.machine.node}, load ${report.machine.loadavg.join(' ')}; shared: compare within a run`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    for (const c of children.reverse()) await stopChild(c);
    await Promise.all([aws.close(), redis.dispose()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
