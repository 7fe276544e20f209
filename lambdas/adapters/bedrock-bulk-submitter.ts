/**
 * Bulk mode of the batch pipeline: submits a job's requests to Amazon Bedrock batch inference.
 *
 * 1. Every request (a chat request body, as `POST /v1/chat` takes it) is validated again with
 *    `parseChatRequest` and turned into one JSONL record
 *    `{ "recordId": "R0000000042", "modelInput": <Converse request body> }` where `modelInput` is
 *    `{ messages, system?, inferenceConfig: { maxTokens, temperature? } }` (the job is created
 *    with `modelInvocationType: 'Converse'`, so the body is the Converse API's, whatever the model).
 *    The record id is `R` + the item index on 10 digits (`recordIdOf` in core/jobs/bulk-layout).
 * 2. The records go to one object `s3://<bucket>/<inputPrefix><tenantHash>/<jobId>/input.jsonl`
 *    (PutObject; encrypted with the bucket's default encryption).
 * 3. `CreateModelInvocationJob` runs the bulk tier's model over it, writing to
 *    `s3://<bucket>/<outputPrefix><tenantHash>/<jobId>/`, with `clientRequestToken` derived from
 *    the job id: a retried submission of the same job creates no second Bedrock job.
 *
 * Bedrock publishes "Batch Inference Job State Change" events to EventBridge; the bulk completion
 * handler (`lambdas/bulk-completion`) loads the results.
 *
 * Sources: CreateModelInvocationJob API reference (jobName, clientRequestToken, timeout range),
 * "Format and upload your batch inference data" (JSONL records, Converse invocation type),
 * "View the results of a batch inference job" (output format) in the Amazon Bedrock user guide.
 */
import { BedrockClient, CreateModelInvocationJobCommand } from '@aws-sdk/client-bedrock';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig } from './s3-client';
import { BULK_JOB_NAME_PREFIX, type BulkRuntimeConfig, type RouterRuntimeConfig, type TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { parseChatRequest, type ChatRequest, type RequestLimits } from '../core/chat-request';
import { HttpError } from '../core/errors';
import { sha256Hex } from '../core/hashing';
import { bulkInputKey, bulkOutputPrefix, bulkTier, recordIdOf } from '../core/jobs/bulk-layout';
import type { BulkSubmitter } from '../core/jobs/job-model';

/** Bedrock's bounds of `timeoutDurationInHours` (CreateModelInvocationJob API reference). */
export const BULK_TIMEOUT_HOURS = { min: 24, max: 168 } as const;
/** Seconds a client is asked to wait when Bedrock or S3 is throttling or unavailable. */
const RETRY_AFTER_SECONDS = 60;

/** `CreateModelInvocationJob` `jobName`: 1-63 characters of this pattern. */
const JOB_NAME_PATTERN = /^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9+\-.]){0,63}$/;
/** `CreateModelInvocationJob` `clientRequestToken`: 1-256 characters of this pattern. */
const CLIENT_TOKEN_PATTERN = /^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$/;

/** One line of the input JSONL. */
export interface BulkInputRecord {
  readonly recordId: string;
  readonly modelInput: ConverseModelInput;
}

/** The Converse request body of one record (without `modelId`: the job names the model). */
export interface ConverseModelInput {
  readonly messages: Array<{ role: 'user' | 'assistant'; content: Array<{ text: string }> }>;
  readonly system?: Array<{ text: string }>;
  readonly inferenceConfig: { maxTokens: number; temperature?: number };
}

/** The Converse body of one validated chat request for `tier` (maxTokens capped to the tier's limit). */
export function converseModelInput(request: ChatRequest, tier: TierRuntimeConfig): ConverseModelInput {
  const maxTokens = Math.min(request.maxTokens ?? tier.maxTokens, tier.maxTokens);
  return {
    messages: request.messages.map((m) => ({ role: m.role, content: [{ text: m.text }] })),
    ...(request.system ? { system: [{ text: request.system }] } : {}),
    inferenceConfig: { maxTokens, ...(request.temperature !== undefined ? { temperature: request.temperature } : {}) },
  };
}


/**
 * The Bedrock job name of a bulk job: `sai-bulk-<job id, alphanumerics only, ≤ 24>-<hash>`,
 * deterministic (a retry gets the same name), unique per tenant and job, always within the API's
 * pattern and 63 characters.
 */
export function bulkJobName(tenantId: string, jobId: string): string {
  const readable = jobId.replace(/[^a-zA-Z0-9]/g, '').slice(0, 24);
  const name = `${BULK_JOB_NAME_PREFIX}${readable}${readable ? '-' : ''}${sha256Hex(`${tenantId}\n${jobId}`).slice(0, 12)}`;
  if (!JOB_NAME_PATTERN.test(name) || name.length > 63) throw new Error(`internal: invalid bulk job name ${name}`);
  return name;
}

/**
 * The idempotency token of a bulk job's CreateModelInvocationJob: the job id itself when the API
 * accepts it (letters, digits and single-or-more hyphens between them, such as a UUID), else a
 * hash of it. The same job id always gives the same token.
 */
export function bulkClientRequestToken(jobId: string): string {
  return jobId.length <= 256 && CLIENT_TOKEN_PATTERN.test(jobId) ? jobId : sha256Hex(jobId);
}

/** True for the errors worth retrying later (throttling, quotas, 5xx, network). */
function isTransient(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  if (/Throttl|TooManyRequests|ServiceQuotaExceeded|SlowDown|ServiceUnavailable|InternalServer|InternalError|RequestTimeout|TimeoutError/i.test(e?.name ?? '')) return true;
  if (status === 429 || (status !== undefined && status >= 500)) return true;
  // The request never got an answer (connection refused or reset, DNS).
  return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)$/.test(e?.code ?? e?.name ?? '');
}

export interface BulkSubmitterClients {
  readonly s3?: S3Client;
  readonly bedrock?: BedrockClient;
}

/** {@link BulkSubmitter} on Amazon S3 and Bedrock batch inference (`CreateModelInvocationJob`). */
export class BedrockBulkSubmitter implements BulkSubmitter {
  private readonly tier: TierRuntimeConfig;
  private readonly limits: RequestLimits;
  private readonly s3: S3Client;
  private readonly bedrock: BedrockClient;

  /**
   * @throws Error when the bulk tier is not a Bedrock tier of the router, or the configuration is
   *         out of Bedrock's bounds (a deployment error, not a client's).
   */
  constructor(
    private readonly config: BulkRuntimeConfig,
    routerConfig: RouterRuntimeConfig,
    clients: BulkSubmitterClients = {},
  ) {
    this.tier = bulkTier(config, routerConfig);
    if (!Number.isInteger(config.timeoutHours) || config.timeoutHours < BULK_TIMEOUT_HOURS.min || config.timeoutHours > BULK_TIMEOUT_HOURS.max) {
      throw new Error(`Bulk mode: timeoutHours must be an integer from ${BULK_TIMEOUT_HOURS.min} to ${BULK_TIMEOUT_HOURS.max}; got ${config.timeoutHours}`);
    }
    if (!(config.minItems >= 1 && config.maxItems >= config.minItems)) {
      throw new Error(`Bulk mode: need 1 <= minItems <= maxItems; got minItems ${config.minItems}, maxItems ${config.maxItems}`);
    }
    this.limits = {
      maxRequestBytes: routerConfig.maxRequestBytes,
      maxMessages: routerConfig.maxMessages,
      tierIds: routerConfig.tiers.map((t) => t.id),
    };
    this.s3 = clients.s3 ?? new S3Client(s3ClientConfig());
    this.bedrock = clients.bedrock ?? new BedrockClient({ maxAttempts: 3 });
  }

  /**
   * Validates the requests, writes the JSONL input and creates the Bedrock batch inference job.
   *
   * @throws HttpError 400 when the number of requests is outside [minItems, maxItems] or a request
   *         is invalid (the message names it), 413 when one is too large, 503 (with Retry-After)
   *         when S3 or Bedrock throttles or is unavailable; other errors (access denied, a model
   *         without batch support) are thrown as they come: they are deployment errors.
   */
  async submit(job: { tenantId: string; jobId: string; requests: unknown[] }): Promise<{ bulkJobArn: string }> {
    const { tenantId, jobId, requests } = job;
    const { minItems, maxItems } = this.config;
    if (!Array.isArray(requests) || requests.length < minItems || requests.length > maxItems) {
      const n = Array.isArray(requests) ? requests.length : 0;
      throw new HttpError(
        400,
        `A bulk job needs from ${minItems} to ${maxItems} requests (Bedrock batch inference runs jobs of at least ${minItems} records); got ${n}.` +
          (n < minItems ? ' Submit fewer requests without bulk mode, or gather more before submitting.' : ' Split the requests into several jobs.'),
        'invalid',
      );
    }
    const lines = requests.map((request, index) => JSON.stringify(this.record(request, index)));
    const body = `${lines.join('\n')}\n`;

    const inputKey = bulkInputKey(this.config, tenantId, jobId);
    const bucket = this.config.bucketName;
    try {
      await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: inputKey, Body: body, ContentType: 'application/jsonl' }));
    } catch (err) {
      throw this.mapError(err, 'S3 PutObject of the bulk input');
    }

    try {
      const out = await this.bedrock.send(
        new CreateModelInvocationJobCommand({
          jobName: bulkJobName(tenantId, jobId),
          clientRequestToken: bulkClientRequestToken(jobId),
          roleArn: this.config.roleArn,
          modelId: this.tier.modelId!,
          modelInvocationType: 'Converse',
          inputDataConfig: { s3InputDataConfig: { s3Uri: `s3://${bucket}/${inputKey}`, s3InputFormat: 'JSONL' } },
          outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${bucket}/${bulkOutputPrefix(this.config, tenantId, jobId)}` } },
          timeoutDurationInHours: this.config.timeoutHours,
        }),
      );
      if (!out.jobArn) throw new Error('CreateModelInvocationJob answered without a jobArn');
      return { bulkJobArn: out.jobArn };
    } catch (err) {
      throw this.mapError(err, 'Bedrock CreateModelInvocationJob');
    }
  }

  private record(request: unknown, index: number): BulkInputRecord {
    let parsed: ChatRequest;
    try {
      parsed = parseChatRequest(typeof request === 'string' ? request : JSON.stringify(request), this.limits);
    } catch (err) {
      if (err instanceof HttpError) {
        throw new HttpError(err.statusCode, `requests.${index}: ${err.message}`, err.reason, err.headers);
      }
      throw err;
    }
    if (parsed.session !== undefined) {
      // A session merges the user's recent turns and preferences at answer time: bulk records are
      // answered by Bedrock alone, so the request would silently lose its context.
      throw new HttpError(400, `requests.${index}: session is not supported in bulk mode; send the conversation in messages`, 'invalid');
    }
    return { recordId: recordIdOf(index), modelInput: converseModelInput(parsed, this.tier) };
  }

  private mapError(err: unknown, what: string): Error {
    if (err instanceof HttpError) return err;
    if (isTransient(err)) {
      const e = err as { name?: string; message?: string };
      return new HttpError(
        503,
        `${what} failed (${e?.name ?? 'Error'}: ${e?.message ?? String(err)}); retry after ${RETRY_AFTER_SECONDS} seconds`,
        'unavailable',
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      );
    }
    return err instanceof Error ? err : new Error(`${what} failed: ${String(err)}`);
  }
}
