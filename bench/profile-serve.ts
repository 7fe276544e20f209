/**
 * `npx ts-node --transpile-only bench/profile-serve.ts [--duration 10s] [--connections 10] [--out DIR]`:
 * a CPU profile of `cdk-scalable-ai serve` under the bench's requests/s phase (caches off, every
 * request a Converse call to the local Bedrock-protocol server), and its top self-time frames.
 *
 * The router bundle is rebuilt unminified into DIR so the frames carry names; serve runs under
 * `node --cpu-prof` and writes the profile when it stops (open the .cpuprofile in Chrome DevTools
 * for the call tree). A development tool: nothing runs it in the tests.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, post, stopChild } from './serve-process';
import { LocalAwsServer } from '../test/support/aws-protocol-server';

const REPO = path.resolve(__dirname, '..');

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: number[];
}
interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

/**
 * Self time per frame and per group, in ms, from a .cpuprofile. A group is the npm package (its
 * SDK submodule for @smithy/core and @aws-sdk/core) or the library's own file a frame of the
 * unminified bundle is in (esbuild marks each module with a `// path` comment line), the file for
 * frames elsewhere, or the V8 pseudo-frame ((idle), (garbage collector), (program)).
 */
export function selfTimes(profile: CpuProfile, bundle: string): { frames: Map<string, number>; groups: Map<string, number>; busyMs: number } {
  const starts: number[] = [];
  const modules: string[] = [];
  readFileSync(bundle, 'utf8').split('\n').forEach((line, i) => {
    const m = /^\/\/ (\S+\.(?:js|mjs|cjs|ts|json))$/.exec(line);
    if (m) {
      starts.push(i);
      modules.push(m[1]);
    }
  });
  const moduleAt = (line: number): string => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi + 1) / 2);
      if (starts[mid] <= line) lo = mid;
      else hi = mid - 1;
    }
    const name = starts[lo] <= line ? modules[lo] : '(bundle)';
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)(?:\/dist-[^/]+\/submodules\/([^/]+))?/.exec(name);
    return pkg ? `${pkg[1]}${pkg[2] ? `/${pkg[2]}` : ''}` : name;
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const frames = new Map<string, number>();
  const groups = new Map<string, number>();
  let busyMs = 0;
  const add = (m: Map<string, number>, k: string, ms: number): void => void m.set(k, (m.get(k) ?? 0) + ms);
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1_000;
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') return;
    busyMs += ms;
    const file = url.replace(/^file:\/\//, '');
    add(frames, `${functionName || '(anonymous)'} ${file ? `${path.basename(file)}:${lineNumber + 1}` : ''}`.trim(), ms);
    add(groups, file === bundle ? moduleAt(lineNumber) : file.startsWith('node:') ? 'node internals' : file || functionName, ms);
  });
  return { frames, groups, busyMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: 'string' }, connections: { type: 'string' }, out: { type: 'string' } } });
  const durationMs = Number((values.duration ?? '10s').replace(/s$/, '')) * 1_000;
  const connections = Number(values.connections ?? 10);
  const out = path.resolve(values.out ?? '/tmp/serve-profile');
  mkdirSync(out, { recursive: true });
  const bundle = path.join(out, 'router.js');
  execFileSync('npx', ['esbuild', '--bundle', 'lambdas/router/handler.ts', '--target=node22', '--platform=node', `--outfile=${bundle}`, '--log-level=warning'], { cwd: REPO, stdio: 'inherit', timeout: 120_000 });

  const aws = await LocalAwsServer.start();
  const env = { ...process.env, ...aws.env() };
  delete env.AWS_PROFILE;
  const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${out}`, CLI, 'serve', '--port', '0', '--bedrock-endpoint', aws.http2Url, '--tenant', 'bench', '--quiet', '--router-bundle', bundle], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /^listening on (\S+)$/m.exec(text);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
    setTimeout(() => reject(new Error('serve did not start within 30 s')), 30_000).unref();
  });
  const target = new URL(url);
  let seq = 0;
  const body = (): string => JSON.stringify({ messages: [{ role: 'user', content: `How do I check the status of my card payment, case ${seq++}?` }] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  for (let i = 0; i < 200; i++) await post(agent, target, body());
  let ok = 0;
  const until = Date.now() + durationMs;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (Date.now() < until) if ((await post(agent, target, body())).status === 200) ok++;
  }));
  agent.destroy();
  await stopChild(child);
  await aws.close();
  process.stdout.write(`${ok} requests in ${durationMs} ms: ${(ok / (durationMs / 1000)).toFixed(0)}/s\n`);

  const file = readdirSync(out).filter((f) => f.endsWith('.cpuprofile')).sort().pop()!;
  const { frames, groups, busyMs } = selfTimes(JSON.parse(readFileSync(path.join(out, file), 'utf8')) as CpuProfile, bundle);
  const top = (m: Map<string, number>, n: number): string => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, ms]) => `${((ms / busyMs) * 100).toFixed(1).padStart(5)}%  ${k}`).join('\n');
  process.stdout.write(`profile ${path.join(out, file)} (${busyMs.toFixed(0)} ms busy, start-up included)\n\n` +
    `top frames (self time, share of busy time):\n${top(frames, 30)}\n\nby package or file:\n${top(groups, 30)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
