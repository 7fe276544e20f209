/**
 * Shared helpers of the construct tests: read IAM statements, CloudFormation intrinsics and the
 * router's runtime configuration out of synthesized templates, and acknowledgements out of a
 * construct tree.
 */
import * as fs from 'node:fs';
import { App, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as cxapi from 'aws-cdk-lib/cx-api';
import type { Construct, IConstruct } from 'constructs';

/**
 * The feature flags `cdk init` writes into a new app's cdk.json at our aws-cdk-lib version (the
 * root cdk.json carries the same): the construct tests synthesize under what users have.
 */
export const RECOMMENDED_FLAGS: Record<string, unknown> = JSON.parse(fs.readFileSync(require.resolve('aws-cdk-lib/recommended-feature-flags.json'), 'utf8'));

/** A fresh App with the recommended feature flags. */
export function newApp(): App {
  return new App({ context: RECOMMENDED_FLAGS });
}

/** A fresh App (with the recommended feature flags) with one env-agnostic (or `props.env`) stack in it. */
export function newStack(id = 'TestStack', props?: StackProps): Stack {
  return new Stack(newApp(), id, props);
}

/** A two-AZ VPC with public and isolated subnets and no NAT gateway. */
export function isolatedVpc(stack: Stack): ec2.Vpc {
  return new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
      { name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    ],
  });
}

/**
 * An organization's VPC: public subnets (with one NAT gateway), private subnets with egress
 * through it (group `app`) and isolated ones (group `data`), over two AZs.
 */
export function orgVpc(scope: Construct): ec2.Vpc {
  return new ec2.Vpc(scope, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
      { name: 'app', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    ],
  });
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalIdOf(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as any);
}

/** A role to grant things to, in `stack`. */
export function newGrantee(stack: Stack, id = 'Grantee'): iam.Role {
  return new iam.Role(stack, id, { assumedBy: new iam.AccountRootPrincipal() });
}

export interface PolicyStatementJson {
  readonly Effect?: string;
  readonly Action?: string | string[];
  readonly NotAction?: string | string[];
  readonly Resource?: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
  readonly [key: string]: unknown;
}

export interface FoundStatement {
  /** Logical id of the resource that carries the statement. */
  readonly logicalId: string;
  readonly type: string;
  readonly statement: PolicyStatementJson;
}

type Resources = Record<string, { Type: string; Properties?: Record<string, any> }>;

function statementsOf(document: any): PolicyStatementJson[] {
  if (!document || typeof document !== 'object') return [];
  const statements = document.Statement;
  if (statements === undefined) return [];
  return Array.isArray(statements) ? statements : [statements];
}

/**
 * Every identity-policy statement of a template: `AWS::IAM::Policy`, `AWS::IAM::ManagedPolicy`
 * and the inline `Policies` of `AWS::IAM::Role`/`User`/`Group`. (Trust policies and resource
 * policies such as KMS key policies are not identity policies and are left out.)
 */
export function iamPolicyStatements(template: Template): FoundStatement[] {
  const resources = template.toJSON().Resources as Resources;
  const found: FoundStatement[] = [];
  for (const [logicalId, resource] of Object.entries(resources)) {
    const props = resource.Properties ?? {};
    switch (resource.Type) {
      case 'AWS::IAM::Policy':
      case 'AWS::IAM::ManagedPolicy':
        for (const statement of statementsOf(props.PolicyDocument)) found.push({ logicalId, type: resource.Type, statement });
        break;
      case 'AWS::IAM::Role':
      case 'AWS::IAM::User':
      case 'AWS::IAM::Group':
        for (const policy of props.Policies ?? []) {
          for (const statement of statementsOf(policy.PolicyDocument)) found.push({ logicalId, type: resource.Type, statement });
        }
        break;
      default:
        break;
    }
  }
  return found;
}

/** The actions of a statement as an array (`NotAction` included: it is a wildcard in disguise). */
export function actionsOf(statement: PolicyStatementJson): string[] {
  const list = (value: string | string[] | undefined) => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
  return [...list(statement.Action), ...list(statement.NotAction).map((a) => `NotAction:${a}`)];
}

/**
 * The IAM actions of the template that contain `*` (or are `NotAction`s), as
 * `<logicalId>: <action>`. Empty when every action is named exactly.
 */
export function wildcardActions(template: Template): string[] {
  const found: string[] = [];
  for (const { logicalId, statement } of iamPolicyStatements(template)) {
    for (const action of actionsOf(statement)) {
      if (action.includes('*') || action.startsWith('NotAction:')) found.push(`${logicalId}: ${action}`);
    }
  }
  return found;
}

/**
 * Renders a CloudFormation value as a string: literals as they are, `Fn::Join` joined, and any
 * other intrinsic as a placeholder: `${AWS::Partition}` for pseudo parameters, `${Ref:Logical}`
 * for `Ref`, `${GetAtt:Logical.Attr}` for `Fn::GetAtt`, `${Sub:...}` / `${Fn::X}` otherwise.
 * Placeholders contain no quotes, so a JSON document built with `Fn::Join` stays parseable.
 */
export function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object') {
    const obj = value as Record<string, any>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [key] = keys;
      const arg = obj[key];
      if (key === 'Fn::Join' && Array.isArray(arg) && arg.length === 2 && Array.isArray(arg[1])) {
        return arg[1].map(flatten).join(arg[0]);
      }
      if (key === 'Ref') return String(arg).startsWith('AWS::') ? `\${${arg}}` : `\${Ref:${arg}}`;
      if (key === 'Fn::GetAtt') return `\${GetAtt:${Array.isArray(arg) ? arg.join('.') : String(arg)}}`;
      if (key === 'Fn::Sub') return `\${Sub:${Array.isArray(arg) ? arg[0] : String(arg)}}`;
      return `\${${key}}`;
    }
  }
  throw new Error(`flatten: cannot render ${JSON.stringify(value)}`);
}

/** The resources of a statement, each flattened (see {@link flatten}). */
export function resourcesOf(statement: PolicyStatementJson): string[] {
  const resource = statement.Resource;
  if (resource === undefined) return [];
  return (Array.isArray(resource) ? resource : [resource]).map(flatten);
}

/** The statements of the template that allow `action`. */
export function statementsAllowing(template: Template, action: string): FoundStatement[] {
  return iamPolicyStatements(template).filter(({ statement }) => statement.Effect === 'Allow' && actionsOf(statement).includes(action));
}

/** Every resource (flattened) on which the template allows `action`. */
export function resourcesAllowing(template: Template, action: string): string[] {
  return statementsAllowing(template, action).flatMap(({ statement }) => resourcesOf(statement));
}

/** The only resource of `type` in the template, as `[logicalId, resource]`. */
export function onlyResource(template: Template, type: string): [string, { Type: string; Properties: Record<string, any>; [k: string]: any }] {
  const found = Object.entries(template.findResources(type));
  if (found.length !== 1) throw new Error(`expected exactly one ${type}, found ${found.length}`);
  const [logicalId, resource] = found[0];
  return [logicalId, { Properties: {}, ...resource } as any];
}

/**
 * The only function of the library in the template, as `[logicalId, resource]`: aws-cdk-lib's own
 * custom resource providers (such as the one `@aws-cdk/aws-ec2:restrictDefaultSecurityGroup`
 * adds to every new VPC) are left out.
 */
export function onlyFunction(template: Template): [string, { Type: string; Properties: Record<string, any>; [k: string]: any }] {
  const found = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([, f]) => f.Properties?.Handler !== '__entrypoint__.handler');
  if (found.length !== 1) throw new Error(`expected exactly one function of the library, found ${found.length}`);
  return found[0] as any;
}

/**
 * Parses the JSON carried by an environment variable: a literal string, or an `Fn::Join` whose
 * tokens are replaced by placeholders (see {@link flatten}); a token in the place of a number
 * (unquoted) reads as its placeholder string.
 */
export function parseJsonValue(value: unknown): any {
  // A number token (such as a database port) renders unquoted: read its placeholder as a string.
  return JSON.parse(flatten(value).replace(/([:[,])(\$\{[^}"]*\})(?=[,\]}])/g, '$1"$2"'));
}

/**
 * The JSON configuration in environment variable `name` of the only function that has one
 * (leaving out the functions that also carry `unless`).
 */
export function functionConfig(template: Template, name: string, unless?: string): any {
  const functions = Object.values(template.findResources('AWS::Lambda::Function'))
    .map((f) => f.Properties?.Environment?.Variables ?? {})
    .filter((variables) => unless === undefined || variables[unless] === undefined)
    .map((variables) => variables[name])
    .filter((v) => v !== undefined);
  if (functions.length !== 1) throw new Error(`expected one function with ${name}, found ${functions.length}`);
  return parseJsonValue(functions[0]);
}

/** The JSON configuration in environment variable `name` of each function that has one, by logical id. */
export function functionConfigs(template: Template, name: string): Record<string, any> {
  const found: Record<string, any> = {};
  for (const [logicalId, fn] of Object.entries(template.findResources('AWS::Lambda::Function'))) {
    const value = fn.Properties?.Environment?.Variables?.[name];
    if (value !== undefined) found[logicalId] = parseJsonValue(value);
  }
  return found;
}

/**
 * The router configuration (`SCALABLE_AI_ROUTER_CONFIG`) of the router function: the only function
 * that has one, besides the batch pipeline's functions (which also carry `SCALABLE_AI_JOBS_CONFIG`).
 */
export function routerConfig(template: Template): any {
  return functionConfig(template, 'SCALABLE_AI_ROUTER_CONFIG', 'SCALABLE_AI_JOBS_CONFIG');
}

/** The static answers loader configuration (`SCALABLE_AI_STATIC_LOADER_CONFIG`) of the only function that has one. */
export function loaderConfig(template: Template): any {
  return functionConfig(template, 'SCALABLE_AI_STATIC_LOADER_CONFIG');
}

/** The statements of the identity policies attached to `role` (by its logical id). */
export function roleStatements(template: Template, roleLogicalId: string): PolicyStatementJson[] {
  const resources = template.toJSON().Resources as Resources;
  return iamPolicyStatements(template)
    .filter(({ logicalId, type }) => (type === 'AWS::IAM::Policy' && JSON.stringify(resources[logicalId].Properties?.Roles ?? []).includes(`"${roleLogicalId}"`))
      || (type === 'AWS::IAM::Role' && logicalId === roleLogicalId))
    .map(({ statement }) => statement);
}

export interface FoundAcknowledgement {
  readonly construct: IConstruct;
  readonly path: string;
  readonly id: string;
  readonly reason: unknown;
}

/** Every acknowledgement recorded by `Validations.of(x).acknowledge()` below `root`. */
export function acknowledgements(root: IConstruct): FoundAcknowledgement[] {
  const found: FoundAcknowledgement[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) {
        found.push({ construct, path: construct.node.path, id, reason });
      }
    }
  }
  return found;
}

export interface Violation {
  ruleName: string;
  severity?: string;
  violatingConstructs: Array<{ constructPath: string }>;
}

export interface ValidationReport {
  pluginReports: Array<{ pluginName: string; conclusion: string; violations: Violation[] }>;
}

/** The policy validation report (validation-report.json) that synth writes. */
export function readReport(file: string): ValidationReport {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Synthesizes `app`, returning the error (and what the validation printed) instead of throwing. */
export function trySynth(app: App): { assembly?: cxapi.CloudAssembly; error?: Error; printed: string } {
  const printed: string[] = [];
  const spies = (['error', 'log', 'warn'] as const).map((method) =>
    jest.spyOn(console, method).mockImplementation((...args: unknown[]) => { printed.push(args.map(String).join(' ')); }));
  try {
    return { assembly: app.synth(), printed: printed.join('\n') };
  } catch (error) {
    return { error: error as Error, printed: printed.join('\n') };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}
