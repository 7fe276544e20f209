import { Aws, Duration, type RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledgeWithoutKey } from './encryption';

/** Properties of {@link createLoggedBucket}. Internal (not part of the jsii API). */
export interface LoggedBucketProps {
  /** KMS key of the bucket (the log bucket always uses SSE-S3, the only encryption server access logging supports). */
  readonly encryptionKey?: kms.IKey;
  readonly removalPolicy: RemovalPolicy;
  readonly versioned: boolean;
  readonly lifecycleRules?: s3.LifecycleRule[];
  /** Key prefix of the bucket's logs in the log bucket, such as `static-answers/`. */
  readonly logPrefix: string;
  /** What the bucket is, for the log bucket's acknowledgement (`the static answers bucket`). */
  readonly description: string;
  /** The construct and prop that give `encryptionKey`, for the acknowledgement without one (`StaticAnswers encryptionKey`). */
  readonly keyProp: string;
  /** Why the bucket keeps no versions, when `versioned` is false (acknowledges NIST.800.53.R5-S3BucketVersioningEnabled). */
  readonly unversionedReason?: string;
}

/** A bucket and the bucket that receives its server access logs. */
export interface LoggedBucket {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
}

/**
 * Creates, in `scope`, a private bucket (`Bucket`: encrypted, TLS only, no public access, no ACLs)
 * and the bucket of its server access logs (`AccessLogs`: SSE-S3, logs kept 365 days). Logging
 * goes through a bucket policy (not the legacy log-delivery ACL), whatever the app's feature
 * flags: the logging service may write only this bucket's logs.
 */
export function createLoggedBucket(scope: Construct, props: LoggedBucketProps): LoggedBucket {
  // Server access log buckets support SSE-S3 only.
  const accessLogs = new s3.Bucket(scope, 'AccessLogs', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    lifecycleRules: [{ expiration: Duration.days(365) }],
    removalPolicy: props.removalPolicy,
  });
  Validations.of(accessLogs).acknowledge({
    id: 'AwsSolutions-S1',
    reason: `This bucket receives the server access logs of ${props.description}; logging the log bucket itself would recurse.`,
  }, {
    id: 'NIST.800.53.R5-S3DefaultEncryptionKMS',
    reason: 'S3 server access logging delivers only to a bucket encrypted with SSE-S3; a KMS default encryption would stop the logs.',
  }, {
    id: 'NIST.800.53.R5-S3BucketVersioningEnabled',
    reason: 'S3 writes each access log once under a new key and nothing overwrites it; no role of the library may delete it, and the lifecycle rule expires it after 365 days.',
  }, {
    id: 'NIST.800.53.R5-S3BucketReplicationEnabled',
    reason: `Access logs of ${props.description}, kept in its Region; replicate them with your organization's log archive if it requires copies elsewhere.`,
  });
  const bucket = new s3.Bucket(scope, 'Bucket', {
    encryption: props.encryptionKey ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
    encryptionKey: props.encryptionKey,
    bucketKeyEnabled: props.encryptionKey ? true : undefined,
    enforceSSL: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: props.versioned ? true : undefined,
    lifecycleRules: props.lifecycleRules,
    removalPolicy: props.removalPolicy,
  });
  Validations.of(bucket).acknowledge({
    id: 'NIST.800.53.R5-S3BucketReplicationEnabled',
    reason: `The library reads and writes ${props.description} in its own Region only; a cross-Region copy is a disaster-recovery choice of your organization (add a replication rule to the bucket).`,
  });
  if (!props.versioned && props.unversionedReason) {
    Validations.of(bucket).acknowledge({ id: 'NIST.800.53.R5-S3BucketVersioningEnabled', reason: props.unversionedReason });
  }
  if (!props.encryptionKey) {
    acknowledgeWithoutKey(bucket, 'NIST.800.53.R5-S3DefaultEncryptionKMS', 'The bucket is encrypted with SSE-S3', props.keyProp);
  }
  (bucket.node.defaultChild as s3.CfnBucket).loggingConfiguration = {
    destinationBucketName: accessLogs.bucketName,
    logFilePrefix: props.logPrefix,
  };
  accessLogs.addToResourcePolicy(new iam.PolicyStatement({
    principals: [new iam.ServicePrincipal('logging.s3.amazonaws.com')],
    actions: ['s3:PutObject'],
    resources: [accessLogs.arnForObjects(`${props.logPrefix}*`)],
    conditions: {
      ArnLike: { 'aws:SourceArn': bucket.bucketArn },
      StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
    },
  }));
  return { bucket, accessLogs };
}
