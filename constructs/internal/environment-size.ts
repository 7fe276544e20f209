import { CfnResource, Stack } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';

/**
 * Lambda's limit on the environment variables of a function, all together: 4 KB, measured on the
 * JSON of the variables map (`{"NAME":"value",...}`, escapes included).
 */
export const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;

/**
 * The longest a resolved CloudFormation reference plausibly gets, by resource type (`Ref`) or
 * type and attribute (`Fn::GetAtt`). Anything else (a name, ARN, URL or endpoint of another type,
 * an import from another stack) counts {@link DEFAULT_REFERENCE_BYTES}.
 */
const REFERENCE_BYTES: Record<string, number> = {
  // Bucket names are at most 63 characters.
  'AWS::S3::Bucket': 63,
  // https://sqs.<region>.amazonaws.com[.cn]/<account>/<name of at most 80 characters>
  'AWS::SQS::Queue': 136,
  // arn:aws-us-gov:iam::<account>:role/<name of at most 64 characters>
  'AWS::IAM::Role.Arn': 103,
};
/** Pseudo parameters, at their longest (`aws-us-gov`, `ap-southeast-5`, `amazonaws.com.cn`, ...). */
const PSEUDO_PARAMETER_BYTES: Record<string, number> = {
  'AWS::AccountId': 12,
  'AWS::Partition': 10,
  'AWS::Region': 14,
  'AWS::URLSuffix': 16,
  'AWS::StackName': 128,
  'AWS::StackId': 160,
  'AWS::NoValue': 0,
};
/** Any other reference: longer than the names, ARNs and endpoints the library's resources get. */
const DEFAULT_REFERENCE_BYTES = 256;
/** A port number. */
const PORT_BYTES = 5;

/**
 * The size the environment of `fn` will have once deployed, with `extra` variables added: the
 * bytes of the JSON Lambda measures, with every CloudFormation reference counted at its longest
 * plausible length (see {@link REFERENCE_BYTES}), so never less than the real size.
 */
export function estimatedEnvironmentBytes(fn: lambda.Function, extra: Record<string, string> = {}): number {
  const stack = Stack.of(fn);
  const cfn = fn.node.defaultChild as lambda.CfnFunction;
  const resolved = stack.resolve(cfn.environment) as { variables?: Record<string, unknown> } | undefined;
  const variables = { ...resolved?.variables, ...(stack.resolve(extra) as Record<string, unknown>) };
  if (Object.keys(variables).length === 0) return 0;
  const types = resourceTypes(stack);
  const estimated = Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, estimatedString(value, types)]));
  return Buffer.byteLength(JSON.stringify(estimated), 'utf8');
}

/** The deployed size of a resolved value (see {@link estimatedEnvironmentBytes}). */
export function estimatedValueBytes(scope: Stack, value: string): number {
  return Buffer.byteLength(estimatedString(scope.resolve(value), resourceTypes(scope)), 'utf8');
}

/** A string as long as the resolved value will be once deployed (references become placeholders). */
function estimatedString(value: unknown, types: Map<string, string>): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object') {
    const v = value as Record<string, any>;
    if (Array.isArray(v['Fn::Join'])) {
      const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
      return parts.map((part) => estimatedString(part, types)).join(separator);
    }
    if (typeof v.Ref === 'string') {
      const bytes = PSEUDO_PARAMETER_BYTES[v.Ref] ?? REFERENCE_BYTES[types.get(v.Ref) ?? ''] ?? DEFAULT_REFERENCE_BYTES;
      return 'x'.repeat(bytes);
    }
    if (Array.isArray(v['Fn::GetAtt'])) {
      const [logicalId, attribute] = v['Fn::GetAtt'] as [string, string];
      const bytes = /Port$/.test(String(attribute)) ? PORT_BYTES : REFERENCE_BYTES[`${types.get(logicalId)}.${attribute}`] ?? DEFAULT_REFERENCE_BYTES;
      return 'x'.repeat(bytes);
    }
  }
  return 'x'.repeat(DEFAULT_REFERENCE_BYTES);
}

/** The CloudFormation type of each resource of `stack`, by logical id. */
function resourceTypes(stack: Stack): Map<string, string> {
  const types = new Map<string, string>();
  for (const construct of stack.node.findAll()) {
    if (CfnResource.isCfnResource(construct) && Stack.of(construct) === stack) {
      types.set(stack.resolve(construct.logicalId) as string, construct.cfnResourceType);
    }
  }
  return types;
}
