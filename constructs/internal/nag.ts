import { Stack, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, type IConstruct } from 'constructs';

/**
 * The finding id cdk-nag gives a resource of an IAM statement (`AwsSolutions-IAM5[Resource::<this>]`):
 * the resolved value flattened the way cdk-nag flattens it (`Ref` → `<Id>`, `Fn::GetAtt` →
 * `<Id.Attr>`, `Fn::Join` joined). Lets an acknowledgement name the exact finding.
 */
export function nagResourceId(scope: IConstruct, value: string): string {
  return flatten(Stack.of(scope).resolve(value));
}

function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const obj = node as Record<string, any>;
  if (obj['Fn::Join']) {
    const [delimiter, items] = obj['Fn::Join'];
    return (items as unknown[]).map(flatten).join(delimiter);
  }
  if (obj['Fn::Sub']) return flatten(obj['Fn::Sub']);
  if (obj['Fn::GetAtt']) {
    const [resource, attribute] = obj['Fn::GetAtt'];
    return `<${flatten(resource)}.${flatten(attribute)}>`;
  }
  if (obj['Fn::ImportValue']) return flatten(obj['Fn::ImportValue']);
  if (obj.Ref) return `<${flatten(obj.Ref)}>`;
  return JSON.stringify(node);
}

/** Principals this library created (roles of its handlers and services). */
const ownedPrincipals = new WeakSet<object>();

/** Marks a principal as created by this library: grant methods may acknowledge findings on it. */
export function markOwned(principal: iam.IPrincipal): void {
  ownedPrincipals.add(principal);
}

/**
 * Acknowledges `acknowledgement` on the grantee's principal only when this library created it.
 * A grant to the user's own role leaves its findings to the user's own review: the README lists
 * the ids a grant method's statements can raise.
 */
export function acknowledgeOnOwnedGrantee(grantee: iam.IGrantable, acknowledgement: { id: string; reason: string }): void {
  const principal = grantee.grantPrincipal;
  if (ownedPrincipals.has(principal) && Construct.isConstruct(principal)) Validations.of(principal).acknowledge(acknowledgement);
}
