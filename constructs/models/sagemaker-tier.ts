import { Annotations, ArnFormat, Aws, Duration, Names, Stack, Token, Validations } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
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
import { scheduleTrafficProfile } from '../scaling/scheduled-scaling';
import type { WeeklyTrafficProfile } from '../scaling/traffic-profile';

/**
 * Auto scaling of a SageMaker tier's endpoint variant: target tracking on invocations per instance
 * (and on GPU utilization with `targetGpuUtilization`), and scheduled minimum capacity from a
 * weekly traffic profile.
 *
 * Scale-in is quicker than scale-out by default: the scale-out cooldown covers the minutes a new
 * instance takes to start (scaling out again before it serves would overshoot), while the
 * scale-in cooldown is short, because an idle GPU instance is the largest avoidable cost of a
 * SageMaker tier.
 */
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
   * Average GPU utilization of the variant's instances to hold (`GPUUtilization` of
   * `/aws/sagemaker/Endpoints`), in percent of one GPU: an instance with 4 GPUs reports up to 400.
   * A second target-tracking policy beside the invocations one: the variant scales out when either
   * asks for it, and in only when both allow. Only for GPU instance types (`ml.g*`, `ml.p*`).
   * @default - no GPU policy
   */
  readonly targetGpuUtilization?: number;
  /**
   * Wait after a scale-in before the next one. Short: idle GPU instances are the largest
   * avoidable cost of a SageMaker tier. Longer than `scaleOutCooldown` is reported as a warning.
   * @default Duration.minutes(2)
   */
  readonly scaleInCooldown?: Duration;
  /**
   * Wait after a scale-out before the next one: about the time a new instance takes to serve,
   * so that the load still waiting for it does not add more.
   * @default Duration.minutes(5)
   */
  readonly scaleOutCooldown?: Duration;
  /**
   * Peak hours of the week: scheduled actions raise `minCapacity` ahead of each peak and restore
   * it after.
   * @default - no scheduled scaling
   */
  readonly trafficProfile?: WeeklyTrafficProfile;
}

/**
 * Serve the model as a SageMaker inference component, whose copies scale with the load and, with
 * `minCopies: 0`, down to zero copies and zero instances when idle. Scaling out from zero takes
 * several minutes (an instance has to start and load the model); meanwhile invocations fail
 * and the router answers from its fallback tiers. Scale to zero exists in some Regions only.
 */
export interface SageMakerInferenceComponentOptions {
  /** Most copies of the model, and most instances of the endpoint (one copy per instance). */
  readonly maxCopies: number;
  /**
   * Fewest copies. 0 scales the endpoint to zero instances when no request arrives: no instance
   * cost while idle, a cold start of minutes for the first request after.
   * @default 0
   */
  readonly minCopies?: number;
  /**
   * Memory each copy reserves on its instance, in MB.
   * @default 4096
   */
  readonly memoryPerCopyMb?: number;
  /**
   * GPUs (or Inferentia/Trainium devices) each copy reserves.
   * @default - 1 on GPU and accelerator instance types (ml.g*, ml.p*, ml.inf*, ml.trn*), none otherwise
   */
  readonly acceleratorsPerCopy?: number;
  /**
   * Invocations per copy per minute to hold (`SageMakerInferenceComponentInvocationsPerCopy`).
   * @default 60
   */
  readonly targetInvocationsPerCopy?: number;
  /**
   * Wait after a scale-in before the next one (see `SageMakerAutoScalingOptions.scaleInCooldown`).
   * @default Duration.minutes(2)
   */
  readonly scaleInCooldown?: Duration;
  /**
   * Wait after a scale-out before the next one.
   * @default Duration.minutes(5)
   */
  readonly scaleOutCooldown?: Duration;
  /**
   * Peak hours of the week: scheduled actions raise `minCopies` ahead of each peak (so the first
   * requests of the day meet a warm copy) and restore it after.
   * @default - no scheduled scaling
   */
  readonly trafficProfile?: WeeklyTrafficProfile;
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
   * Serve the model as an inference component that scales its copies, down to zero by default.
   * Not with `autoScaling`, which scales the instances of a plain variant.
   * @default - the model is the variant's own model
   */
  readonly inferenceComponent?: SageMakerInferenceComponentOptions;
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
  /** The auto scaling target: of the endpoint variant with `autoScaling`, of the component's copies with `inferenceComponent`. */
  public readonly scalableTarget?: appscaling.ScalableTarget;
  /** Name of the inference component the router invokes, with `inferenceComponent`. */
  public readonly inferenceComponentName?: string;
  /** ARN of the inference component, with `inferenceComponent`. */
  public readonly inferenceComponentArn?: string;
  /** The inference component, with `inferenceComponent`. */
  public readonly inferenceComponent?: sagemaker.CfnInferenceComponent;

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
      const newEndpointProps = (['imageUri', 'modelDataUrl', 'environment', 'networkIsolation', 'instanceType', 'instanceCount', 'autoScaling', 'inferenceComponent', 'vpc', 'vpcSubnets', 'encryptionKey', 'endpointName', 'startupTimeout'] as const)
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

    // Instances with local NVMe storage encrypt it in hardware, and SageMaker refuses a volume key
    // for them: CreateEndpointConfig fails when KmsKeyId is set (SageMaker API reference).
    const localStorage = LOCAL_STORAGE_INSTANCE.test(instanceType);
    if (localStorage && props.encryptionKey) {
      throw new Error(`${where}: encryptionKey cannot be used with ${instanceType}: its local NVMe storage is encrypted by the instance, and SageMaker refuses a KMS key for it`);
    }
    const key = localStorage ? undefined : props.encryptionKey ?? new kms.Key(this, 'VolumeKey', {
      enableKeyRotation: true,
      description: `Encrypts the storage volume of SageMaker endpoint ${this.endpointName}`,
    });
    if (props.autoScaling && props.inferenceComponent) {
      throw new Error(`${where}: autoScaling scales the instances of a plain endpoint variant, inferenceComponent the copies of a component (and the instances with them); set one of them`);
    }
    const ic = props.inferenceComponent;
    if (ic) validateInferenceComponent(where, ic);
    const config = new sagemaker.CfnEndpointConfig(this, 'EndpointConfig', {
      kmsKeyId: key?.keyArn,
      // An endpoint of inference components names the role in its configuration; its variant has no model of its own.
      executionRoleArn: ic ? role.roleArn : undefined,
      // Its instances are placed by the configuration too, not by the component's model.
      vpcConfig: ic ? vpcConfig : undefined,
      enableNetworkIsolation: ic ? this.model.enableNetworkIsolation : undefined,
      productionVariants: [ic ? {
        variantName: VARIANT_NAME,
        instanceType,
        initialInstanceCount: instanceCount,
        managedInstanceScaling: { status: 'ENABLED', minInstanceCount: ic.minCopies ?? 0, maxInstanceCount: ic.maxCopies },
        routingConfig: { routingStrategy: 'LEAST_OUTSTANDING_REQUESTS' },
      } : {
        variantName: VARIANT_NAME,
        modelName: this.model.attrModelName,
        instanceType,
        initialInstanceCount: instanceCount,
        initialVariantWeight: 1,
        containerStartupHealthCheckTimeoutInSeconds: startupSeconds,
        modelDataDownloadTimeoutInSeconds: startupSeconds,
      }],
    });
    if (ic) config.node.addDependency(role);
    if (localStorage) {
      const reason = `${instanceType} has local NVMe storage, encrypted by the instance's hardware module; SageMaker refuses a KMS key for it (CreateEndpointConfig fails with KmsKeyId)`;
      Validations.of(config).acknowledge(
        { id: 'AwsSolutions-SM2', reason },
        { id: 'NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured', reason },
      );
    }
    this.endpoint = new sagemaker.CfnEndpoint(this, 'Endpoint', {
      endpointName: this.endpointName,
      endpointConfigName: config.attrEndpointConfigName,
    });
    // Ref of AWS::SageMaker::Endpoint is its ARN.
    this.endpointArn = this.endpoint.ref;

    if (ic) {
      const accelerators = ic.acceleratorsPerCopy ?? (ACCELERATED_INSTANCE.test(instanceType) ? 1 : undefined);
      this.inferenceComponentName = Token.isUnresolved(this.endpointName) ? `${this.endpointName}-ic` : `${this.endpointName.slice(0, 60)}-ic`;
      this.inferenceComponent = new sagemaker.CfnInferenceComponent(this, 'InferenceComponent', {
        inferenceComponentName: this.inferenceComponentName,
        endpointName: this.endpoint.attrEndpointName,
        variantName: VARIANT_NAME,
        specification: {
          modelName: this.model.attrModelName,
          computeResourceRequirements: {
            minMemoryRequiredInMb: ic.memoryPerCopyMb ?? 4096,
            numberOfAcceleratorDevicesRequired: accelerators,
          },
          startupParameters: {
            containerStartupHealthCheckTimeoutInSeconds: startupSeconds,
            modelDataDownloadTimeoutInSeconds: startupSeconds,
          },
        },
        // SageMaker refuses to create a component with 0 copies: it starts with one, and scaling takes it to minCopies.
        runtimeConfig: { copyCount: Math.max(1, ic.minCopies ?? 0) },
      });
      this.inferenceComponentArn = this.inferenceComponent.attrInferenceComponentArn;
      this.scalableTarget = this.scaleInferenceComponent(where, ic);
    }

    if (props.autoScaling) {
      const a = props.autoScaling;
      if (!Number.isInteger(a.minCapacity) || a.minCapacity < 1 || !Number.isInteger(a.maxCapacity) || a.maxCapacity < a.minCapacity) {
        throw new Error(`${where}: autoScaling needs integers 1 <= minCapacity <= maxCapacity; got ${a.minCapacity}..${a.maxCapacity}`);
      }
      if (instanceCount < a.minCapacity || instanceCount > a.maxCapacity) {
        throw new Error(`${where}: instanceCount (${instanceCount}) must lie within autoScaling ${a.minCapacity}..${a.maxCapacity}`);
      }
      if (a.targetGpuUtilization !== undefined) {
        if (!GPU_INSTANCE.test(instanceType)) {
          throw new Error(`${where}: autoScaling.targetGpuUtilization needs a GPU instance type (ml.g*, ml.p*); ${instanceType} reports no GPUUtilization`);
        }
        if (!(a.targetGpuUtilization > 0 && a.targetGpuUtilization <= 800)) {
          throw new Error(`${where}: autoScaling.targetGpuUtilization must be a percentage above 0 (up to 100 per GPU of the instance); got ${a.targetGpuUtilization}`);
        }
      }
      const target = new appscaling.ScalableTarget(this, 'ScalableTarget', {
        serviceNamespace: appscaling.ServiceNamespace.SAGEMAKER,
        resourceId: `endpoint/${this.endpoint.attrEndpointName}/variant/${VARIANT_NAME}`,
        scalableDimension: 'sagemaker:variant:DesiredInstanceCount',
        minCapacity: a.minCapacity,
        maxCapacity: a.maxCapacity,
      });
      this.scalableTarget = target;
      target.node.addDependency(this.endpoint);
      const cooldowns = scalingCooldowns(this, 'autoScaling', a.scaleInCooldown, a.scaleOutCooldown);
      target.scaleToTrackMetric('InvocationsPerInstance', {
        predefinedMetric: appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
        targetValue: a.targetInvocationsPerInstance ?? 60,
        ...cooldowns,
      });
      if (a.targetGpuUtilization !== undefined) {
        target.scaleToTrackMetric('GpuUtilization', {
          customMetric: new cloudwatch.Metric({
            namespace: '/aws/sagemaker/Endpoints',
            metricName: 'GPUUtilization',
            dimensionsMap: { EndpointName: this.endpointName, VariantName: VARIANT_NAME },
            statistic: 'Average',
            period: Duration.minutes(1),
          }),
          targetValue: a.targetGpuUtilization,
          ...cooldowns,
        });
      }
      if (a.trafficProfile) scheduleTrafficProfile(target, `${where}: autoScaling.trafficProfile`, a.trafficProfile, a.minCapacity, a.maxCapacity);
    }
  }

  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    // An invocation of an inference component is authorized on the endpoint and on the component.
    const resourceArns = this.inferenceComponentArn ? [this.endpointArn, this.inferenceComponentArn] : [this.endpointArn];
    return iam.Grant.addToPrincipal({ grantee, actions: ['sagemaker:InvokeEndpoint'], resourceArns });
  }

  /**
   * The component's copy count as a scalable target: target tracking on invocations per copy,
   * and, when it may reach zero, a step policy that adds a copy as soon as a request finds none
   * (target tracking cannot scale out from zero: with no copy there is no per-copy metric).
   */
  private scaleInferenceComponent(where: string, ic: SageMakerInferenceComponentOptions): appscaling.ScalableTarget {
    const minCopies = ic.minCopies ?? 0;
    const target = new appscaling.ScalableTarget(this, 'ScalableTarget', {
      serviceNamespace: appscaling.ServiceNamespace.SAGEMAKER,
      resourceId: `inference-component/${this.inferenceComponentName}`,
      scalableDimension: 'sagemaker:inference-component:DesiredCopyCount',
      minCapacity: minCopies,
      maxCapacity: ic.maxCopies,
    });
    target.node.addDependency(this.inferenceComponent!);
    target.scaleToTrackMetric('InvocationsPerCopy', {
      predefinedMetric: appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
      targetValue: ic.targetInvocationsPerCopy ?? 60,
      ...scalingCooldowns(this, 'inferenceComponent', ic.scaleInCooldown, ic.scaleOutCooldown),
    });
    if (minCopies === 0) {
      // As the AWS guide to scaling an endpoint to zero sets it up: one alarm on requests that found
      // no copy, and a step that adds one copy (which brings an instance with it).
      const scaleOut = new appscaling.StepScalingAction(this, 'ScaleOutFromZero', {
        scalingTarget: target,
        adjustmentType: appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
        cooldown: Duration.minutes(1),
      });
      scaleOut.addAdjustment({ adjustment: 1, lowerBound: 0 });
      const alarm = new cloudwatch.Alarm(this, 'NoCapacityAlarm', {
        alarmDescription: `Requests to inference component ${this.inferenceComponentName} found no copy: adds one (scale out from zero)`,
        metric: new cloudwatch.Metric({
          namespace: 'AWS/SageMaker',
          metricName: 'NoCapacityInvocationFailures',
          dimensionsMap: { InferenceComponentName: this.inferenceComponentName! },
          statistic: 'Sum',
          period: Duration.minutes(1),
        }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new cwActions.ApplicationScalingAction(scaleOut));
    }
    if (ic.trafficProfile) scheduleTrafficProfile(target, `${where}: inferenceComponent.trafficProfile`, ic.trafficProfile, minCopies, ic.maxCopies);
    return target;
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

  /**
   * `maxCapacity` of the variant's auto scaling target, when the variant scales; undefined with an
   * inference component, whose target counts copies and whose instances SageMaker manages.
   */
  public get maxInstanceCount(): number | undefined {
    if (this.inferenceComponent) return undefined;
    const target = this.scalableTarget?.node.defaultChild as appscaling.CfnScalableTarget | undefined;
    return target?.maxCapacity;
  }
}

/**
 * Instance types with local NVMe instance storage (encrypted by the instance; no KMS volume key):
 * the GPU families g4dn, g5, g6, g6e, p3dn, p4d(e), p5(e/en), Trainium, and every `d` family (m5d, c5d, ...).
 */
const LOCAL_STORAGE_INSTANCE = /^ml\.(g4dn|g5|g6|g6e|p3dn|p4d|p4de|p5|p5e|p5en|trn1|trn1n|trn2|[a-z]\d+[a-z]*d)\./;
/** Instance types with NVIDIA GPUs, which report `GPUUtilization`. */
const GPU_INSTANCE = /^ml\.(g|p)\d/;
/** Instance types whose copies reserve an accelerator device (GPU, Inferentia, Trainium). */
const ACCELERATED_INSTANCE = /^ml\.(g|p|inf|trn)\d/;

/** The cooldowns of a target-tracking policy, with a warning when scale-in is set slower than scale-out. */
function scalingCooldowns(
  scope: Construct, prop: string, scaleIn: Duration | undefined, scaleOut: Duration | undefined,
): { scaleInCooldown: Duration; scaleOutCooldown: Duration } {
  const scaleInCooldown = scaleIn ?? Duration.minutes(2);
  const scaleOutCooldown = scaleOut ?? Duration.minutes(5);
  if (scaleInCooldown.toSeconds() > scaleOutCooldown.toSeconds()) {
    Annotations.of(scope).addWarningV2('cdk-scalable-ai:slowScaleIn',
      `${prop}.scaleInCooldown (${scaleInCooldown.toHumanString()}) is longer than scaleOutCooldown (${scaleOutCooldown.toHumanString()}): `
      + 'instances added for a burst are then paid for longer than needed; scale-in is meant to be the quicker one');
  }
  return { scaleInCooldown, scaleOutCooldown };
}

function validateInferenceComponent(where: string, ic: SageMakerInferenceComponentOptions): void {
  const minCopies = ic.minCopies ?? 0;
  if (!Number.isInteger(minCopies) || minCopies < 0 || !Number.isInteger(ic.maxCopies) || ic.maxCopies < Math.max(1, minCopies)) {
    throw new Error(`${where}: inferenceComponent needs integers 0 <= minCopies <= maxCopies and maxCopies >= 1; got ${minCopies}..${ic.maxCopies}`);
  }
  if (ic.memoryPerCopyMb !== undefined && (!Number.isInteger(ic.memoryPerCopyMb) || ic.memoryPerCopyMb < 128)) {
    throw new Error(`${where}: inferenceComponent.memoryPerCopyMb must be an integer of at least 128; got ${ic.memoryPerCopyMb}`);
  }
  if (ic.acceleratorsPerCopy !== undefined && (!Number.isInteger(ic.acceleratorsPerCopy) || ic.acceleratorsPerCopy < 1)) {
    throw new Error(`${where}: inferenceComponent.acceleratorsPerCopy must be an integer of at least 1; got ${ic.acceleratorsPerCopy}`);
  }
  if (ic.targetInvocationsPerCopy !== undefined && !(ic.targetInvocationsPerCopy > 0)) {
    throw new Error(`${where}: inferenceComponent.targetInvocationsPerCopy must be above 0; got ${ic.targetInvocationsPerCopy}`);
  }
}

/** Whether a TGI-style container would download its model: `HF_MODEL_ID` is a Hub id, not a local path. */
function downloadsFromHub(environment: { [key: string]: string } | undefined): boolean {
  const modelId = environment?.HF_MODEL_ID;
  return modelId !== undefined && !Token.isUnresolved(modelId) && !modelId.startsWith('/');
}
