import { Duration, Token } from 'aws-cdk-lib';
import type { CoalescingRuntimeConfig } from '../contract/runtime-config';
import type { IModelTier } from '../models/model-tier';

/**
 * Request coalescing of a `TieredRouter`: identical cacheable requests in flight share one model call.
 *
 * Of the requests that miss the caches at the same time (in any of the router's containers, and
 * in the batch worker), one takes a short lease in the response cache and asks a model. The
 * others wait for its answer and are answered from the exact cache (`x-cache: coalesced`), or
 * call a model themselves when the wait runs out or the lease holder fails. Scoped like the exact cache key (tenant, and user for
 * personal answers). The lease lives as long as its holder's model calls may take (the tiers'
 * timeouts); a cache that fails leaves each request to call a model, as without coalescing.
 */
export interface RequestCoalescingOptions {
  /**
   * Whether identical requests in flight share one model call. Needs the router's `cache`.
   * @default - true with a cache, false without one
   */
  readonly enabled?: boolean;
  /**
   * How long a request waits for the answer of an identical request in flight before it calls a
   * model itself. At most the router's `timeout` less the slowest tier's timeout, so that a
   * request that gave up waiting still has the time of any tier's call; whole milliseconds, at
   * least 1 ms.
   * @default - 3 seconds, or the router's timeout less the slowest tier's timeout if that is shorter
   */
  readonly maxWait?: Duration;
}

/** The default `maxWait`, when the router's timeout leaves room for it. */
export const DEFAULT_COALESCING_MAX_WAIT = Duration.seconds(3);

/**
 * The runtime configuration of coalescing (undefined: off), validated against the router's cache,
 * timeout and tiers.
 * @internal
 */
export function coalescingRuntimeConfig(
  options: RequestCoalescingOptions | undefined, hasCache: boolean, routerTimeout: Duration, tiers: IModelTier[],
): CoalescingRuntimeConfig | undefined {
  const enabled = options?.enabled ?? hasCache;
  if (enabled && !hasCache) {
    throw new Error('TieredRouter: coalescing.enabled needs cache (the lease and the answer that waiting requests read live in the response cache); set cache, or leave coalescing.enabled unset');
  }
  if (!enabled) return undefined;
  const slowest = Math.max(...tiers.map((t) => t.timeout.toMilliseconds()));
  const room = routerTimeout.toMilliseconds() - slowest;
  const maxWait = options?.maxWait;
  if (maxWait === undefined) return { maxWaitMs: Math.min(DEFAULT_COALESCING_MAX_WAIT.toMilliseconds(), room) };
  if (Token.isUnresolved(maxWait.toMilliseconds({ integral: false }))) {
    throw new Error('TieredRouter: coalescing.maxWait must be a literal duration, not a token');
  }
  const ms = maxWait.toMilliseconds({ integral: false });
  if (!Number.isInteger(ms) || ms < 1 || ms > room) {
    throw new Error(`TieredRouter: coalescing.maxWait must be whole milliseconds between 1 ms and ${room} ms (the router's timeout of `
      + `${routerTimeout.toHumanString()} less the slowest tier's timeout of ${slowest} ms: a request that gave up waiting still needs time `
      + `for a tier's call); got ${maxWait.toHumanString()}`);
  }
  return { maxWaitMs: ms };
}
