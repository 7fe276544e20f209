import { ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct, IConstruct } from 'constructs';

/** Keys whose policy already lets CloudWatch Logs use them. */
const keysOpenToLogs = new WeakSet<kms.IKey>();

/**
 * Lets CloudWatch Logs use `key` for the log groups of its account and Region (CloudWatch Logs
 * encrypts with the key itself, so the key policy must allow the service principal
 * `logs.<region>.amazonaws.com`, limited by the `aws:logs:arn` encryption context). Added once
 * per key, and only to a key of this app: an imported key's policy cannot be changed here and
 * must already allow it (see the README).
 */
export function allowLogsToUseKey(key: kms.IKey): void {
  if (keysOpenToLogs.has(key)) return;
  keysOpenToLogs.add(key);
  const stack = Stack.of(key);
  key.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'AllowCloudWatchLogsOfThisAccountAndRegion',
    principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
    actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
    resources: ['*'],
    conditions: {
      ArnLike: {
        'kms:EncryptionContext:aws:logs:arn': stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
      },
    },
  }), /* allowNoOp: an imported key keeps its policy */ true);
}

/** Properties of {@link newLogGroup}. */
export interface LogGroupProps {
  readonly retention: logs.RetentionDays;
  /** KMS key of the log group. */
  readonly encryptionKey?: kms.IKey;
  /** The construct and prop that would give the key, for the acknowledgement without one (`TieredRouter encryptionKey`). */
  readonly keyProp: string;
}

/** A log group (removed with the stack), encrypted with `encryptionKey` when one is given. */
export function newLogGroup(scope: Construct, id: string, props: LogGroupProps): logs.LogGroup {
  if (props.encryptionKey) allowLogsToUseKey(props.encryptionKey);
  const logGroup = new logs.LogGroup(scope, id, {
    retention: props.retention,
    encryptionKey: props.encryptionKey,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  if (!props.encryptionKey) {
    acknowledgeWithoutKey(logGroup, 'NIST.800.53.R5-CloudWatchLogGroupEncrypted', 'CloudWatch Logs encrypts this log group with its own service key', props.keyProp);
  }
  return logGroup;
}

/** The acknowledgement of a customer-managed-key finding on a resource left on AWS managed encryption. */
export function acknowledgeWithoutKey(construct: IConstruct, id: string, encryptedHow: string, keyProp: string): void {
  Validations.of(construct).acknowledge({
    id,
    reason: `${encryptedHow}: no customer-managed key was given. Set ${keyProp} (ScalableAiService encryptionKey) to use one.`,
  });
}
