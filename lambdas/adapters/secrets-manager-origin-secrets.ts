/**
 * The accepted origin secret values, read from Secrets Manager: the secret's AWSCURRENT,
 * AWSPENDING and AWSPREVIOUS versions, so that a request keeps passing while a rotation moves
 * CloudFront's origin header from one value to the next.
 */
import { readSecret } from './connections';
import type { OriginVerificationRuntimeConfig } from '../../constructs/contract/runtime-config';
import { withDeadline } from '../core/abortable';
import { matchesOriginSecret, type OriginSecretVerifier, type OriginVerdict } from '../core/origin-verification';

/** The version stages a router accepts: the value CloudFront sends before, during and after a rotation. */
export const ACCEPTED_STAGES = ['AWSCURRENT', 'AWSPENDING', 'AWSPREVIOUS'] as const;
/** Milliseconds a read of the versions (three GetSecretValue calls in parallel) may take. */
export const DEFAULT_ORIGIN_SECRET_TIMEOUT_MS = 1_000;
/**
 * Least milliseconds between two reads caused by a mismatch: a rotation the router has not seen
 * costs at most this long of 403s, and a flood of bad headers at most one read per interval.
 */
export const MISMATCH_REFRESH_MS = 30_000;

export interface SecretsManagerOriginSecretsOptions {
  /**
   * Milliseconds each read of a version may take in all: the read is abandoned at this deadline
   * (the shared Secrets Manager client's own connect and request timeouts are its first caller's).
   * @default DEFAULT_ORIGIN_SECRET_TIMEOUT_MS
   */
  readonly timeoutMs?: number;
  /** @default MISMATCH_REFRESH_MS */
  readonly mismatchRefreshMs?: number;
  /** Clock in ms (tests). @default Date.now */
  readonly now?: () => number;
  /** Where a failed read is logged. */
  readonly logger?: { error(message: string, attributes: Record<string, unknown>): void };
}

/**
 * Keeps the accepted values for `refreshSeconds`, then reads them again. A presented value that
 * matches none of them makes it read again first (at most once per `mismatchRefreshMs`). A read
 * that fails keeps the values of the last good one (they were CloudFront's values a moment ago);
 * with none, every request is `unavailable` (503): the router fails closed, never open.
 */
export class SecretsManagerOriginSecrets implements OriginSecretVerifier {
  private readonly timeoutMs: number;
  private readonly mismatchRefreshMs: number;
  private readonly now: () => number;
  private values?: string[];
  private loadedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private pending?: Promise<void>;

  constructor(private readonly config: OriginVerificationRuntimeConfig, private readonly options: SecretsManagerOriginSecretsOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_ORIGIN_SECRET_TIMEOUT_MS;
    this.mismatchRefreshMs = options.mismatchRefreshMs ?? MISMATCH_REFRESH_MS;
    this.now = options.now ?? Date.now;
  }

  async verify(presented: string | undefined, signal?: AbortSignal): Promise<OriginVerdict> {
    if (this.values === undefined || this.now() - this.loadedAt >= this.config.refreshSeconds * 1000) await this.refresh(signal);
    if (this.values === undefined) return 'unavailable';
    if (matchesOriginSecret(this.values, presented)) return 'valid';
    // A missing header is no rotation the router missed: no read for it.
    if (!presented || this.now() - this.attemptedAt < this.mismatchRefreshMs) return 'invalid';
    await this.refresh(signal);
    return matchesOriginSecret(this.values, presented) ? 'valid' : 'invalid';
  }

  /** Reads the versions once (callers share a read in flight); never throws. */
  private refresh(signal?: AbortSignal): Promise<void> {
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
    // A caller whose own signal aborts stops waiting; the read goes on for the next one.
    return withDeadline(this.timeoutMs, 'reading the origin secret', () => this.pending!, signal).catch(() => undefined);
  }

  private async load(): Promise<void> {
    this.attemptedAt = this.now();
    try {
      const values = await this.readStages();
      if (values.length === 0) throw new Error('the origin secret has no value in AWSCURRENT, AWSPENDING or AWSPREVIOUS');
      this.values = values;
      this.loadedAt = this.now();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.options.logger?.error(this.values
        ? 'origin secret unreadable: keeping the values read before'
        : 'origin secret unreadable and none cached: requests are answered 503 until it can be read', {
        secretArn: this.config.secretArn,
        error: { name: e.name, message: e.message },
      });
    }
  }

  private async readStages(): Promise<string[]> {
    const values = await Promise.all(ACCEPTED_STAGES.map((stage) => readSecret(this.config.secretArn, {
      stage,
      // This class keeps the values itself (refreshSeconds), and a mismatch must see a new version.
      fresh: true,
      // A stage no version carries (no rotation in progress, none finished yet) is no error.
      undefinedIfNotFound: true,
      timeoutMs: this.timeoutMs,
    })));
    return [...new Set(values.filter((v): v is string => typeof v === 'string' && v.length > 0))];
  }
}
