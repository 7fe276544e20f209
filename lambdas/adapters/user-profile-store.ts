import { DEFAULT_SECRET_TIMEOUT_MS, readSecret } from './connections';
import type { PasswordProvider } from './pg-user-profiles';
import type { UserProfilesRuntimeConfig } from '../../constructs/contract/runtime-config';
import { withDeadline } from '../core/abortable';
import type { UserProfileStore } from '../core/user-profile-endpoint';
import { ProfileLookup } from '../core/user-profiles';

/** The profile store of a router container and the chat path's bounded reads of it. */
export interface UserProfileDependencies {
  readonly store: UserProfileStore;
  readonly lookup: ProfileLookup;
}

/**
 * The user-profile store of {@link UserProfilesRuntimeConfig}: reads on a pool to the reader
 * endpoint, writes on a pool to the writer endpoint. Pools connect on first use, so building it
 * costs nothing; each new connection gets its password from `passwordProvider`.
 */
export function createUserProfileDependencies(config: UserProfilesRuntimeConfig): UserProfileDependencies {
  const { PgUserProfiles, createUserProfilePools } = loadPgUserProfiles();
  const password = passwordProvider(config);
  const pools = createUserProfilePools(config, password);
  const store = new PgUserProfiles(pools.reader, pools.writer, config.table, config.writeForwarding ?? false, password.invalidate);
  return { store, lookup: new ProfileLookup(store, config.timeoutMs) };
}

/** Shortest time between two fresh reads of the secret after a refused password. */
export const PASSWORD_REFRESH_INTERVAL_MS = 30_000;

/**
 * The password of a new connection, bounded in time: with `iam`, an RDS IAM auth token signed
 * locally for the endpoint (valid 15 minutes; a token per connection, so it is never stale);
 * with `secret`, the `password` of the Secrets Manager secret, cached by Powertools for an hour.
 * Single-user rotation invalidates the old password at once, so `invalidate()` (called when the
 * database refuses a password) makes the next connection read the secret afresh, at most every
 * {@link PASSWORD_REFRESH_INTERVAL_MS}: after a rotation, requests fail for at most that long.
 */
export function passwordProvider(config: UserProfilesRuntimeConfig): PasswordProvider & { invalidate?: () => void } {
  if (config.auth === 'secret') {
    const secretArn = config.secretArn;
    if (!secretArn) throw new Error('userProfiles.auth is "secret" but userProfiles.secretArn is not set');
    let refreshNext = false;
    let lastRefreshAt = -Infinity;
    const provider = async (): Promise<string> => {
      const fresh = refreshNext;
      refreshNext = false;
      const secret = (await readSecret(secretArn, { transform: 'json', timeoutMs: DEFAULT_SECRET_TIMEOUT_MS, fresh })) as { password?: unknown };
      if (typeof secret?.password !== 'string') throw new Error(`the secret ${secretArn} has no string "password"`);
      return secret.password;
    };
    const invalidate = (): void => {
      const now = Date.now();
      if (now - lastRefreshAt < PASSWORD_REFRESH_INTERVAL_MS) return;
      lastRefreshAt = now;
      refreshNext = true;
    };
    return Object.assign(provider, { invalidate });
  }
  const { Signer } = loadRdsSigner();
  const signers = new Map<string, InstanceType<typeof Signer>>();
  return (endpoint) => {
    const key = `${endpoint.host}:${endpoint.port}`;
    let signer = signers.get(key);
    if (!signer) {
      signer = new Signer({ hostname: endpoint.host, port: endpoint.port, username: config.username, region: process.env.AWS_REGION });
      signers.set(key, signer);
    }
    const s = signer;
    // Signing is local; the bound covers resolving the function's credentials.
    return withDeadline(DEFAULT_SECRET_TIMEOUT_MS, 'signing an RDS auth token', () => s.getAuthToken());
  };
}

// Loaded on first use (see dependencies.ts): a router without profiles never loads pg or the signer.
/* eslint-disable @typescript-eslint/no-require-imports */
function loadPgUserProfiles(): typeof import('./pg-user-profiles') {
  return require('./pg-user-profiles') as typeof import('./pg-user-profiles');
}
function loadRdsSigner(): typeof import('@aws-sdk/rds-signer') {
  return require('@aws-sdk/rds-signer') as typeof import('@aws-sdk/rds-signer');
}
/* eslint-enable @typescript-eslint/no-require-imports */
