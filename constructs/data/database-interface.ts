import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { IConstruct } from 'constructs';

/**
 * An Aurora PostgreSQL database with a writer and readers, as the router and the semantic cache
 * use it: writes through `writerEndpoint`, reads through `readerEndpoint`. Implemented by
 * `ReadReplicaDatabase` and, in another Region, `GlobalSecondaryDatabase`. Its `connections` are those of what the handlers connect to (the RDS
 * Proxy, or the cluster without one): `database.connections.allowDefaultPortFrom(fn)` admits a function.
 */
export interface IReadReplicaDatabase extends IConstruct, ec2.IConnectable {
  /** The Aurora cluster. */
  readonly cluster: rds.IDatabaseCluster;
  /** The RDS Proxy in front of the cluster, if it has one. */
  readonly proxy?: rds.IDatabaseProxy;
  /**
   * Where writes go: the proxy's default (read/write) endpoint, or the cluster endpoint (of a
   * global secondary, which forwards them to the primary's writer).
   */
  readonly writerEndpoint: rds.Endpoint;
  /** Where reads go: the proxy's read-only endpoint, or the cluster's reader endpoint. */
  readonly readerEndpoint: rds.Endpoint;
  /** The database the handlers use. */
  readonly databaseName: string;
  /** The database user the handlers connect as. */
  readonly username: string;
  /** Whether handlers authenticate with IAM auth tokens (true behind the proxy) rather than the secret's password. */
  readonly iamAuthentication: boolean;
  /**
   * The identifier of the Aurora Global Database this cluster belongs to, if any: its primary
   * (`ReadReplicaDatabase` with `globalDatabase`), which a `GlobalSecondaryDatabase` joins, or
   * such a secondary.
   */
  readonly globalClusterIdentifier?: string;
  /**
   * The literal name of `secret` when it is the master secret of a global database's primary:
   * a `GlobalSecondaryDatabase` replicates the secret into its own Region and reads the replica
   * there by this name (no cross-Region reference).
   * @default - the secret's name is not known at synth (not the primary of a global database)
   */
  readonly globalSecretName?: string;
  /**
   * Whether `writerEndpoint` belongs to a global secondary cluster that forwards writes to the
   * primary Region's writer (`GlobalSecondaryDatabase`). Forwarded sessions accept DML only, no
   * DDL: tables are created through a writer of the primary Region.
   * @default false
   */
  readonly writeForwarding?: boolean;
  /** The credentials of `username` (Secrets Manager, rotated). */
  readonly secret: secretsmanager.ISecret;
  /**
   * Grants `grantee` permission to connect as `username`: `rds-db:connect` on the proxy with IAM
   * authentication, otherwise read access to the secret.
   */
  grantConnect(grantee: iam.IGrantable): iam.Grant;
}
