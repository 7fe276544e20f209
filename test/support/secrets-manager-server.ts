/**
 * A local Secrets Manager (awsJson1_1 over HTTP/1.1: `POST /` with `X-Amz-Target:
 * secretsmanager.<Operation>`) that keeps versions and staging labels as the service does, for
 * the real AWS SDK v3 client:
 *
 * - `GetSecretValue` by `VersionId` and/or `VersionStage` (default AWSCURRENT); a stage no version
 *   carries, or a version without a value yet, is `ResourceNotFoundException`.
 * - `PutSecretValue` with `ClientRequestToken` (the version id) and `VersionStages` (default
 *   AWSCURRENT): idempotent for the same value, `ResourceExistsException` for another one.
 * - `UpdateSecretVersionStage`: moves a label; moving it off a version requires `RemoveFromVersionId`
 *   to name that version. Whenever AWSCURRENT moves, the version it left gets AWSPREVIOUS.
 * - `DescribeSecret`: `RotationEnabled` and `VersionIdsToStages` (versions with a label).
 * - `GetRandomPassword`: `PasswordLength` characters, honouring `Exclude*` and `IncludeSpace`.
 *
 * {@link LocalSecretsManager.startRotation} does what `RotateSecret` does before it invokes the
 * rotation function: a new version, without a value, labelled AWSPENDING. Failures (an error, or
 * a hang: accepted and not answered) can be queued per operation; every call is recorded.
 */
import { randomInt, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InjectedFailure } from './aws-protocol-server';

const ACCOUNT = '111122223333';
const CONTENT_TYPE = 'application/x-amz-json-1.1';

interface Version {
  value?: string;
  readonly stages: Set<string>;
  readonly created: number;
}

interface Secret {
  readonly arn: string;
  readonly name: string;
  rotationEnabled: boolean;
  readonly versions: Map<string, Version>;
}

/** A call as the server saw it. */
export interface SecretsManagerCall {
  readonly operation: string;
  readonly input: Record<string, unknown>;
  /** `ok`, the error type sent, or `hung`. */
  outcome: string;
}

class ServiceError extends Error {
  constructor(readonly status: number, readonly errorType: string, message: string) {
    super(message);
  }
}

export class LocalSecretsManager {
  static async start(region = 'us-east-1'): Promise<LocalSecretsManager> {
    const server = new LocalSecretsManager(region);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(0, '127.0.0.1', () => resolve());
    });
    return server;
  }

  readonly calls: SecretsManagerCall[] = [];
  private readonly secrets = new Map<string, Secret>();
  private readonly failures = new Map<string, InjectedFailure[]>();
  private readonly server: http.Server;
  private readonly held = new Set<http.ServerResponse>();

  private constructor(readonly region: string) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(String(req.headers['x-amz-target'] ?? ''), Buffer.concat(chunks).toString('utf8'), res));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Environment for SDK clients (in this process or a child): this endpoint, a Region, dummy credentials. */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: this.url,
      AWS_REGION: this.region,
      AWS_DEFAULT_REGION: this.region,
      AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
      AWS_SECRET_ACCESS_KEY: 'local-test-secret',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  /** Creates a secret whose first version (AWSCURRENT) holds `value`; returns its ARN. */
  createSecret(name: string, value: string, options: { rotationEnabled?: boolean } = {}): string {
    const arn = `arn:aws:secretsmanager:${this.region}:${ACCOUNT}:secret:${name}-AbCdEf`;
    const secret: Secret = { arn, name, rotationEnabled: options.rotationEnabled ?? false, versions: new Map() };
    secret.versions.set(randomUUID(), { value, stages: new Set(['AWSCURRENT']), created: this.versionTime() });
    this.secrets.set(arn, secret);
    this.secrets.set(name, secret);
    return arn;
  }

  /** What RotateSecret does first: a new version `token` without a value, labelled AWSPENDING. */
  startRotation(secretId: string, token = randomUUID()): string {
    const secret = this.secret(secretId);
    secret.rotationEnabled = true;
    this.detach(secret, 'AWSPENDING');
    secret.versions.set(token, { stages: new Set(['AWSPENDING']), created: this.versionTime() });
    return token;
  }

  /** Labels of each version that has one, as DescribeSecret reports them. */
  stages(secretId: string): Record<string, string[]> {
    return this.versionIdsToStages(this.secret(secretId));
  }

  /** The value of the version carrying `stage`, or undefined. */
  valueAt(secretId: string, stage: string): string | undefined {
    return [...this.secret(secretId).versions.values()].find((v) => v.stages.has(stage))?.value;
  }

  /** Makes the next `times` calls of `operation` (e.g. `GetSecretValue`) fail or hang. */
  failNext(operation: string, failure: InjectedFailure, times = 1): void {
    const queue = this.failures.get(operation) ?? [];
    for (let i = 0; i < times; i++) queue.push(failure);
    this.failures.set(operation, queue);
  }

  callsOf(operation: string): SecretsManagerCall[] {
    return this.calls.filter((c) => c.operation === operation);
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(target: string, raw: string, res: http.ServerResponse): void {
    const operation = target.startsWith('secretsmanager.') ? target.slice('secretsmanager.'.length) : target;
    let input: Record<string, unknown> = {};
    try {
      input = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      // An empty input: the operation answers with its own validation error.
    }
    const call: SecretsManagerCall = { operation, input, outcome: 'ok' };
    this.calls.push(call);
    const failure = this.failures.get(operation)?.shift();
    if (failure?.kind === 'hang') {
      call.outcome = 'hung';
      this.held.add(res);
      res.once('close', () => this.held.delete(res));
      return;
    }
    try {
      if (failure?.kind === 'error') throw new ServiceError(failure.status, failure.errorType, failure.message ?? failure.errorType);
      const out = this.operation(operation, input);
      res.statusCode = 200;
      res.setHeader('content-type', CONTENT_TYPE);
      res.end(JSON.stringify(out));
    } catch (err) {
      const e = err instanceof ServiceError ? err : new ServiceError(500, 'InternalServiceError', String(err));
      call.outcome = e.errorType;
      res.statusCode = e.status;
      res.setHeader('content-type', CONTENT_TYPE);
      res.setHeader('x-amzn-errortype', e.errorType);
      res.end(JSON.stringify({ __type: e.errorType, message: e.message }));
    }
  }

  private operation(operation: string, input: Record<string, unknown>): Record<string, unknown> {
    switch (operation) {
      case 'GetSecretValue': return this.getSecretValue(input);
      case 'PutSecretValue': return this.putSecretValue(input);
      case 'UpdateSecretVersionStage': return this.updateSecretVersionStage(input);
      case 'DescribeSecret': return this.describeSecret(input);
      case 'GetRandomPassword': return { RandomPassword: randomPassword(input) };
      default: throw new ServiceError(400, 'UnknownOperationException', `no such operation: ${operation}`);
    }
  }

  private getSecretValue(input: Record<string, unknown>): Record<string, unknown> {
    const secret = this.secret(input.SecretId);
    const versionId = optionalString(input.VersionId);
    const stage = optionalString(input.VersionStage) ?? (versionId ? undefined : 'AWSCURRENT');
    const entry = versionId !== undefined
      ? [versionId, secret.versions.get(versionId)] as const
      : [...secret.versions.entries()].find(([, v]) => v.stages.has(stage!));
    const [id, version] = entry ?? [];
    if (!id || !version || (stage !== undefined && !version.stages.has(stage)) || version.value === undefined) {
      const what = versionId ? `VersionId: ${versionId}` : `staging label: ${stage}`;
      throw new ServiceError(400, 'ResourceNotFoundException', `Secrets Manager can't find the specified secret value for ${what}`);
    }
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: id,
      SecretString: version.value,
      VersionStages: [...version.stages],
      CreatedDate: version.created,
    };
  }

  private putSecretValue(input: Record<string, unknown>): Record<string, unknown> {
    const secret = this.secret(input.SecretId);
    const token = optionalString(input.ClientRequestToken) ?? randomUUID();
    const value = optionalString(input.SecretString);
    if (value === undefined) throw new ServiceError(400, 'InvalidParameterException', 'You must provide either SecretString or SecretBinary.');
    const stages = Array.isArray(input.VersionStages) ? input.VersionStages.map(String) : ['AWSCURRENT'];
    const existing = secret.versions.get(token);
    if (existing?.value !== undefined) {
      if (existing.value !== value) throw new ServiceError(400, 'ResourceExistsException', `A resource with the ID you requested already exists: version ${token} has another value.`);
    } else {
      const version = existing ?? { stages: new Set<string>(), created: this.versionTime() };
      version.value = value;
      secret.versions.set(token, version);
    }
    for (const stage of stages) this.attach(secret, stage, token);
    return { ARN: secret.arn, Name: secret.name, VersionId: token, VersionStages: [...secret.versions.get(token)!.stages] };
  }

  private updateSecretVersionStage(input: Record<string, unknown>): Record<string, unknown> {
    const secret = this.secret(input.SecretId);
    const stage = optionalString(input.VersionStage);
    if (!stage) throw new ServiceError(400, 'InvalidParameterException', 'VersionStage is required.');
    const moveTo = optionalString(input.MoveToVersionId);
    const removeFrom = optionalString(input.RemoveFromVersionId);
    const holder = [...secret.versions.entries()].find(([, v]) => v.stages.has(stage))?.[0];
    if (holder !== undefined && holder !== moveTo && holder !== removeFrom) {
      throw new ServiceError(400, 'InvalidParameterException',
        `The staging label ${stage} is currently attached to version ${holder}, so you must explicitly reference that version in RemoveFromVersionId.`);
    }
    if (removeFrom !== undefined && holder !== removeFrom) {
      throw new ServiceError(400, 'InvalidParameterException', `The staging label ${stage} is not attached to version ${removeFrom}.`);
    }
    if (moveTo !== undefined) {
      if (!secret.versions.has(moveTo)) throw new ServiceError(400, 'ResourceNotFoundException', `Secrets Manager can't find the specified secret version: ${moveTo}`);
      this.attach(secret, stage, moveTo);
    } else if (removeFrom !== undefined) {
      secret.versions.get(removeFrom)!.stages.delete(stage);
    }
    return { ARN: secret.arn, Name: secret.name };
  }

  private describeSecret(input: Record<string, unknown>): Record<string, unknown> {
    const secret = this.secret(input.SecretId);
    return { ARN: secret.arn, Name: secret.name, RotationEnabled: secret.rotationEnabled, VersionIdsToStages: this.versionIdsToStages(secret) };
  }

  /** Puts `stage` on `versionId` only; AWSCURRENT leaving a version leaves AWSPREVIOUS there. */
  private attach(secret: Secret, stage: string, versionId: string): void {
    const previous = this.detach(secret, stage, versionId);
    secret.versions.get(versionId)!.stages.add(stage);
    if (stage === 'AWSCURRENT' && previous !== undefined) {
      this.detach(secret, 'AWSPREVIOUS');
      secret.versions.get(previous)!.stages.add('AWSPREVIOUS');
    }
  }

  /** Removes `stage` from whichever version (other than `except`) has it; returns that version. */
  private detach(secret: Secret, stage: string, except?: string): string | undefined {
    for (const [id, v] of secret.versions) {
      if (id !== except && v.stages.delete(stage)) return id;
    }
    return undefined;
  }

  private versionIdsToStages(secret: Secret): Record<string, string[]> {
    return Object.fromEntries([...secret.versions.entries()].filter(([, v]) => v.stages.size > 0).map(([id, v]) => [id, [...v.stages]]));
  }

  private secret(id: unknown): Secret {
    const secret = typeof id === 'string' ? this.secrets.get(id) : undefined;
    if (!secret) throw new ServiceError(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return secret;
  }

  private versionTime(): number {
    return Math.floor(Date.now() / 1000);
  }
}

function optionalString(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function randomPassword(input: Record<string, unknown>): string {
  const length = typeof input.PasswordLength === 'number' ? input.PasswordLength : 32;
  if (length < 1 || length > 4096) throw new ServiceError(400, 'InvalidParameterException', 'PasswordLength must be between 1 and 4096.');
  let alphabet = '';
  if (input.ExcludeUppercase !== true) alphabet += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  if (input.ExcludeLowercase !== true) alphabet += 'abcdefghijklmnopqrstuvwxyz';
  if (input.ExcludeNumbers !== true) alphabet += '0123456789';
  if (input.ExcludePunctuation !== true) alphabet += '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
  if (input.IncludeSpace === true) alphabet += ' ';
  const excluded = new Set(typeof input.ExcludeCharacters === 'string' ? [...input.ExcludeCharacters] : []);
  const chars = [...alphabet].filter((c) => !excluded.has(c));
  return Array.from({ length }, () => chars[randomInt(chars.length)]).join('');
}
