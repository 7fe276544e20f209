import { Annotations, Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

/** Services that publish into the alarm topic: CloudWatch (alarms) and AWS Budgets (notifications). */
const PUBLISHERS = ['cloudwatch.amazonaws.com', 'budgets.amazonaws.com'];

/**
 * The alarm topic: encrypted with a customer-managed key (yours or a new one with rotation), SSL
 * only. A topic with a key policy of its own must let its publishers use the key, and a topic
 * with a resource policy must let them publish: CloudWatch and AWS Budgets, for this account only.
 */
export function newAlarmTopic(scope: Construct, encryptionKey: kms.IKey | undefined): sns.Topic {
  const key = encryptionKey ?? new kms.Key(scope, 'AlarmTopicKey', {
    enableKeyRotation: true,
    description: 'Encrypts the alarm topic of AiMonitoring',
  });
  const topic = new sns.Topic(scope, 'AlarmTopic', { masterKey: key, enforceSSL: true });
  const sameAccount = { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } };
  // A key policy's resource `*` is the key itself. No condition: the publishers reach the key
  // through SNS, and a condition they do not carry would drop every notification silently. The
  // key is the topic's own unless `encryptionKey` is given.
  const { statementAdded } = key.addToResourcePolicy(new iam.PolicyStatement({
    principals: PUBLISHERS.map((service) => new iam.ServicePrincipal(service)),
    actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
    resources: ['*'],
  }));
  if (!statementAdded) {
    Annotations.of(scope).addWarningV2('cdk-scalable-ai:alarmTopicKeyPolicy',
      'encryptionKey is imported: its key policy must already let cloudwatch.amazonaws.com and budgets.amazonaws.com use it '
      + '(kms:Decrypt, kms:GenerateDataKey*), or no alarm or budget notification reaches the topic');
  }
  topic.addToResourcePolicy(new iam.PolicyStatement({
    principals: PUBLISHERS.map((service) => new iam.ServicePrincipal(service)),
    actions: ['sns:Publish'],
    resources: [topic.topicArn],
    conditions: sameAccount,
  }));
  return topic;
}
