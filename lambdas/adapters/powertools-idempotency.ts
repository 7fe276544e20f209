import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  IdempotencyPersistenceLayerError,
  IdempotencyValidationError,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { HttpError } from '../core/errors';
import type { IdempotencyGuard, IdempotencyScope, SubmittedJob } from '../core/jobs/jobs-endpoint';

export interface PowertoolsIdempotencyOptions {
  /** DynamoDB table of idempotency records: partition key `id` (S), TTL attribute `expiration`. */
  readonly tableName: string;
  /** Seconds a key is remembered. */
  readonly ttlSeconds: number;
  readonly client?: DynamoDBClient;
  /**
   * Prefix of the record ids. Fixed, so that keys survive a rename of the function (Powertools'
   * default is the function name). @default 'jobs-submit'
   */
  readonly keyPrefix?: string;
}

/** What is hashed: `scope` into the record id, `payload` into its validation hash. */
interface IdempotentInput {
  readonly scope: IdempotencyScope;
  readonly payload: unknown;
}

type StoredJob = SubmittedJob & { replayed?: true };

/**
 * Idempotency-Key support on Powertools for AWS Lambda (`makeIdempotent` with the
 * `DynamoDBPersistenceLayer`).
 *
 * - The record id is a SHA-256 of `{ tenantId, userId, key }` (`userId` is the owner of a
 *   personal job, `''` otherwise): two tenants that send the same key get two records, hence two
 *   jobs; so do two users of one tenant with a personal payload (a user never gets, by replaying
 *   a key, the job of another user, whose answers may come from that user's context).
 * - The record keeps the hash of the parsed body (payload validation): the same key with another
 *   body is refused with 422 `idempotency-key-reused` rather than answered with a job the caller
 *   did not describe.
 * - While the first request runs, the key is `INPROGRESS`: a concurrent retry gets 409
 *   `idempotency-key-in-progress` (with retry-after). The in-progress record expires with the
 *   invocation's remaining time (from the Lambda context), so a crashed submission frees its key.
 * - A submission that throws (the job could not be stored or queued) deletes its record: the
 *   retry submits afresh.
 * - The record store unreachable: 503.
 */
export class PowertoolsIdempotency implements IdempotencyGuard {
  private readonly config: IdempotencyConfig;
  private readonly run: (input: IdempotentInput, submit: () => Promise<StoredJob>) => Promise<StoredJob>;

  constructor(options: PowertoolsIdempotencyOptions) {
    this.config = new IdempotencyConfig({
      eventKeyJmesPath: 'scope',
      payloadValidationJmesPath: 'payload',
      throwOnNoIdempotencyKey: true,
      expiresAfterSeconds: options.ttlSeconds,
      hashFunction: 'sha256',
      responseHook: (response) => ({ ...(response as Record<string, never>), replayed: true }),
    });
    const persistenceStore = new DynamoDBPersistenceLayer({ tableName: options.tableName, awsSdkV3Client: options.client });
    this.run = makeIdempotent((_input: IdempotentInput, submit: () => Promise<StoredJob>) => submit(), {
      persistenceStore,
      config: this.config,
      keyPrefix: options.keyPrefix ?? 'jobs-submit',
      dataIndexArgument: 0,
    });
  }

  /** Lets in-progress records expire with this invocation (call at the start of each invocation). */
  registerLambdaContext(context: Context): void {
    this.config.registerLambdaContext(context);
  }

  async once(
    scope: IdempotencyScope,
    payload: unknown,
    submit: () => Promise<SubmittedJob>,
  ): Promise<{ job: SubmittedJob; replayed: boolean }> {
    try {
      const stored = await this.run({ scope: { tenantId: scope.tenantId, userId: scope.userId, key: scope.key }, payload }, async () => {
        const job = await submit();
        return { jobId: job.jobId, mode: job.mode, items: job.items, createdAt: job.createdAt };
      });
      const { replayed, ...job } = stored;
      return { job, replayed: replayed === true };
    } catch (err) {
      if (err instanceof IdempotencyValidationError) {
        throw new HttpError(
          422,
          'This Idempotency-Key was used with a different request body; use a new key for a new job',
          'idempotency-key-reused',
        );
      }
      if (err instanceof IdempotencyAlreadyInProgressError) {
        throw new HttpError(409, 'A request with this Idempotency-Key is still being processed; retry shortly', 'idempotency-key-in-progress', {
          'retry-after': '1',
        });
      }
      if (err instanceof IdempotencyPersistenceLayerError) {
        throw new HttpError(503, 'The Idempotency-Key could not be checked; retry shortly', 'unavailable', { 'retry-after': '2' });
      }
      throw err;
    }
  }
}
