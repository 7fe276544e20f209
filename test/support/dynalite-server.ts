/**
 * DynamoDB for tests: `dynalite` (an in-process implementation of the DynamoDB API on an
 * in-memory LevelDB) on a free port of 127.0.0.1, reached with the real AWS SDK v3 client.
 * Dynalite has no `UpdateTimeToLive`: TTL attributes are stored, never acted on (DynamoDB's own
 * TTL deletion is lazy too, so code must filter expired items anyway).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

type DynaliteFactory = (options: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;
// dynalite ships no type declarations.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as DynaliteFactory;

export class DynaliteServer {
  /** The key schema this library's user-context table uses: `pk` (S) + `sk` (S), on demand. */
  static userContextTable(tableName: string): CreateTableCommandInput {
    return {
      TableName: tableName,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    };
  }

  /** Starts dynalite and creates the tables (ACTIVE at once: create times are 0). */
  static async start(tables: CreateTableCommandInput[] = []): Promise<DynaliteServer> {
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const instance = new DynaliteServer(server);
    const admin = instance.client();
    try {
      for (const table of tables) await admin.send(new CreateTableCommand(table));
    } catch (err) {
      await instance.stop();
      throw err;
    } finally {
      admin.destroy();
    }
    return instance;
  }

  private readonly clients = new Set<DynamoDBClient>();

  private constructor(private readonly server: Server) {}

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A DynamoDB client for this server (dummy credentials); {@link stop} destroys it. */
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

  async stop(): Promise<void> {
    for (const client of this.clients) client.destroy();
    this.clients.clear();
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
