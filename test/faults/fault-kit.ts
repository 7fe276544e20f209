/**
 * What the fault tests share: a router handler loaded as a fresh container on a configuration
 * (with the Valkey clients it opens tracked, and a clock the test can move so that a 30 s breaker
 * cool-down passes without waiting for it), a TCP server that accepts and never answers, and a
 * ledger that counts requests in and answers out (every request answered once, with its own
 * answer).
 */
import * as net from 'node:net';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type Valkey from 'iovalkey';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type * as RouterHandler from '../../lambdas/router/handler';
import type { LocalAwsServer } from '../support/aws-protocol-server';
import { captureJsonStdout, enableEmf, httpApiEvent, lambdaContext, parseEmf, type EmfMetric, type EventOptions } from '../support/lambda-harness';

/** What one invocation answered and wrote. */
export interface Reply {
  readonly status: number;
  /** Response headers, lower-case names. */
  readonly headers: Record<string, string>;
  readonly body: Record<string, any>;
  readonly metrics: EmfMetric[];
  /** Wall-clock milliseconds the invocation took (real time, not the moved clock). */
  readonly ms: number;
}

/**
 * `Date.now()` shifted by an offset the test moves. Installed before a handler module is loaded,
 * so the circuit breakers it builds (which keep `Date.now` as their clock) read it; timers and
 * socket timeouts still run on real time.
 */
export class MovableClock {
  private offset = 0;
  private readonly spy: jest.SpyInstance<number, []>;

  constructor() {
    const real = Date.now.bind(Date);
    this.spy = jest.spyOn(Date, 'now').mockImplementation(() => real() + this.offset);
  }

  /** Moves the clock forward (e.g. past a breaker's cool-down). */
  advance(ms: number): void {
    this.offset += ms;
  }

  restore(): void {
    this.spy.mockRestore();
  }
}

export interface RouterContainer {
  /** The Valkey clients this container opened. */
  readonly valkeyClients: ReadonlySet<Valkey>;
  /** Invokes the handler with a chat of one user turn. */
  ask(text: string, options?: EventOptions & { extra?: Record<string, unknown> }): Promise<Reply>;
  /** Closes the container's Valkey clients and restores the environment and the mocks. */
  stop(): Promise<void>;
}

/**
 * A router container: the real handler module loaded afresh with `config` in its environment,
 * invoked as `userArn`. Install a {@link MovableClock} before calling this if the test moves time.
 */
export function startRouter(aws: LocalAwsServer, config: RouterRuntimeConfig, userArn: string): RouterContainer {
  const savedEnv = { ...process.env };
  Object.assign(process.env, aws.env(), { [ROUTER_CONFIG_ENV]: JSON.stringify(config), POWERTOOLS_SERVICE_NAME: 'faults-test' });
  enableEmf();
  const captured = captureJsonStdout();
  const valkeyClients = new Set<Valkey>();
  let handler!: typeof RouterHandler.handler;
  let connectSpy!: jest.SpyInstance;
  jest.isolateModules(() => {
    // The container's own iovalkey (isolated modules have their own copy of every module).
    const { default: ContainerValkey } = jest.requireActual<{ default: typeof Valkey }>('iovalkey');
    const connect = ContainerValkey.prototype.connect;
    connectSpy = jest.spyOn(ContainerValkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
      valkeyClients.add(this);
      return connect.apply(this, args);
    });
    ({ handler } = jest.requireActual<typeof RouterHandler>('../../lambdas/router/handler'));
  });
  return {
    valkeyClients,
    async ask(text, options = {}) {
      captured.splice(0);
      const started = performance.now();
      const res: APIGatewayProxyStructuredResultV2 = await handler(
        httpApiEvent({ messages: [{ role: 'user', content: text }], ...options.extra }, userArn, options),
        lambdaContext(),
      );
      const ms = performance.now() - started;
      const raw = String(res.body ?? '');
      return {
        status: res.statusCode ?? 0,
        headers: Object.fromEntries(Object.entries(res.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
        body: raw ? (JSON.parse(raw) as Record<string, any>) : {},
        metrics: parseEmf(captured.splice(0)),
        ms,
      };
    },
    async stop() {
      for (const c of valkeyClients) c.disconnect();
      connectSpy.mockRestore();
      (process.stdout.write as unknown as jest.SpyInstance).mockRestore?.();
      for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
      Object.assign(process.env, savedEnv);
    },
  };
}

/** A port nothing listens on (bound, then released: connections to it are refused). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Requests in, answers out: each request is recorded under a unique question, each answer under
 * the question it answered. {@link check} asserts nothing was lost and nothing answered twice.
 */
export class Ledger {
  private readonly sent: string[] = [];
  private readonly answered = new Map<string, Reply[]>();

  /** Sends one request through `ask` and records it and its answer. */
  async ask(ask: (text: string) => Promise<Reply>, text: string): Promise<Reply> {
    this.sent.push(text);
    const reply = await ask(text);
    this.answered.set(text, [...(this.answered.get(text) ?? []), reply]);
    return reply;
  }

  get replies(): Reply[] {
    return [...this.answered.values()].flat();
  }

  /**
   * Every request sent got exactly one answer with status `status`; an answered request's text is
   * its own question's answer (`ownAnswer` says whether a text answers a question).
   */
  check(status: number, ownAnswer?: (question: string, text: string) => boolean): { in: number; out: number } {
    expect(new Set(this.sent).size).toBe(this.sent.length);
    for (const q of this.sent) {
      const replies = this.answered.get(q) ?? [];
      expect({ q, answers: replies.length }).toEqual({ q, answers: 1 });
      expect({ q, status: replies[0].status }).toEqual({ q, status });
      if (ownAnswer) expect({ q, own: ownAnswer(q, String(replies[0].body.output?.text ?? '')) }).toEqual({ q, own: true });
    }
    return { in: this.sent.length, out: this.replies.length };
  }
}

/** Polls `condition` every 25 ms until it holds, or fails after `timeoutMs` naming `what`. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const giveUp = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
