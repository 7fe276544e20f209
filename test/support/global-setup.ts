/**
 * Jest global setup: runs once per `jest` invocation, before any worker starts.
 *
 * Resolves (and if needed downloads) the Redis-protocol server binary once, so that test
 * workers find it in `.cache/redis` instead of racing to fetch it. The result reaches the
 * workers through the environment, which they inherit. A failure does not stop the run (the
 * construct tests need no Redis); it is passed on, and tests that need Redis fail with it.
 */
import { REDIS_BINARY_ENV, REDIS_UNAVAILABLE_ENV, ensureRedisBinary } from './redis-server';

export default async function globalSetup(): Promise<void> {
  try {
    const binary = await ensureRedisBinary();
    process.env[REDIS_BINARY_ENV] = JSON.stringify(binary);
    delete process.env[REDIS_UNAVAILABLE_ENV];
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    process.env[REDIS_UNAVAILABLE_ENV] = reason;
    process.stderr.write(`\n[global-setup] no Redis-protocol server for the handler tests: ${reason}\n`);
  }
}
