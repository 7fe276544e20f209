import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { newLogGroup } from './encryption';
import { markOwned } from './nag';
import { checkServiceEndpoints } from './service-endpoints';
import { HandlerTracingMode, type HandlerTracing } from '../tracing/handler-tracing';

/** Directory of a handler bundled by `projen bundle` (esbuild) from `lambdas/<name>/handler.ts`. */
export function handlerAssetPath(name: string): string {
  // constructs/internal (ts-node) and lib/internal (compiled) are both two levels below the package root.
  const dir = path.join(__dirname, '..', '..', 'assets', 'lambdas', name, 'handler');
  if (!fs.existsSync(path.join(dir, 'index.js'))) {
    throw new Error(`The bundled ${name} handler is missing at ${dir}: run \`npx projen bundle\` (a published package ships it prebuilt).`);
  }
  return dir;
}

export interface HandlerFunctionProps {
  /** Folder name under lambdas/ (and assets/lambdas/). */
  readonly handlerName: string;
  readonly description: string;
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly logRetention: logs.RetentionDays;
  readonly vpc?: ec2.IVpc;
  /** Subnets of `vpc`, already checked to be private (see `selectPrivateSubnets`). */
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly reservedConcurrentExecutions?: number;
  readonly serviceName: string;
  /** KMS key of the function's log group. */
  readonly logEncryptionKey?: kms.IKey;
  /** The construct and prop that give `logEncryptionKey`, for the acknowledgement without one (`TieredRouter encryptionKey`). */
  readonly keyProp: string;
  /** Why the function needs no dead-letter queue of its own (acknowledges NIST.800.53.R5-LambdaDLQ). */
  readonly noDeadLetterQueueReason: string;
  /** Why it may run without reserved concurrency when `reservedConcurrentExecutions` is not set (acknowledges NIST.800.53.R5-LambdaConcurrency). */
  readonly unreservedConcurrencyReason: string;
  /**
   * Tracing of the function.
   * @default HandlerTracing.disabled()
   */
  readonly tracing?: HandlerTracing;
}

/**
 * A Lambda function for one of the library's bundled handlers, with the defaults every handler
 * shares: latest Node.js runtime on arm64, its own log group with a retention, JSON logs, and a
 * role that holds only what the handler needs (no AWS managed policies).
 */
export class HandlerFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /** Security group of the function, when it runs in a VPC. */
  readonly securityGroup?: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: HandlerFunctionProps) {
    super(scope, id);

    this.logGroup = newLogGroup(this, 'LogGroup', { retention: props.logRetention, encryptionKey: props.logEncryptionKey, keyProp: props.keyProp });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${props.description}`,
    });
    markOwned(this.role);
    this.logGroup.grantWrite(this.role);

    if (props.vpc) {
      // Outbound: HTTPS to AWS APIs (through VPC endpoints or NAT); other ports are opened per
      // peer with `connections`, as ResponseCache.grantConnect() does.
      this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
        vpc: props.vpc,
        description: `${props.description}: HTTPS to AWS APIs, other ports per granted peer`,
        allowAllOutbound: false,
      });
      this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS service endpoints');
      // What AWSLambdaVPCAccessExecutionRole grants, inline so that no managed policy is attached.
      this.role.addToPolicy(new iam.PolicyStatement({
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }));
      Validations.of(this.role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'Lambda manages the ENIs of a VPC function itself; these EC2 network-interface actions do not support resource-level scoping (the same statement as AWSLambdaVPCAccessExecutionRole).',
      });
    }

    this.function = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      code: lambda.Code.fromAsset(handlerAssetPath(props.handlerName)),
      handler: 'index.handler',
      role: this.role,
      timeout: props.timeout,
      memorySize: props.memorySize,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      vpc: props.vpc,
      vpcSubnets: props.vpc ? props.vpcSubnets : undefined,
      securityGroups: this.securityGroup ? [this.securityGroup] : undefined,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ...tracingEnvironment(props.tracing),
        ...props.environment,
      },
      // Both ways export to X-Ray through Lambda's active tracing (ADOT's collector too).
      tracing: traces(props.tracing) ? lambda.Tracing.ACTIVE : undefined,
      layers: props.tracing?.mode === HandlerTracingMode.OPEN_TELEMETRY
        ? [lambda.LayerVersion.fromLayerVersionArn(this, 'AdotLayer', props.tracing.layerArn!)]
        : undefined,
    });
    if (traces(props.tracing)) {
      // Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords on `*` to the role.
      Validations.of(this.role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray active tracing (the tracing prop): xray:PutTraceSegments and xray:PutTelemetryRecords do not support resource-level permissions, so X-Ray requires Resource * for them (the statement Lambda adds for Tracing.ACTIVE).',
      });
    }
    // The function must not run before its role can write logs and manage ENIs.
    this.function.node.addDependency(this.role);

    Validations.of(this.role).acknowledge({
      id: 'NIST.800.53.R5-IAMNoInlinePolicy',
      reason: 'The grants of this role are written by grant methods into its own policy (DefaultPolicy), each scoped to the resources this handler uses; the policy belongs to this role alone and lives and dies with it, so a reusable managed policy would add nothing but a way to attach the same rights elsewhere.',
    });
    Validations.of(this.function).acknowledge({ id: 'NIST.800.53.R5-LambdaDLQ', reason: props.noDeadLetterQueueReason });
    if (props.reservedConcurrentExecutions === undefined) {
      Validations.of(this.function).acknowledge({ id: 'NIST.800.53.R5-LambdaConcurrency', reason: props.unreservedConcurrencyReason });
    }
    if (!props.vpc) {
      Validations.of(this.function).acknowledge({
        id: 'NIST.800.53.R5-LambdaInsideVPC',
        reason: 'No vpc was given: this handler reaches only AWS APIs over TLS with IAM authentication, and nothing it uses lives in a VPC. Give vpc to place it in one.',
      });
    }
    // In isolated subnets, the AWS APIs it declares (requireAwsServices) need VPC endpoints.
    if (props.vpc) checkServiceEndpoints(this.function, props.vpc, props.vpc.selectSubnets(props.vpcSubnets));
  }
}

function traces(tracing: HandlerTracing | undefined): boolean {
  return tracing !== undefined && tracing.mode !== HandlerTracingMode.DISABLED;
}

/**
 * The handlers' Powertools Tracer is on only with `POWERTOOLS_TRACE_ENABLED=true`; with ADOT it
 * stays off (one tracer per function) and the layer's wrapper starts the OpenTelemetry SDK.
 */
function tracingEnvironment(tracing: HandlerTracing | undefined): Record<string, string> {
  if (tracing?.mode === HandlerTracingMode.X_RAY) return { POWERTOOLS_TRACE_ENABLED: 'true' };
  if (tracing?.mode === HandlerTracingMode.OPEN_TELEMETRY) return { AWS_LAMBDA_EXEC_WRAPPER: '/opt/otel-handler' };
  return {};
}
