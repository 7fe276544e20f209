import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import type { ResponseCache } from '../cache/response-cache';

/** What a vector store is bound to: the router that searches it. Internal (not part of the jsii API). */
export interface VectorStoreBinding {
  /** The router construct: resources a store creates for it are created below it. */
  readonly scope: Construct;
  /** The router function (grants, security group connections). */
  readonly function: lambda.Function;
  /** The router function's role (data access policies name it). */
  readonly role: iam.IRole;
  /** The router's VPC, if it runs in one. */
  readonly vpc?: ec2.IVpc;
  /** The router's subnets. */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** The router's response cache, if any. */
  readonly cache?: ResponseCache;
  /** Dimensions of the vectors the store will hold. */
  readonly dimensions: number;
  /** Prefix of validation messages, such as `TieredRouter: semanticCache.vectorStore`. */
  readonly where: string;
}
