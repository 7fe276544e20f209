/**
 * The router's origin secret reader (and `readSecret`'s version stages under it) with the real
 * Secrets Manager client against a local Secrets Manager that keeps versions and staging labels;
 * the rotation's own Secrets Manager adapter moves the labels, as a rotation does.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readSecret } from '../../lambdas/adapters/connections';
import { SecretsManagerRotationSecrets } from '../../lambdas/adapters/origin-rotation-clients';
import { ACCEPTED_STAGES, SecretsManagerOriginSecrets } from '../../lambdas/adapters/secrets-manager-origin-secrets';
import { Failures } from '../support/aws-protocol-server';
import { LocalSecretsManager } from '../support/secrets-manager-server';

const OLD = 'value-one';
const savedEnv = { ...process.env };
let sm: LocalSecretsManager;
let rotationClient: SecretsManagerClient;
let rotation: SecretsManagerRotationSecrets;

beforeAll(async () => {
  sm = await LocalSecretsManager.start();
  Object.assign(process.env, sm.env());
  rotationClient = new SecretsManagerClient({ endpoint: sm.url, region: sm.region, credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' } });
  rotation = new SecretsManagerRotationSecrets(rotationClient);
});
afterAll(async () => {
  rotationClient?.destroy();
  await sm?.close();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

let n = 0;
/** A new secret (so no test sees another's reads), its reader on a clock the test moves, and the reader's error logs. */
function setup(options: { refreshSeconds?: number } = {}) {
  const secretArn = sm.createSecret(`origin-${++n}`, OLD, { rotationEnabled: true });
  const clock = { t: 1_000_000 };
  const errors: Array<{ message: string; attributes: Record<string, unknown> }> = [];
  const reader = new SecretsManagerOriginSecrets(
    { secretArn, refreshSeconds: options.refreshSeconds ?? 300, edgeCacheSeconds: 60 },
    { now: () => clock.t, logger: { error: (message, attributes) => errors.push({ message, attributes }) } },
  );
  const reads = (): string[] => sm.callsOf('GetSecretValue').filter((c) => c.input.SecretId === secretArn).map((c) => String(c.input.VersionStage));
  return { secretArn, clock, errors, reader, reads };
}

/** A rotation's createSecret: a new version labelled AWSPENDING with `value`. */
async function startRotation(secretArn: string, value: string): Promise<void> {
  await rotation.putPending(secretArn, sm.startRotation(secretArn), value);
}

/** A rotation's finishSecret: AWSCURRENT moves to the pending version (AWSPREVIOUS follows the old one). */
async function finishRotation(secretArn: string): Promise<void> {
  const versions = Object.entries((await rotation.describe(secretArn)).versions);
  const labelled = (stage: string): string => versions.find(([, s]) => s.includes(stage) && !(stage === 'AWSPENDING' && s.includes('AWSCURRENT')))![0];
  await rotation.promote(secretArn, labelled('AWSPENDING'), labelled('AWSCURRENT'));
}

describe('SecretsManagerOriginSecrets', () => {
  test('with no rotation yet it accepts AWSCURRENT: the stages no version carries are no error', async () => {
    const { reader, reads, errors } = setup();
    expect(await reader.verify(OLD)).toBe('valid');
    // One read of each accepted stage, by VersionStage.
    expect(reads().sort()).toEqual([...ACCEPTED_STAGES].sort());
    expect(sm.callsOf('GetSecretValue').filter((c) => c.outcome === 'ResourceNotFoundException').length).toBeGreaterThanOrEqual(2);
    expect(await reader.verify(undefined)).toBe('invalid');
    expect(errors).toEqual([]);
  });

  test('during a rotation it accepts AWSCURRENT and AWSPENDING; after it, AWSCURRENT and AWSPREVIOUS', async () => {
    const { secretArn, reader, clock } = setup({ refreshSeconds: 60 });
    expect(await reader.verify(OLD)).toBe('valid');

    await startRotation(secretArn, 'value-two');
    clock.t += 60_000;
    expect(await reader.verify(OLD)).toBe('valid');
    expect(await reader.verify('value-two')).toBe('valid');

    await finishRotation(secretArn);
    clock.t += 60_000;
    expect(await reader.verify('value-two')).toBe('valid');
    expect(await reader.verify(OLD)).toBe('valid');

    await startRotation(secretArn, 'value-three');
    await finishRotation(secretArn);
    clock.t += 60_000;
    // value-three is AWSCURRENT, value-two AWSPREVIOUS; value-one has no label any more.
    expect(sm.valueAt(secretArn, 'AWSPREVIOUS')).toBe('value-two');
    expect(await reader.verify('value-three')).toBe('valid');
    expect(await reader.verify('value-two')).toBe('valid');
    clock.t += 30_000;
    expect(await reader.verify(OLD)).toBe('invalid');
  });

  test('a value it does not know makes it read again at once, at most once per 30 s', async () => {
    const { secretArn, reader, reads, clock } = setup();
    expect(await reader.verify(OLD)).toBe('valid');
    const before = reads().length;
    // CloudFront already sends a value the router has not read yet (setSecret ran a moment ago).
    await startRotation(secretArn, 'value-new');
    clock.t += 31_000;
    expect(await reader.verify('value-new')).toBe('valid');
    expect(reads().length).toBe(before + ACCEPTED_STAGES.length);
    // A flood of wrong values within 30 s costs no further reads.
    clock.t += 1_000;
    for (const guess of ['guess-1', 'guess-2', 'guess-3']) expect(await reader.verify(guess)).toBe('invalid');
    expect(reads().length).toBe(before + ACCEPTED_STAGES.length);
  });

  test('it fails closed: a secret it cannot read, and never could, makes every request unavailable', async () => {
    const { reader, errors } = setup();
    sm.failNext('GetSecretValue', { kind: 'error', status: 400, errorType: 'AccessDeniedException', message: 'not authorized' }, 3);
    expect(await reader.verify(OLD)).toBe('unavailable');
    expect(errors[0].message).toMatch(/none cached: requests are answered 503/);
    expect(errors[0].attributes.error).toMatchObject({ message: expect.stringContaining('not authorized') });
  });

  test('a read that hangs ends at its time limit: unavailable, never valid', async () => {
    const { reader } = setup();
    sm.failNext('GetSecretValue', Failures.hang(60_000), 3);
    expect(await reader.verify(OLD)).toBe('unavailable');
  });

  test('a secret with no value in any accepted stage, or no such secret, is unavailable', async () => {
    const missing = new SecretsManagerOriginSecrets({ secretArn: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:gone-AbCdEf', refreshSeconds: 300, edgeCacheSeconds: 60 });
    expect(await missing.verify(OLD)).toBe('unavailable');
  });

  test('once read, a failed refresh keeps the values it had (CloudFront sent them a moment ago)', async () => {
    const { reader, clock, errors } = setup({ refreshSeconds: 60 });
    expect(await reader.verify(OLD)).toBe('valid');
    clock.t += 61_000;
    sm.failNext('GetSecretValue', Failures.internal(), 3);
    expect(await reader.verify(OLD)).toBe('valid');
    expect(errors.map((e) => e.message)).toEqual(['origin secret unreadable: keeping the values read before']);
  });
});

describe('readSecret with a version stage', () => {
  test('caches each stage apart: a read of AWSPENDING after AWSCURRENT is not answered from AWSCURRENT\'s cache', async () => {
    const secretArn = sm.createSecret(`stages-${++n}`, OLD, { rotationEnabled: true });
    await startRotation(secretArn, 'pending-value');
    expect(await readSecret(secretArn)).toBe(OLD);
    expect(await readSecret(secretArn, { stage: 'AWSCURRENT' })).toBe(OLD);
    expect(await readSecret(secretArn, { stage: 'AWSPENDING' })).toBe('pending-value');
    // Cached now: a second read makes no call.
    const calls = sm.callsOf('GetSecretValue').length;
    expect(await readSecret(secretArn, { stage: 'AWSPENDING' })).toBe('pending-value');
    expect(sm.callsOf('GetSecretValue').length).toBe(calls);
  });

  test('a stage no version carries fails, or is undefined when asked for', async () => {
    const secretArn = sm.createSecret(`stages-${++n}`, OLD);
    await expect(readSecret(secretArn, { stage: 'AWSPREVIOUS' })).rejects.toThrow(/staging label: AWSPREVIOUS/);
    expect(await readSecret(secretArn, { stage: 'AWSPREVIOUS', undefinedIfNotFound: true })).toBeUndefined();
    // Other errors still fail.
    sm.failNext('GetSecretValue', Failures.internal());
    await expect(readSecret(secretArn, { stage: 'AWSPENDING', undefinedIfNotFound: true })).rejects.toThrow();
  });

  test('fresh reads again whatever is cached; a plain read keeps the cached value', async () => {
    const secretArn = sm.createSecret(`stages-${++n}`, OLD, { rotationEnabled: true });
    expect(await readSecret(secretArn)).toBe(OLD);
    await startRotation(secretArn, 'later');
    await finishRotation(secretArn);
    expect(await readSecret(secretArn)).toBe(OLD);
    expect(await readSecret(secretArn, { fresh: true })).toBe('later');
  });
});
