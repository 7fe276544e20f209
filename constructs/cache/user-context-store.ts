import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct, type IConstruct } from 'constructs';

/** Where user context (recent turns, preferences) is kept. */
export enum UserContextBackend {
  /** In the router's `ResponseCache` (ElastiCache for Valkey): nothing more to run. */
  VALKEY = 'valkey',
  /** In a DynamoDB table of its own: durable, survives a cache failover or flush. */
  DYNAMODB = 'dynamodb',
}

/** Options of a {@link UserContextStore}. */
export interface UserContextStoreOptions {
  /**
   * Where user context is kept. `VALKEY` needs the router to have a `ResponseCache`.
   * @default UserContextBackend.VALKEY
   */
  readonly backend?: UserContextBackend;
  /**
   * Most recent turns kept per session (1 to 100).
   * @default 10
   */
  readonly maxTurns?: number;
  /**
   * How long a session's turns and a user's preferences live after their last update (at least
   * 1 minute, at most 365 days).
   * @default Duration.days(7)
   */
  readonly ttl?: Duration;
  /**
   * KMS key of the DynamoDB table (`DYNAMODB` backend only).
   * @default - the AWS managed key of DynamoDB (`aws/dynamodb`)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to the DynamoDB table when it leaves the stack (`DYNAMODB` backend only).
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** Properties of a {@link UserContextStore}. */
export interface UserContextStoreProps extends UserContextStoreOptions {}

/** Options of a user context store on an existing table ({@link UserContextStore.fromTable}). */
export interface UserContextTableOptions {
  /**
   * Most recent turns kept per session (1 to 100).
   * @default 10
   */
  readonly maxTurns?: number;
  /**
   * How long a session's turns and a user's preferences live after their last update (at least
   * 1 minute, at most 365 days).
   * @default Duration.days(7)
   */
  readonly ttl?: Duration;
}

/**
 * Where the router keeps user context. Implemented by {@link UserContextStore} and by the stores
 * that {@link UserContextStore.fromTable} makes of an existing table. The router reads
 * `backend`, `maxTurns`, `ttl` and `tableName` into its configuration and calls
 * `grantReadWrite()` for each function that runs the routing core.
 */
export interface IUserContextStore extends IConstruct {
  /** Where user context is kept. */
  readonly backend: UserContextBackend;
  /** Most recent turns kept per session. */
  readonly maxTurns: number;
  /** Lifetime of a session's turns and a user's preferences after their last update. */
  readonly ttl: Duration;
  /**
   * Name of the DynamoDB table (`DYNAMODB` backend only).
   * @attribute
   */
  readonly tableName?: string;
  /** Lets `grantee` read and write user context. */
  grantReadWrite(grantee: iam.IGrantable): iam.Grant;
}

const DEFAULT_MAX_TURNS = 10;
const DEFAULT_TTL = Duration.days(7);

/** DynamoDB actions the router needs on the table, named one by one. */
const TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:BatchWriteItem',
];

/** KMS actions on the table's key, named one by one. */
const KEY_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'];

/**
 * User context: the recent turns of each user's conversation sessions and each user's
 * preferences, kept per tenant and user with a TTL. The router merges them into the model
 * request of a request that names a `session`, never into a shared cache entry, and serves
 * `PUT /v1/context/preferences` and `DELETE /v1/context` (which deletes everything kept for
 * the calling user).
 *
 * With the `VALKEY` backend (default) the context lives in the router's `ResponseCache` and this
 * construct creates nothing. With `DYNAMODB` it creates a table: partition key `pk`, sort key
 * `sk` (strings), TTL attribute `expiresAt`, on-demand billing, point-in-time recovery, and
 * encryption with the AWS managed key or yours.
 *
 * Pass it to a router as `userContext`.
 */
export class UserContextStore extends Construct implements IUserContextStore {
  /**
   * User context in an existing DynamoDB table (the `DYNAMODB` backend), which must have the
   * schema the router uses: partition key `pk` and sort key `sk`, both strings, and TTL enabled
   * on the attribute `expiresAt`. Give the table's KMS key when it has a customer managed one
   * (`Table.fromTableAttributes({ encryptionKey })`) so that it is granted too.
   */
  public static fromTable(scope: Construct, id: string, table: dynamodb.ITable, options: UserContextTableOptions = {}): IUserContextStore {
    const maxTurns = options.maxTurns ?? DEFAULT_MAX_TURNS;
    const ttl = options.ttl ?? DEFAULT_TTL;
    validate({}, UserContextBackend.DYNAMODB, maxTurns, ttl);
    class Import extends Construct implements IUserContextStore {
      public readonly backend = UserContextBackend.DYNAMODB;
      public readonly maxTurns = maxTurns;
      public readonly ttl = ttl;
      public readonly tableName = table.tableName;
      public grantReadWrite(grantee: iam.IGrantable): iam.Grant {
        return grantTable(grantee, table);
      }
    }
    return new Import(scope, id);
  }

  /** Where user context is kept. */
  public readonly backend: UserContextBackend;
  /** Most recent turns kept per session. */
  public readonly maxTurns: number;
  /** Lifetime of a session's turns and a user's preferences after their last update. */
  public readonly ttl: Duration;
  /** The table (`DYNAMODB` backend only). */
  public readonly table?: dynamodb.Table;

  constructor(scope: Construct, id: string, props: UserContextStoreProps = {}) {
    super(scope, id);
    this.backend = props.backend ?? UserContextBackend.VALKEY;
    this.maxTurns = props.maxTurns ?? DEFAULT_MAX_TURNS;
    this.ttl = props.ttl ?? DEFAULT_TTL;
    validate(props, this.backend, this.maxTurns, this.ttl);

    if (this.backend === UserContextBackend.DYNAMODB) {
      this.table = new dynamodb.Table(this, 'Table', {
        partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
        sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
        timeToLiveAttribute: 'expiresAt',
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: props.encryptionKey ? dynamodb.TableEncryption.CUSTOMER_MANAGED : dynamodb.TableEncryption.AWS_MANAGED,
        encryptionKey: props.encryptionKey,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
      Validations.of(this.table).acknowledge({
        id: 'NIST.800.53.R5-DynamoDBInBackupPlan',
        reason: 'Point-in-time recovery is on (35 days of restores); user context expires after ttl. Add the table to your organization\'s AWS Backup plan if it requires one.',
      });
    }
  }

  /**
   * Lets `grantee` read and write user context: the item actions it needs on the table (and
   * the use of its KMS key). With the `VALKEY` backend nothing is granted here: access to the
   * cache comes with `ResponseCache.grantConnect()`.
   */
  public grantReadWrite(grantee: iam.IGrantable): iam.Grant {
    if (!this.table) return iam.Grant.drop(grantee, 'user context in the response cache (granted by ResponseCache.grantConnect)');
    return grantTable(grantee, this.table);
  }

  /**
   * Name of the table (`DYNAMODB` backend only).
   * @attribute
   */
  public get tableName(): string | undefined {
    return this.table?.tableName;
  }
}

/** The item actions on `table`, and the use of its customer managed key if it has one. */
function grantTable(grantee: iam.IGrantable, table: dynamodb.ITable): iam.Grant {
  const grant = iam.Grant.addToPrincipal({ grantee, actions: TABLE_ACTIONS, resourceArns: [table.tableArn] });
  table.encryptionKey?.grant(grantee, ...KEY_ACTIONS);
  return grant;
}

function validate(props: UserContextStoreOptions, backend: UserContextBackend, maxTurns: number, ttl: Duration): void {
  if (!Number.isInteger(maxTurns) || maxTurns < 1 || maxTurns > 100) {
    throw new Error(`UserContextStore: maxTurns must be an integer from 1 to 100; got ${maxTurns}`);
  }
  const ms = ttl.toMilliseconds();
  if (ms < 60_000 || ms > Duration.days(365).toMilliseconds()) {
    throw new Error(`UserContextStore: ttl must be between 1 minute and 365 days; got ${ttl.toHumanString()}`);
  }
  if (backend !== UserContextBackend.DYNAMODB) {
    for (const name of ['encryptionKey', 'removalPolicy'] as const) {
      if (props[name] !== undefined) {
        throw new Error(`UserContextStore: ${name} applies to the DYNAMODB backend only (the VALKEY backend lives in the ResponseCache)`);
      }
    }
  }
}
