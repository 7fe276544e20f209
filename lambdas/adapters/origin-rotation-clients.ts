/** Secrets Manager and CloudFront as the origin secret rotation uses them (AWS SDK v3). */
import { CloudFrontClient, GetDistributionConfigCommand, UpdateDistributionCommand, type DistributionConfig } from '@aws-sdk/client-cloudfront';
import {
  DescribeSecretCommand, GetRandomPasswordCommand, GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { OriginHeaders, RotationDistribution, RotationSecrets } from '../core/origin-secret-rotation';

/** Every call is bounded: connecting, and waiting for an answer (the rotation function's timeout bounds the rest). */
function boundedHandler(): NodeHttpHandler {
  return new NodeHttpHandler({ connectionTimeout: 3_000, requestTimeout: 10_000, throwOnRequestTimeout: true });
}

export function defaultSecretsClient(): SecretsManagerClient {
  return new SecretsManagerClient({ maxAttempts: 3, requestHandler: boundedHandler() });
}

export function defaultCloudFrontClient(): CloudFrontClient {
  // CloudFront's API is global (its endpoint is in us-east-1).
  return new CloudFrontClient({ region: 'us-east-1', maxAttempts: 3, requestHandler: boundedHandler() });
}

export class SecretsManagerRotationSecrets implements RotationSecrets {
  constructor(private readonly client: SecretsManagerClient) {}

  async describe(secretId: string): Promise<{ rotationEnabled: boolean; versions: Record<string, string[]> }> {
    const out = await this.client.send(new DescribeSecretCommand({ SecretId: secretId }));
    return { rotationEnabled: out.RotationEnabled === true, versions: out.VersionIdsToStages ?? {} };
  }

  async value(secretId: string, select: { versionId?: string; stage: string }): Promise<string | undefined> {
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: secretId, VersionId: select.versionId, VersionStage: select.stage }));
      return out.SecretString;
    } catch (err) {
      if ((err as { name?: string }).name === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  }

  async randomValue(length: number): Promise<string> {
    // Letters and digits only: the value goes in an HTTP header as it is.
    const out = await this.client.send(new GetRandomPasswordCommand({ PasswordLength: length, ExcludePunctuation: true, IncludeSpace: false }));
    if (!out.RandomPassword) throw new Error('GetRandomPassword returned no password');
    return out.RandomPassword;
  }

  async putPending(secretId: string, versionId: string, value: string): Promise<void> {
    await this.client.send(new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: versionId, SecretString: value, VersionStages: ['AWSPENDING'] }));
  }

  async promote(secretId: string, versionId: string, fromVersionId: string): Promise<void> {
    await this.client.send(new UpdateSecretVersionStageCommand({
      SecretId: secretId, VersionStage: 'AWSCURRENT', MoveToVersionId: versionId, RemoveFromVersionId: fromVersionId,
    }));
  }
}

export class CloudFrontRotationDistribution implements RotationDistribution {
  constructor(private readonly client: CloudFrontClient) {}

  async origins(distributionId: string): Promise<OriginHeaders[]> {
    const { config } = await this.config(distributionId);
    return (config.Origins?.Items ?? []).map((o) => ({
      originId: o.Id ?? '',
      headers: (o.CustomHeaders?.Items ?? []).map((h) => ({ name: h.HeaderName ?? '', value: h.HeaderValue ?? '' })),
    }));
  }

  async setOriginHeader(distributionId: string, header: string, value: string): Promise<boolean> {
    const { config, etag } = await this.config(distributionId);
    let changed = false;
    for (const origin of config.Origins?.Items ?? []) {
      const others = (origin.CustomHeaders?.Items ?? []).filter((h) => h.HeaderName?.toLowerCase() !== header);
      const current = (origin.CustomHeaders?.Items ?? []).filter((h) => h.HeaderName?.toLowerCase() === header);
      if (current.length === 1 && current[0].HeaderValue === value) continue;
      const items = [...others, { HeaderName: header, HeaderValue: value }];
      origin.CustomHeaders = { Quantity: items.length, Items: items };
      changed = true;
    }
    if (!changed) return false;
    // IfMatch: a change made since the read fails this update (PreconditionFailed) instead of being overwritten.
    await this.client.send(new UpdateDistributionCommand({ Id: distributionId, IfMatch: etag, DistributionConfig: config }));
    return true;
  }

  private async config(distributionId: string): Promise<{ config: DistributionConfig; etag: string }> {
    const out = await this.client.send(new GetDistributionConfigCommand({ Id: distributionId }));
    if (!out.DistributionConfig || !out.ETag) throw new Error(`GetDistributionConfig of ${distributionId} returned no configuration or ETag`);
    return { config: out.DistributionConfig, etag: out.ETag };
  }
}
