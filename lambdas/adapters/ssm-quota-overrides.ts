/**
 * The per-tenant quota overrides, from an SSM parameter (String) an operator can change without a
 * deploy: read on first use and again once a copy is older than its TTL, each read bounded in
 * time, under a breaker; a read that fails or holds invalid JSON keeps the last good copy.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { traced } from './powertools-tracing';
import { PARAMETER_ATTEMPT_TIMEOUT_MS } from './router-config';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { withDeadline } from '../core/abortable';
import { CircuitBreaker } from '../core/circuit-breaker';
import type { MetricsRecorder } from '../core/ports';
import { parseQuotaOverrides, type QuotaOverrides, type QuotaOverridesSource } from '../core/quota';

export interface SsmQuotaOverridesOptions {
  /** Seconds a copy is used before the parameter is read again. */
  readonly ttlSeconds: number;
  /** @default a client with one attempt of at most PARAMETER_ATTEMPT_TIMEOUT_MS */
  readonly client?: SSMClient;
  /** Milliseconds a read may take. @default PARAMETER_ATTEMPT_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** Epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Where a failed read or invalid overrides are logged. */
  readonly logger?: { error(message: string, attributes: Record<string, unknown>): void };
}

export class SsmQuotaOverrides implements QuotaOverridesSource {
  private good: QuotaOverrides = { tenants: {} };
  private readAt?: number;
  private pending?: Promise<void>;
  private readonly ttlMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  /** Opens on one failed read and lets the next read through one TTL later: a failing SSM costs one read per TTL. */
  private readonly breaker: CircuitBreaker;
  private client?: SSMClient;

  constructor(private readonly parameterName: string, private readonly options: SsmQuotaOverridesOptions) {
    this.ttlMs = options.ttlSeconds * 1000;
    this.timeoutMs = options.timeoutMs ?? PARAMETER_ATTEMPT_TIMEOUT_MS;
    // Read at each call, not captured: whatever Date.now is then.
    this.now = options.now ?? (() => Date.now());
    this.breaker = new CircuitBreaker('quota-overrides', { failureThreshold: 1, coolDownMs: this.ttlMs, now: this.now });
    this.client = options.client;
  }

  /** The overrides: the copy in hand, read again first when it is older than the TTL. */
  async current(metrics: MetricsRecorder): Promise<QuotaOverrides> {
    if (this.readAt === undefined || this.now() - this.readAt >= this.ttlMs) {
      // Requests at once share one read.
      this.pending ??= this.read(metrics).finally(() => {
        this.pending = undefined;
      });
      await this.pending;
    }
    return this.good;
  }

  private async read(metrics: MetricsRecorder): Promise<void> {
    if (!this.breaker.tryAcquire()) return;
    let text: string | undefined;
    try {
      const client = (this.client ??= traced(new SSMClient({
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({ connectionTimeout: this.timeoutMs, requestTimeout: this.timeoutMs, throwOnRequestTimeout: true }),
      })));
      const output = await withDeadline(this.timeoutMs, `reading the quota overrides from the SSM parameter ${this.parameterName}`, (signal) =>
        client.send(new GetParameterCommand({ Name: this.parameterName }), { abortSignal: signal }));
      text = output.Parameter?.Value ?? '';
    } catch (err) {
      this.breaker.failure();
      metrics.add(M.QUOTA_OVERRIDES_ERRORS, 'Count', 1, { [M.DIMENSION_REASON]: 'read' });
      this.options.logger?.error('quota overrides not read: the last good copy stays in use', { parameter: this.parameterName, error: String(err) });
      return;
    }
    this.breaker.success();
    this.readAt = this.now();
    try {
      this.good = parseQuotaOverrides(text);
    } catch (err) {
      metrics.add(M.QUOTA_OVERRIDES_ERRORS, 'Count', 1, { [M.DIMENSION_REASON]: 'invalid' });
      this.options.logger?.error('quota overrides invalid: the last good copy stays in use', { parameter: this.parameterName, error: (err as Error).message });
    }
  }
}
