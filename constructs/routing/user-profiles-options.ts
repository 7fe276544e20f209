import { Duration, Token } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { UserProfilesRuntimeConfig } from '../contract/runtime-config';
import type { IReadReplicaDatabase } from '../data/database-interface';
import { AwsServiceEndpoint, requireAwsServices } from '../internal/service-endpoints';

/**
 * User profiles of a `TieredRouter`, kept in an Aurora PostgreSQL database with read replicas:
 * `GET /v1/profile` and the profile read of each chat go to the reader endpoint, `PUT /v1/profile`
 * to the writer endpoint. A chat that used a profile is personal: its answer is cached for its
 * user only.
 */
export interface UserProfilesOptions {
  /**
   * The database (a `ReadReplicaDatabase`, or in another Region its `GlobalSecondaryDatabase`).
   * The router function connects to it from the router's VPC.
   */
  readonly database: IReadReplicaDatabase;
  /**
   * The table of the profiles, created on the first write; primary key `(tenant, user_id)`.
   * A lower-case identifier, optionally schema-qualified (`schema.table`).
   * @default 'user_profiles'
   */
  readonly tableName?: string;
  /**
   * How long a profile read or write may take (connecting included) before the router gives up
   * on it: a chat then answers without the profile, a profile route answers 503.
   * Between 50 ms and 5 s.
   * @default Duration.millis(500)
   */
  readonly timeout?: Duration;
}

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;

/**
 * Connects `fn` to the profile database (IAM `rds-db:connect` or read access to the secret, and
 * the database's security group admitting it) and answers its runtime configuration.
 * @internal
 */
export function bindUserProfiles(options: UserProfilesOptions, fn: lambda.Function): UserProfilesRuntimeConfig {
  const table = options.tableName ?? 'user_profiles';
  if (!TABLE_NAME.test(table)) {
    throw new Error(`TieredRouter: userProfiles.tableName must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters), optionally schema-qualified; got "${table}"`);
  }
  const timeout = options.timeout ?? Duration.millis(500);
  if (Token.isUnresolved(timeout.toMilliseconds()) || timeout.toMilliseconds() < 50 || timeout.toMilliseconds() > 5_000) {
    throw new Error(`TieredRouter: userProfiles.timeout must be between 50 ms and 5 seconds; got ${timeout.toHumanString()}`);
  }
  const db = options.database;
  db.grantConnect(fn);
  db.connections.allowDefaultPortFrom(fn, 'TieredRouter: user profiles');
  // The secret's password is read from Secrets Manager; IAM auth tokens are signed locally.
  if (!db.iamAuthentication) requireAwsServices(fn, AwsServiceEndpoint.SECRETS_MANAGER);
  // The router verifies the server certificate. A proxy presents a publicly trusted one; a
  // cluster endpoint presents one of the Amazon RDS CAs, which Lambda (Node.js 20+) loads only when asked.
  if (!db.proxy) fn.addEnvironment('NODE_EXTRA_CA_CERTS', '/var/runtime/ca-cert.pem');
  return {
    writer: { host: db.writerEndpoint.hostname, port: db.writerEndpoint.port },
    reader: { host: db.readerEndpoint.hostname, port: db.readerEndpoint.port },
    database: db.databaseName,
    username: db.username,
    auth: db.iamAuthentication ? 'iam' : 'secret',
    secretArn: db.iamAuthentication ? undefined : db.secret.secretArn,
    table,
    timeoutMs: timeout.toMilliseconds(),
    ...(db.writeForwarding ? { writeForwarding: true } : {}),
  };
}
