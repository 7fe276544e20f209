import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';

/**
 * Lets `grantee` read `secret`, with grants in the grantee's own policy only. `Secret.grantRead()`
 * also grants decrypting with the secret's KMS key through the key's resource policy (the
 * Secrets Manager "via service" principal has no identity policy); when the key lives in another
 * stack (an Aurora cluster's generated secret in a data stack), that policy then names the
 * grantee's role and the two stacks reference each other: a CloudFormation dependency cycle.
 * An identity-policy statement with the `kms:ViaService` condition grants the same use of the
 * key, provided the key policy lets IAM policies of the account grant it (the default key policy does).
 */
export function grantSecretRead(secret: secretsmanager.ISecret, grantee: iam.IGrantable): iam.Grant {
  // What SecretBase.grantRead names: the full ARN, or a partial one with the random suffix.
  const secretArn = secret.secretFullArn ?? `${secret.secretArn}-??????`;
  const grant = iam.Grant.addToPrincipal({
    grantee,
    actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
    resourceArns: [secretArn],
  });
  if (secret.encryptionKey) {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:Decrypt'],
      resourceArns: [secret.encryptionKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(secret).region}.${Stack.of(secret).urlSuffix}` } },
    });
  }
  return grant;
}
