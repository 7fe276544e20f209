import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';
import type { IResponseCache } from '../cache/response-cache';

/**
 * What a vector store is bound to: the router whose semantic cache it holds. Binding creates the
 * store's resources; each function that searches the store (the router's, the batch worker's) is
 * then granted access with `VectorStore._grantClient()`. Internal (not part of the jsii API).
 */
export interface VectorStoreBinding {
  /** The router construct: resources a store creates for it are created below it. */
  readonly scope: Construct;
  /** The router's VPC, if it runs in one. */
  readonly vpc?: ec2.IVpc;
  /** The router's subnets. */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** The router's response cache, if any. */
  readonly cache?: IResponseCache;
  /** Dimensions of the vectors the store will hold. */
  readonly dimensions: number;
  /** Prefix of validation messages, such as `TieredRouter: semanticCache.vectorStore`. */
  readonly where: string;
}
