import { ArnFormat, Aws, Duration, Names, Stack, Token, Validations } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import { Construct } from 'constructs';
import { ModelProvider, SageMakerApiFormat, type IModelTier, type ModelTierBaseProps } from './model-tier';
import { sageMakerInstanceCount, sageMakerVariantMetric } from './tier-metrics';
import { DEFAULT_MAX_TOKENS, DEFAULT_TIER_TIMEOUT, validateBaseProps } from './tier-support';
import { nagResourceId } from '../internal/nag';
import { selectPrivateSubnets } from '../internal/subnets';

/** Target-tracking auto scaling of a SageMaker tier's endpoint variant. */
export interface SageMakerAutoScalingOptions {
  /** Fewest instances. */
  readonly minCapacity: number;
  /** Most instances. */
  readonly maxCapacity: number;
  /**
   * Invocations per instance per minute to hold (`SageMakerVariantInvocationsPerInstance`).
   * Measure one instance's sustainable rate with a load test and take about half of it.
   * @default 60
   */
  readonly targetInvocationsPerInstance?: number;
  /**
   * Wait after a scale-in before the next one. Short by default: idle GPU instances are the
   * largest avoidable cost of a SageMaker tier.
   * @default Duration.minutes(5)
   */
  readonly scaleInCooldown?: Duration;
  /**
   * Wait after a scale-out before the next one.
   * @default Duration.minutes(2)
   */
  readonly scaleOutCooldown?: Duration;
}

/** Properties of a SageMaker model tier. */
export interface SageMakerTierProps extends ModelTierBaseProps {
  /**
   * Use an endpoint that already exists instead of creating one. When set, the properties that
   * describe a new endpoint (`imageUri`, `modelDataUrl`, `instanceType`, ...) must be left out.
   *
   * @default - a new endpoint is created from `imageUri`
   */
  readonly existingEndpointName?: string;
  /**
   * Inference container image in Amazon ECR, such as a Hugging Face TGI or vLLM Deep Learning
   * Container: `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`. Required for a new endpoint.
   *
   * @default - none; required unless `existingEndpointName` is set
   */
  readonly imageUri?: string;
  /**
   * S3 URI of the model artifacts (`s3://bucket/key.tar.gz`, or a prefix ending in `/` for
   * uncompressed artifacts). The endpoint's role may read only this object or prefix.
   *
   * @default - no model data; the container loads the model named in `environment`
   */
  readonly modelDataUrl?: string;
  /**
   * Environment of the inference container, such as `HF_MODEL_ID`, `SM_NUM_GPUS` or `MAX_TOTAL_TOKENS`.
   * @default - none
   */
  readonly environment?: { [key: string]: string };
  /**
   * Runs the inference container with network isolation: no outbound network calls, not even to
   * S3 or the Hugging Face Hub (SageMaker itself fetches `modelDataUrl`). Turn it off for a
   * container that downloads its model, as TGI does for a Hub id in `HF_MODEL_ID`.
   *
   * @default - true with `modelDataUrl` (the container needs no network), unless
   * `environment.HF_MODEL_ID` names a Hugging Face Hub model rather than a path; false without
   * `modelDataUrl`
   */
  readonly networkIsolation?: boolean;
  /**
   * Instance type of the endpoint.
   * @default 'ml.g5.xlarge'
   */
  readonly instanceType?: string;
  /**
   * Instances at deployment (and the fixed count when `autoScaling` is not set).
   * @default 1
   */
  readonly instanceCount?: number;
  /**
   * Auto scaling of the endpoint variant.
   * @default - a fixed `instanceCount`
   */
  readonly autoScaling?: SageMakerAutoScalingOptions;
  /**
   * How long the container may take to download the model and pass its health check.
   * @default Duration.minutes(15)
   */
  readonly startupTimeout?: Duration;
  /**
   * Run the model in this VPC (its private subnets), so it reaches only what the VPC allows.
   * The model then needs model data in S3 (through a gateway endpoint) rather than a hub download.
   *
   * @default - the model runs in SageMaker's own network
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets of the model when `vpc` is set (public subnets are refused).
   * @default - the VPC's private subnets with egress, or its isolated subnets if it has none
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * KMS key for the endpoint's storage volume.
   * @default - a new key with rotation enabled
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * The request/response format of the container.
   * @default SageMakerApiFormat.OPENAI_CHAT
   */
  readonly apiFormat?: SageMakerApiFormat;
  /**
   * USD per 1,000 input tokens to account per request. A SageMaker endpoint is billed per
   * instance-hour, not per token; set an amortized price to make `x-cost-usd` comparable across tiers.
   * @default 0
   */
  readonly inputPricePer1kTokens?: number;
  /**
   * USD per 1,000 output tokens to account per request (see `inputPricePer1kTokens`).
   * @default 0
   */
  readonly outputPricePer1kTokens?: number;
  /**
   * Name of the new endpoint (and of its log group `/aws/sagemaker/Endpoints/<name>`, which the
   * execution role is limited to): 1-63 letters, digits and dashes, unique in the account and Region.
   * @default - generated from the stack name and the construct path (unique per stack and tier)
   */
  readonly endpointName?: string;
}

const VARIANT_NAME = 'AllTraffic';
const ECR_IMAGE = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([a-z0-9._/-]+)(?::[\w.-]+|@sha256:[a-f0-9]{64})$/;
const S3_URL = /^s3:\/\/([a-z0-9.-]{3,63})\/(.+)$/;

/**
 * A tier served by a SageMaker real-time endpoint: an existing one, or a new endpoint (model,
 * endpoint configuration with an encrypted volume, endpoint, optional auto scaling) that this
 * construct owns. Create it with `ModelTier.sageMaker()` or `new SageMakerModelTier()`.
 */
export class SageMakerModelTier extends Construct implements IModelTier {
  public readonly tierId: string;
  public readonly provider = ModelProvider.SAGEMAKER;
  public readonly modelIdentifier: string;
  public readonly inputPricePer1kTokens: number;
  public readonly outputPricePer1kTokens: number;
  public readonly maxTokens: number;
  public readonly timeout: Duration;
  public readonly apiFormat?: SageMakerApiFormat;
  /** Name of the endpoint. */
  public readonly endpointName: string;
  /** ARN of the endpoint. */
  public readonly endpointArn: string;
  /** The endpoint, when this construct created it. */
  public readonly endpoint?: sagemaker.CfnEndpoint;
  /** The model, when this construct created it. */
  public readonly model?: sagemaker.CfnModel;
  /** The role SageMaker assumes to pull the image and the model data, when this construct created it. */
  public readonly executionRole?: iam.Role;
  /** The auto scaling target of the endpoint variant, when `autoScaling` is set. */
  public readonly scalableTarget?: appscaling.ScalableTarget;

  constructor(scope: Construct, id: string, props: SageMakerTierProps) {
    super(scope, id);
    const where = `ModelTier.sageMaker(${props.tierId})`;
    validateBaseProps(where, props);

    this.tierId = props.tierId;
    this.inputPricePer1kTokens = props.inputPricePer1kTokens ?? 0;
    this.outputPricePer1kTokens = props.outputPricePer1kTokens ?? 0;
    this.maxTokens = props.maxTokens ?? DEFAULT_MAX_TOKENS;
    this.timeout = props.timeout ?? DEFAULT_TIER_TIMEOUT;
    this.apiFormat = props.apiFormat ?? SageMakerApiFormat.OPENAI_CHAT;

    if (props.existingEndpointName !== undefined) {
      const newEndpointProps = (['imageUri', 'modelDataUrl', 'environment', 'networkIsolation', 'instanceType', 'instanceCount', 'autoScaling', 'vpc', 'vpcSubnets', 'encryptionKey', 'endpointName', 'startupTimeout'] as const)
        .filter((key) => props[key] !== undefined);
      if (newEndpointProps.length > 0) {
        throw new Error(`${where}: ${newEndpointProps.join(', ')} describe a new endpoint and cannot be combined with existingEndpointName`);
      }
      this.endpointName = props.existingEndpointName;
      this.modelIdentifier = props.existingEndpointName;
      this.endpointArn = Stack.of(this).formatArn({
        service: 'sagemaker',
        resource: 'endpoint',
        // SageMaker ARNs carry the endpoint name in lower case.
        resourceName: Token.isUnresolved(props.existingEndpointName) ? props.existingEndpointName : props.existingEndpointName.toLowerCase(),
      });
      return;
    }

    if (props.imageUri === undefined) {
      throw new Error(`${where}: imageUri is required to create an endpoint (or set existingEndpointName to use an existing one)`);
    }
    const image = ECR_IMAGE.exec(props.imageUri);
    if (!image) {
      throw new Error(`${where}: imageUri must be an ECR image URI such as 763104351884.dkr.ecr.us-east-1.amazonaws.com/repository:tag; got "${props.imageUri}"`);
    }
    const modelData = props.modelDataUrl === undefined ? undefined : S3_URL.exec(props.modelDataUrl);
    if (props.modelDataUrl !== undefined && !modelData) {
      throw new Error(`${where}: modelDataUrl must be an S3 URI such as s3://bucket/model.tar.gz; got "${props.modelDataUrl}"`);
    }
    const instanceCount = props.instanceCount ?? 1;
    if (!Number.isInteger(instanceCount) || instanceCount < 1) {
      throw new Error(`${where}: instanceCount must be an integer >= 1; got ${instanceCount}`);
    }
    const instanceType = props.instanceType ?? 'ml.g5.xlarge';
    if (!/^ml\.[a-z0-9]+\.[a-z0-9]+$/.test(instanceType)) {
      throw new Error(`${where}: instanceType must look like ml.g5.xlarge; got "${instanceType}"`);
    }
    const startupSeconds = (props.startupTimeout ?? Duration.minutes(15)).toSeconds();
    if (startupSeconds < 60 || startupSeconds > 3600) {
      throw new Error(`${where}: startupTimeout must be between 1 and 60 minutes; got ${startupSeconds} seconds`);
    }

    if (props.endpointName !== undefined && !Token.isUnresolved(props.endpointName) && !/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/.test(props.endpointName)) {
      throw new Error(`${where}: endpointName must be 1-63 letters, digits and dashes, starting and ending with a letter or digit; got "${props.endpointName}"`);
    }
    // A physical name because the execution role's log grant names the endpoint's log group,
    // which must be known before the endpoint exists.
    this.endpointName = props.endpointName ?? Names.uniqueResourceName(this, { maxLength: 63, separator: '-' }).replace(/[^a-zA-Z0-9-]/g, '-');
    this.modelIdentifier = this.endpointName;

    // The model's role: pull exactly this image, read exactly this model data, write its own logs.
    const role = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('sagemaker.amazonaws.com'),
      description: `SageMaker execution role of model tier ${props.tierId}`,
    });
    this.executionRole = role;
    const [, imageAccount, imageRegion, repository] = image;
    role.addToPolicy(new iam.PolicyStatement({
      actions: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
      resources: [`arn:${Aws.PARTITION}:ecr:${imageRegion}:${imageAccount}:repository/${repository}`],
    }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }));
    if (modelData) {
      const [, bucket, key] = modelData;
      const objects = `arn:${Aws.PARTITION}:s3:::${bucket}/${key}${key.endsWith('/') ? '*' : ''}`;
      role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [objects] }));
      if (key.endsWith('/')) {
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${nagResourceId(this, objects)}]`,
          reason: `modelDataUrl is a prefix of uncompressed artifacts: SageMaker reads every object under s3://${bucket}/${key}, and only there.`,
        });
        role.addToPolicy(new iam.PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [`arn:${Aws.PARTITION}:s3:::${bucket}`],
          conditions: { StringLike: { 's3:prefix': [`${key}*`] } },
        }));
      }
    }
    const logGroupArn = Stack.of(this).formatArn({
      service: 'logs',
      resource: 'log-group',
      resourceName: `/aws/sagemaker/Endpoints/${this.endpointName}`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    role.addToPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
      resources: [logGroupArn, `${logGroupArn}:log-stream:*`],
    }));
    role.addToPolicy(new iam.PolicyStatement({
      actions: ['cloudwatch:PutMetricData'],
      resources: ['*'],
      conditions: { StringLike: { 'cloudwatch:namespace': ['/aws/sagemaker/*', 'AWS/SageMaker'] } },
    }));

    let vpcConfig: sagemaker.CfnModel.VpcConfigProperty | undefined;
    if (props.vpc) {
      const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
        vpc: props.vpc,
        description: `SageMaker model of tier ${props.tierId}`,
      });
      // Private subnets with egress reach S3 and ECR without endpoints; isolated ones are the fallback.
      const subnets = selectPrivateSubnets(props.vpc, props.vpcSubnets, where);
      vpcConfig = { securityGroupIds: [securityGroup.securityGroupId], subnets: subnets.subnetIds };
      role.addToPolicy(new iam.PolicyStatement({
        actions: [
          'ec2:CreateNetworkInterface', 'ec2:CreateNetworkInterfacePermission', 'ec2:DeleteNetworkInterface',
          'ec2:DeleteNetworkInterfacePermission', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeVpcs',
          'ec2:DescribeDhcpOptions', 'ec2:DescribeSubnets', 'ec2:DescribeSecurityGroups',
        ],
        resources: ['*'],
      }));
    }
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, cloudwatch:PutMetricData (limited by a namespace condition) and the EC2 network-interface actions of a VPC model support no resource-level scoping.',
    });
    // The id is computed from the ARN the policy holds: its partition is a literal or a token
    // depending on @aws-cdk/core:enablePartitionLiterals.
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagResourceId(this, `${logGroupArn}:log-stream:*`)}]`,
      reason: 'SageMaker names the log streams of its endpoint at run time; the grant is limited to the endpoint\'s own log group.',
    }, {
      id: 'NIST.800.53.R5-IAMNoInlinePolicy',
      reason: 'The grants of this execution role (this image, this model data, this endpoint\'s logs) are written into its own policy; it belongs to this role alone and lives and dies with it.',
    });

    this.model = new sagemaker.CfnModel(this, 'Model', {
      executionRoleArn: role.roleArn,
      primaryContainer: {
        image: props.imageUri,
        modelDataUrl: props.modelDataUrl,
        environment: props.environment,
      },
      enableNetworkIsolation: props.networkIsolation ?? (props.modelDataUrl !== undefined && !downloadsFromHub(props.environment)),
      vpcConfig,
    });
    this.model.node.addDependency(role);

    const key = props.encryptionKey ?? new kms.Key(this, 'VolumeKey', {
      enableKeyRotation: true,
      description: `Encrypts the storage volume of SageMaker endpoint ${this.endpointName}`,
    });
    const config = new sagemaker.CfnEndpointConfig(this, 'EndpointConfig', {
      kmsKeyId: key.keyArn,
      productionVariants: [{
        variantName: VARIANT_NAME,
        modelName: this.model.attrModelName,
        instanceType,
        initialInstanceCount: instanceCount,
        initialVariantWeight: 1,
        containerStartupHealthCheckTimeoutInSeconds: startupSeconds,
        modelDataDownloadTimeoutInSeconds: startupSeconds,
      }],
    });
    this.endpoint = new sagemaker.CfnEndpoint(this, 'Endpoint', {
      endpointName: this.endpointName,
      endpointConfigName: config.attrEndpointConfigName,
    });
    // Ref of AWS::SageMaker::Endpoint is its ARN.
    this.endpointArn = this.endpoint.ref;

    if (props.autoScaling) {
      const a = props.autoScaling;
      if (!Number.isInteger(a.minCapacity) || a.minCapacity < 1 || !Number.isInteger(a.maxCapacity) || a.maxCapacity < a.minCapacity) {
        throw new Error(`${where}: autoScaling needs integers 1 <= minCapacity <= maxCapacity; got ${a.minCapacity}..${a.maxCapacity}`);
      }
      if (instanceCount < a.minCapacity || instanceCount > a.maxCapacity) {
        throw new Error(`${where}: instanceCount (${instanceCount}) must lie within autoScaling ${a.minCapacity}..${a.maxCapacity}`);
      }
      this.scalableTarget = new appscaling.ScalableTarget(this, 'ScalableTarget', {
        serviceNamespace: appscaling.ServiceNamespace.SAGEMAKER,
        resourceId: `endpoint/${this.endpoint.attrEndpointName}/variant/${VARIANT_NAME}`,
        scalableDimension: 'sagemaker:variant:DesiredInstanceCount',
        minCapacity: a.minCapacity,
        maxCapacity: a.maxCapacity,
      });
      this.scalableTarget.node.addDependency(this.endpoint);
      this.scalableTarget.scaleToTrackMetric('InvocationsPerInstance', {
        predefinedMetric: appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
        targetValue: a.targetInvocationsPerInstance ?? 60,
        scaleInCooldown: a.scaleInCooldown ?? Duration.minutes(5),
        scaleOutCooldown: a.scaleOutCooldown ?? Duration.minutes(2),
      });
    }
  }

  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['sagemaker:InvokeEndpoint'], resourceArns: [this.endpointArn] });
  }

  // Metrics of the endpoint variant (an existing endpoint is read under the variant name this
  // construct gives its own, `AllTraffic`, SageMaker's usual single variant).

  /** `AWS/SageMaker` `Invocations` of the endpoint variant. */
  public metricProviderInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return sageMakerVariantMetric('AWS/SageMaker', this.endpointName, VARIANT_NAME, 'Invocations', 'Sum', props);
  }

  /** `AWS/SageMaker` `ModelLatency` of the endpoint variant, in microseconds; p99 by default. */
  public metricProviderLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return sageMakerVariantMetric('AWS/SageMaker', this.endpointName, VARIANT_NAME, 'ModelLatency', 'p99', props);
  }

  /** Undefined: SageMaker publishes no throttle metric for an endpoint. */
  public metricProviderThrottles(_props?: cloudwatch.MetricOptions): cloudwatch.Metric | undefined {
    return undefined;
  }

  /** `AWS/SageMaker` `InvocationsPerInstance` of the endpoint variant (what target tracking tracks). */
  public metricInvocationsPerInstance(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return sageMakerVariantMetric('AWS/SageMaker', this.endpointName, VARIANT_NAME, 'InvocationsPerInstance', 'Sum', props);
  }

  /** `/aws/sagemaker/Endpoints` `CPUUtilization` (percent, summed over the instance's cores); average by default. */
  public metricCpuUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return sageMakerVariantMetric('/aws/sagemaker/Endpoints', this.endpointName, VARIANT_NAME, 'CPUUtilization', 'Average', props);
  }

  /** `/aws/sagemaker/Endpoints` `GPUUtilization` (percent, summed over the instance's GPUs); average by default. */
  public metricGpuUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return sageMakerVariantMetric('/aws/sagemaker/Endpoints', this.endpointName, VARIANT_NAME, 'GPUUtilization', 'Average', props);
  }

  /** Instances in service: `Invocations` ÷ `InvocationsPerInstance` (no value in a minute without invocations). */
  public metricInstanceCount(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric | undefined {
    return sageMakerInstanceCount(this.endpointName, VARIANT_NAME, props);
  }

  /** `maxCapacity` of the auto scaling target, when the tier scales. */
  public get maxInstanceCount(): number | undefined {
    const target = this.scalableTarget?.node.defaultChild as appscaling.CfnScalableTarget | undefined;
    return target?.maxCapacity;
  }
}

/** Whether a TGI-style container would download its model: `HF_MODEL_ID` is a Hub id, not a local path. */
function downloadsFromHub(environment: { [key: string]: string } | undefined): boolean {
  const modelId = environment?.HF_MODEL_ID;
  return modelId !== undefined && !Token.isUnresolved(modelId) && !modelId.startsWith('/');
}
