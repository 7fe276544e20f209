/**
 * After a single-user rotation the database refuses the cached password at once: the profile
 * store tells the password provider (28P01), whose next read skips Powertools' hour-long cache,
 * at most every PASSWORD_REFRESH_INTERVAL_MS. Real Secrets Manager client, local Secrets Manager.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Pool } from 'pg';
import { SecretsManagerRotationSecrets } from '../../lambdas/adapters/origin-rotation-clients';
import { PgUserProfiles } from '../../lambdas/adapters/pg-user-profiles';
import { PASSWORD_REFRESH_INTERVAL_MS, passwordProvider } from '../../lambdas/adapters/user-profile-store';
import { LocalSecretsManager } from '../support/secrets-manager-server';

const savedEnv = { ...process.env };
let sm: LocalSecretsManager;
let client: SecretsManagerClient;
let rotation: SecretsManagerRotationSecrets;

beforeAll(async () => {
  sm = await LocalSecretsManager.start();
  Object.assign(process.env, sm.env());
  client = new SecretsManagerClient({ endpoint: sm.url, region: sm.region, credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' } });
  rotation = new SecretsManagerRotationSecrets(client);
});
afterAll(async () => {
  client?.destroy();
  await sm?.close();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});
afterEach(() => jest.restoreAllMocks());

/** A rotation's four steps, as far as the secret's labels go: `password` becomes AWSCURRENT. */
async function rotate(secretArn: string, password: string): Promise<void> {
  await rotation.putPending(secretArn, sm.startRotation(secretArn), JSON.stringify({ username: 'router', password }));
  const versions = Object.entries((await rotation.describe(secretArn)).versions);
  const labelled = (stage: string): string => versions.find(([, s]) => s.includes(stage) && !(stage === 'AWSPENDING' && s.includes('AWSCURRENT')))![0];
  await rotation.promote(secretArn, labelled('AWSPENDING'), labelled('AWSCURRENT'));
}

const config = (secretArn: string) => ({
  writer: { host: 'w.example', port: 5432 },
  reader: { host: 'r.example', port: 5432 },
  database: 'app',
  username: 'router',
  table: 'user_profiles',
  timeoutMs: 500,
  auth: 'secret' as const,
  secretArn,
});

test('a refused password makes the next connection read the rotated secret, at most every refresh interval', async () => {
  const secretArn = sm.createSecret('profiles-db', JSON.stringify({ username: 'router', password: 'one' }), { rotationEnabled: true });
  let now = 1_000_000;
  jest.spyOn(Date, 'now').mockImplementation(() => now);
  const password = passwordProvider(config(secretArn));
  expect(await password(config(secretArn).reader)).toBe('one');

  await rotate(secretArn, 'two');
  expect(await password(config(secretArn).reader)).toBe('one'); // cached: nothing said the password is stale

  // The database refuses the old password: the store reports it, the next connection reads afresh.
  const refused = Object.assign(new Error('password authentication failed for user "router"'), { code: '28P01' });
  const pool = { query: () => Promise.reject(refused) } as unknown as Pool;
  const store = new PgUserProfiles(pool, pool, 'user_profiles', true, password.invalidate);
  await expect(store.read('t', 'u')).rejects.toThrow(/password authentication failed/);
  expect(await password(config(secretArn).reader)).toBe('two');

  // Another refusal within the interval does not hammer Secrets Manager; after it, it reads again.
  await rotate(secretArn, 'three');
  await expect(store.write('t', 'u', {} as never)).rejects.toThrow(/password authentication failed/);
  expect(await password(config(secretArn).reader)).toBe('two');
  now += PASSWORD_REFRESH_INTERVAL_MS;
  await expect(store.read('t', 'u')).rejects.toThrow(/password authentication failed/);
  expect(await password(config(secretArn).reader)).toBe('three');
});

test('errors other than a refused password change nothing', async () => {
  const secretArn = sm.createSecret('profiles-db-2', JSON.stringify({ username: 'router', password: 'one' }), { rotationEnabled: true });
  const password = passwordProvider(config(secretArn));
  expect(await password(config(secretArn).reader)).toBe('one');
  await rotate(secretArn, 'two');
  const down = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const pool = { query: () => Promise.reject(down) } as unknown as Pool;
  await expect(new PgUserProfiles(pool, pool, 'user_profiles', true, password.invalidate).read('t', 'u')).rejects.toThrow(/ECONNREFUSED/);
  expect(await password(config(secretArn).reader)).toBe('one');
});
