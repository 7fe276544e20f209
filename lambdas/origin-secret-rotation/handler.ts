import { Logger } from '@aws-lambda-powertools/logger';
import { ORIGIN_ROTATION_CONFIG_ENV, type OriginSecretRotationRuntimeConfig } from '../../constructs/contract/edge';
import {
  CloudFrontRotationDistribution, defaultCloudFrontClient, defaultSecretsClient, SecretsManagerRotationSecrets,
} from '../adapters/origin-rotation-clients';
import { rotateOriginSecret, type RotationEvent } from '../core/origin-secret-rotation';

const logger = new Logger();
const secrets = new SecretsManagerRotationSecrets(defaultSecretsClient());
const distribution = new CloudFrontRotationDistribution(defaultCloudFrontClient());

/**
 * Secrets Manager rotation function of the origin secret: one step per invocation
 * (createSecret, setSecret, testSecret, finishSecret), configured by {@link ORIGIN_ROTATION_CONFIG_ENV}.
 */
export async function handler(event: RotationEvent): Promise<void> {
  const raw = process.env[ORIGIN_ROTATION_CONFIG_ENV];
  if (!raw) throw new Error(`${ORIGIN_ROTATION_CONFIG_ENV} is not set`);
  const config = JSON.parse(raw) as OriginSecretRotationRuntimeConfig;
  logger.info('rotation step', { step: event.Step, secretId: event.SecretId, versionId: event.ClientRequestToken });
  await rotateOriginSecret(event, {
    secrets,
    distribution,
    distributionId: config.distributionId,
    logger: { info: (message, attributes) => logger.info(message, attributes ?? {}) },
  });
}
