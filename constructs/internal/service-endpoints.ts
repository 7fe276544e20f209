import { Annotations, Aspects, CfnResource, Stack, Token, type IAspect } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { IConstruct } from 'constructs';
import { withoutEgress } from './subnets';
import { ModelProvider } from '../models/model-tier';

/**
 * Endpoint service names (the part after `com.amazonaws.<region>.`) of the AWS APIs the
 * library's functions call. Any other service name may be declared as well (such as `ssm`).
 */
export const AwsServiceEndpoint = {
  BEDROCK_RUNTIME: 'bedrock-runtime',
  /** The Bedrock control plane (CreateModelInvocationJob). */
  BEDROCK: 'bedrock',
  SAGEMAKER_RUNTIME: 'sagemaker.runtime',
  SECRETS_MANAGER: 'secretsmanager',
  SQS: 'sqs',
  S3: 's3',
  DYNAMODB: 'dynamodb',
  /** Parameter Store (a router configuration too large for the environment). */
  SSM: 'ssm',
} as const;

/** Services reachable through a gateway endpoint as well as an interface endpoint. */
const GATEWAY_SERVICES = new Set<string>([AwsServiceEndpoint.S3, AwsServiceEndpoint.DYNAMODB]);

/** Id of the warning about missing VPC endpoints (acknowledge it with `Annotations.of(fn).acknowledgeWarning(id)`). */
export const MISSING_ENDPOINTS_WARNING = 'cdk-scalable-ai:missingVpcEndpoints';
/** Id of the warning that the endpoints of an imported VPC could not be verified. */
export const UNVERIFIED_ENDPOINTS_WARNING = 'cdk-scalable-ai:unverifiedVpcEndpoints';

/** The AWS services each function calls, by the function construct. */
const needs = new WeakMap<IConstruct, Set<string>>();

/**
 * Declares that `fn` calls the AWS APIs of `services` (endpoint service names such as
 * `bedrock-runtime`, see {@link AwsServiceEndpoint}). Functions placed with
 * {@link checkServiceEndpoints} are checked against them at synth.
 */
export function requireAwsServices(fn: IConstruct, ...services: string[]): void {
  const set = needs.get(fn) ?? new Set<string>();
  for (const service of services) set.add(service);
  needs.set(fn, set);
}

/** The runtime APIs that invoking models of these providers calls. */
export function modelServices(...providers: Array<ModelProvider | undefined>): string[] {
  const services: string[] = [];
  if (providers.includes(ModelProvider.BEDROCK)) services.push(AwsServiceEndpoint.BEDROCK_RUNTIME);
  if (providers.includes(ModelProvider.SAGEMAKER)) services.push(AwsServiceEndpoint.SAGEMAKER_RUNTIME);
  return services;
}

/**
 * At synth, when `fn` runs in isolated subnets of `vpc` (no route to AWS APIs but VPC
 * endpoints), adds a warning on `fn` naming the endpoints its declared services lack. The
 * endpoints of a VPC created in this app are found among its `AWS::EC2::VPCEndpoint` resources;
 * those of an imported VPC cannot be known, so the warning then names every endpoint needed
 * that the app does not create itself.
 */
export function checkServiceEndpoints(fn: IConstruct, vpc: ec2.IVpc, selected: ec2.SelectedSubnets): void {
  if (!withoutEgress(vpc, selected)) return;
  const aspect: IAspect = {
    visit(node: IConstruct): void {
      if (node !== fn) return;
      const needed = [...(needs.get(fn) ?? [])].sort();
      if (needed.length === 0) return;
      const present = endpointServiceNames(fn, vpc);
      const missing = needed.filter((service) => !present.some((name) => name.endsWith(`.${service}`)));
      if (missing.length === 0) return;
      const region = Token.isUnresolved(Stack.of(fn).region) ? '<region>' : Stack.of(fn).region;
      const list = missing
        .map((service) => `com.amazonaws.${region}.${service} (${GATEWAY_SERVICES.has(service) ? 'gateway or interface' : 'interface'})`)
        .join(', ');
      if (vpc instanceof ec2.Vpc) {
        Annotations.of(fn).addWarningV2(MISSING_ENDPOINTS_WARNING,
          `This function runs in isolated subnets, which have no route to AWS APIs, and the VPC lacks the endpoints it calls: ${list}. `
          + 'Add them (vpc.addInterfaceEndpoint(), vpc.addGatewayEndpoint()) or choose private subnets with egress (vpcSubnets).');
      } else {
        Annotations.of(fn).addWarningV2(UNVERIFIED_ENDPOINTS_WARNING,
          `This function runs in isolated subnets of an imported VPC, whose VPC endpoints cannot be verified at synth; it calls: ${list}. `
          + 'Make sure the VPC has these endpoints (with private DNS), or choose private subnets with egress (vpcSubnets).');
      }
    },
  };
  Aspects.of(fn).add(aspect);
}

/**
 * The service names (`com.amazonaws.<region>.<service>`, tokens as NUL) of the
 * `AWS::EC2::VPCEndpoint` resources of `vpc` anywhere in the app.
 */
function endpointServiceNames(scope: IConstruct, vpc: ec2.IVpc): string[] {
  return scope.node.root.node.findAll()
    .filter((c): c is ec2.CfnVPCEndpoint => CfnResource.isCfnResource(c) && c.cfnResourceType === ec2.CfnVPCEndpoint.CFN_RESOURCE_TYPE_NAME)
    .filter((endpoint) => endpoint.vpcId === vpc.vpcId)
    .map((endpoint) => literalText(Stack.of(endpoint).resolve(endpoint.serviceName)));
}

/** The literal text of a resolved CloudFormation string: `Fn::Join` parts joined, other intrinsics as NUL. */
function literalText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'Fn::Join' in value) {
    const [separator, parts] = (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    return parts.map(literalText).join(separator);
  }
  return '\u0000';
}
