/**
 * DynamoDB for tests that need `TransactWriteItems`: dynalite (see dynalite-server.ts) behind a
 * small HTTP proxy that adds the operation, and can inject failures.
 *
 * dynalite implements the single-item operations but not the transactional ones. The proxy
 * forwards every request to dynalite unchanged, one at a time (requests are serialized), and runs
 * a `TransactWriteItems` itself, under that same serialization, as:
 * 1. validation as DynamoDB does it: 1-100 actions, each exactly one of Put, Update, Delete,
 *    ConditionCheck, no two on the same item;
 * 2. a consistent GetItem of every target item (its snapshot);
 * 3. each action as the single-item call dynalite implements (PutItem, UpdateItem, DeleteItem
 *    with the action's ConditionExpression; a ConditionCheck as a conditional PutItem of the
 *    snapshot, undone afterwards), so conditions and update expressions are evaluated by
 *    dynalite's own implementation;
 * 4. if any condition failed: every applied action is undone from the snapshots, and the answer is
 *    a `TransactionCanceledException` whose `CancellationReasons` hold, in action order,
 *    `ConditionalCheckFailed` or `None`, as DynamoDB answers; any other error (a missing table,
 *    an invalid expression) is undone the same way and answered as dynalite answered it.
 * Because no other request runs meanwhile, the transaction is atomic and isolated as seen by
 * every client of the proxy. Not emulated: `ClientRequestToken` (idempotent retries), and
 * `ReturnValuesOnConditionCheckFailure` (no item is returned with the reasons).
 *
 * Failures can be injected per request ({@link TransactionalDynalite.failWhen}), e.g. to make the
 * writes of one job fail with a server error.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynaliteServer } from './dynalite-server';

const TARGET_PREFIX = 'DynamoDB_20120810.';
const ERROR_NAMESPACE = 'com.amazonaws.dynamodb.v20120810#';

/** An error to answer instead of forwarding. */
export interface InjectedDynamoError {
  readonly status: number;
  /** Error shape name, e.g. `InternalServerError`, `ProvisionedThroughputExceededException`. */
  readonly type: string;
  readonly message?: string;
}

export const DynamoErrors = {
  /** A server error (the SDK retries it, then gives up). */
  internal: (): InjectedDynamoError => ({ status: 500, type: 'InternalServerError', message: 'Internal server error' }),
};

type AttributeMap = Record<string, unknown>;

interface Forwarded {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

interface Action {
  readonly kind: 'Put' | 'Update' | 'Delete' | 'ConditionCheck';
  readonly input: Record<string, unknown> & { TableName?: string };
  table: string;
  key: AttributeMap;
}

/** A recorded request: its operation (without the `DynamoDB_20120810.` prefix) and parsed body. */
export interface DynamoCall {
  readonly operation: string;
  readonly body: Record<string, unknown>;
  /** `ok`, or the error type answered. */
  outcome: string;
}

export class TransactionalDynalite {
  /** Starts dynalite with the tables, and the proxy in front of it. */
  static async start(tables: CreateTableCommandInput[] = []): Promise<TransactionalDynalite> {
    const dynalite = await DynaliteServer.start(tables);
    const proxy = new TransactionalDynalite(dynalite);
    try {
      await new Promise<void>((resolve, reject) => {
        proxy.server.once('error', reject);
        proxy.server.listen(0, '127.0.0.1', () => resolve());
      });
    } catch (err) {
      await dynalite.stop();
      throw err;
    }
    return proxy;
  }

  /** Every request through the proxy, in order. */
  readonly calls: DynamoCall[] = [];

  private readonly server: http.Server;
  private readonly clients = new Set<DynamoDBClient>();
  private readonly keySchemas = new Map<string, string[]>();
  private readonly injectors = new Set<(operation: string, body: Record<string, unknown>) => InjectedDynamoError | undefined>();
  private readonly hooks = new Set<(operation: string, body: Record<string, unknown>) => Promise<void>>();
  private queue: Promise<void> = Promise.resolve();

  private constructor(private readonly dynalite: DynaliteServer) {
    this.server = http.createServer((req, res) => {
      this.serve(req, res).catch((err: unknown) => {
        if (!res.writableEnded) this.sendError(res, { status: 500, type: 'InternalServerError', message: `local proxy error: ${String(err)}` });
      });
    });
  }

  /** The proxy's URL: point clients here (not at dynalite). */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Environment that points SDK clients at the proxy. */
  env(): Record<string, string> {
    return { AWS_ENDPOINT_URL_DYNAMODB: this.endpoint };
  }

  /** A DynamoDB client for the proxy (dummy credentials, no retries); {@link stop} destroys it. */
  client(): DynamoDBClient {
    const client = new DynamoDBClient({
      endpoint: this.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' },
      maxAttempts: 1,
    });
    this.clients.add(client);
    return client;
  }

  /**
   * Answers the requests for which `decide` returns an error with that error (before anything is
   * forwarded or applied). Returns a function that removes the injector.
   */
  failWhen(decide: (operation: string, body: Record<string, unknown>) => InjectedDynamoError | undefined): () => void {
    this.injectors.add(decide);
    return () => this.injectors.delete(decide);
  }

  /**
   * Runs `hook` when a request arrives, before it waits for its turn: requests the hook sends
   * through the proxy are served first. Lets a test put a concurrent write exactly between two
   * requests of the code under test. Returns a function that removes the hook.
   */
  beforeRequest(hook: (operation: string, body: Record<string, unknown>) => Promise<void>): () => void {
    this.hooks.add(hook);
    return () => this.hooks.delete(hook);
  }

  /** Calls of one operation (e.g. `TransactWriteItems`). */
  callsOf(operation: string): DynamoCall[] {
    return this.calls.filter((c) => c.operation === operation);
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.destroy();
    this.clients.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.dynalite.stop();
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target;
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(raw || '{}') as Record<string, unknown>;
    } catch {
      // dynalite answers the malformed body itself
    }
    for (const hook of [...this.hooks]) await hook(operation, body);
    const call: DynamoCall = { operation, body, outcome: 'ok' };
    this.calls.push(call);
    // One request at a time: a transaction below is never interleaved with another request.
    const run = this.queue.then(async () => {
      for (const decide of this.injectors) {
        const error = decide(operation, body);
        if (error) {
          call.outcome = error.type;
          return this.sendError(res, error);
        }
      }
      const answer = operation === 'TransactWriteItems'
        ? await this.transactWriteItems(req.headers, body)
        : await this.forward(req.headers, target, raw);
      if (answer.status !== 200) call.outcome = errorType(answer.body) ?? String(answer.status);
      res.writeHead(answer.status, { 'content-type': String(answer.headers['content-type'] ?? 'application/x-amz-json-1.0'), 'x-amzn-requestid': String(answer.headers['x-amzn-requestid'] ?? 'local') });
      res.end(answer.body);
    });
    this.queue = run.catch(() => undefined);
    await run;
  }

  private forward(headers: http.IncomingHttpHeaders, target: string, body: string): Promise<Forwarded> {
    const url = new URL(this.dynalite.endpoint);
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/',
          headers: {
            ...headers,
            'host': url.host,
            'x-amz-target': target,
            'content-type': 'application/x-amz-json-1.0',
            'content-length': String(Buffer.byteLength(body, 'utf8')),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (c: Buffer) => chunks.push(c));
          response.on('end', () => resolve({ status: response.statusCode ?? 500, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  private async call(headers: http.IncomingHttpHeaders, operation: string, input: unknown): Promise<Forwarded> {
    return this.forward(headers, `${TARGET_PREFIX}${operation}`, JSON.stringify(input));
  }

  private async keySchema(headers: http.IncomingHttpHeaders, table: string): Promise<string[] | Forwarded> {
    const known = this.keySchemas.get(table);
    if (known) return known;
    const out = await this.call(headers, 'DescribeTable', { TableName: table });
    if (out.status !== 200) return out;
    const schema = (JSON.parse(out.body) as { Table: { KeySchema: Array<{ AttributeName: string }> } }).Table.KeySchema.map((k) => k.AttributeName);
    this.keySchemas.set(table, schema);
    return schema;
  }

  private async transactWriteItems(headers: http.IncomingHttpHeaders, body: Record<string, unknown>): Promise<Forwarded> {
    const items = body.TransactItems;
    if (!Array.isArray(items) || items.length < 1 || items.length > 100) {
      return validation('1 validation error detected: Value at \'transactItems\' failed to satisfy constraint: Member must have length between 1 and 100');
    }
    const actions: Action[] = [];
    for (const raw of items as Array<Record<string, Record<string, unknown>>>) {
      const kinds = (['Put', 'Update', 'Delete', 'ConditionCheck'] as const).filter((k) => raw?.[k] !== undefined);
      if (kinds.length !== 1) return validation('TransactItems can only contain one of Check, Put, Update or Delete');
      const input = raw[kinds[0]] as Action['input'];
      if (typeof input.TableName !== 'string') return validation('1 validation error detected: TableName must not be null');
      actions.push({ kind: kinds[0], input, table: input.TableName, key: {} });
    }
    const seen = new Set<string>();
    for (const action of actions) {
      const schema = await this.keySchema(headers, action.table);
      if (!Array.isArray(schema)) return schema;
      const source = (action.kind === 'Put' ? action.input.Item : action.input.Key) as AttributeMap | undefined;
      if (!source) return validation(`${action.kind} needs ${action.kind === 'Put' ? 'Item' : 'Key'}`);
      action.key = Object.fromEntries(schema.map((name) => [name, source[name]]));
      const id = `${action.table}\u0000${JSON.stringify(action.key)}`;
      if (seen.has(id)) return validation('Transaction request cannot include multiple operations on one item');
      seen.add(id);
    }
    const snapshots: Array<AttributeMap | undefined> = [];
    for (const action of actions) {
      const out = await this.call(headers, 'GetItem', { TableName: action.table, Key: action.key, ConsistentRead: true });
      if (out.status !== 200) return out;
      snapshots.push((JSON.parse(out.body) as { Item?: AttributeMap }).Item);
    }

    const applied: number[] = [];
    const reasons: Array<{ Code: string; Message?: string }> = [];
    const undo = async (indexes: number[]): Promise<void> => {
      for (const i of indexes) {
        const { table, key } = actions[i];
        const snapshot = snapshots[i];
        const out = snapshot
          ? await this.call(headers, 'PutItem', { TableName: table, Item: snapshot })
          : await this.call(headers, 'DeleteItem', { TableName: table, Key: key });
        if (out.status !== 200) throw new Error(`local transaction: undoing action ${i} failed: ${out.body}`);
      }
    };
    for (const [i, action] of actions.entries()) {
      const { kind, input } = action;
      const expression = {
        ConditionExpression: input.ConditionExpression,
        ExpressionAttributeNames: input.ExpressionAttributeNames,
        ExpressionAttributeValues: input.ExpressionAttributeValues,
      };
      const out = kind === 'Put'
        ? await this.call(headers, 'PutItem', { TableName: action.table, Item: input.Item, ...expression })
        : kind === 'Update'
          ? await this.call(headers, 'UpdateItem', { TableName: action.table, Key: action.key, UpdateExpression: input.UpdateExpression, ...expression })
          : kind === 'Delete'
            ? await this.call(headers, 'DeleteItem', { TableName: action.table, Key: action.key, ...expression })
            : await this.call(headers, 'PutItem', { TableName: action.table, Item: snapshots[i] ?? action.key, ...expression });
      if (out.status === 200) {
        applied.push(i);
        reasons.push({ Code: 'None' });
      } else if (errorType(out.body) === 'ConditionalCheckFailedException') {
        reasons.push({ Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' });
      } else {
        await undo(applied.reverse());
        return out;
      }
    }
    if (reasons.some((r) => r.Code !== 'None')) {
      await undo(applied.reverse());
      return {
        status: 400,
        headers: { 'content-type': 'application/x-amz-json-1.0' },
        body: JSON.stringify({
          __type: `${ERROR_NAMESPACE}TransactionCanceledException`,
          Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
          CancellationReasons: reasons,
        }),
      };
    }
    // A ConditionCheck writes nothing: put its item back as it was.
    await undo(actions.flatMap((a, i) => (a.kind === 'ConditionCheck' ? [i] : [])));
    return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: '{}' };
  }

  private sendError(res: http.ServerResponse, error: InjectedDynamoError): void {
    if (res.writableEnded) return;
    res.writeHead(error.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'local-injected' });
    res.end(JSON.stringify({ __type: `${ERROR_NAMESPACE}${error.type}`, message: error.message ?? error.type }));
  }
}

function validation(message: string): Forwarded {
  return {
    status: 400,
    headers: { 'content-type': 'application/x-amz-json-1.0' },
    body: JSON.stringify({ __type: `${ERROR_NAMESPACE}ValidationException`, message }),
  };
}

/** The error shape name of an error body (`ConditionalCheckFailedException`, ...). */
function errorType(body: string): string | undefined {
  try {
    const type = (JSON.parse(body) as { __type?: string }).__type;
    return type?.split('#').pop();
  } catch {
    return undefined;
  }
}
