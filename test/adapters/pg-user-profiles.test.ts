/**
 * PgUserProfiles against two real Postgres servers (PGlite over the wire protocol) standing in
 * for the reader and the writer endpoints: reads must go to the reader only, writes to the writer only.
 */
import * as net from 'net';
import type { Pool } from 'pg';
import { createUserProfilePools, PgUserProfiles } from '../../lambdas/adapters/pg-user-profiles';
import { CircuitBreaker } from '../../lambdas/core/circuit-breaker';
import { ProfileLookup, type ProfileReadOutcome } from '../../lambdas/core/user-profiles';
import { PgliteServer } from '../support/pglite-server';

const TABLE = 'user_profiles';
const CREATE = `CREATE TABLE IF NOT EXISTS ${TABLE} (tenant text NOT NULL, user_id text NOT NULL, profile jsonb NOT NULL, updated_at timestamptz NOT NULL, PRIMARY KEY (tenant, user_id))`;

let readerServer: PgliteServer;
let writerServer: PgliteServer;
let reader: Pool;
let writer: Pool;

beforeAll(async () => {
  [readerServer, writerServer] = await Promise.all([PgliteServer.start(), PgliteServer.start()]);
  reader = readerServer.pool();
  writer = writerServer.pool();
  await reader.query(CREATE);
  await reader.query(`INSERT INTO ${TABLE} VALUES ('t1', 'ada', $1::jsonb, now())`, [JSON.stringify({ displayName: 'Ada (reader)', attributes: {} })]);
});

afterAll(async () => {
  await Promise.all([readerServer?.stop(), writerServer?.stop()]);
});

async function rows(pool: Pool): Promise<Array<{ tenant: string; user_id: string; profile: unknown }>> {
  const exists = await pool.query(`SELECT to_regclass('${TABLE}') AS t`);
  if (!exists.rows[0].t) return [];
  return (await pool.query(`SELECT tenant, user_id, profile FROM ${TABLE} ORDER BY tenant, user_id`)).rows;
}

test('a read returns the reader\'s row and never touches the writer', async () => {
  const spy = jest.spyOn(writer, 'query');
  const profiles = new PgUserProfiles(reader, writer, TABLE);
  await expect(profiles.read('t1', 'ada')).resolves.toEqual({ displayName: 'Ada (reader)', attributes: {} });
  await expect(profiles.read('t1', 'bob')).resolves.toBeUndefined();
  await expect(profiles.read('t2', 'ada')).resolves.toBeUndefined();
  expect(spy).not.toHaveBeenCalled();
  spy.mockRestore();
});

test('a write creates the table on the writer and lands there only; a second write replaces the row', async () => {
  const spy = jest.spyOn(reader, 'query');
  const profiles = new PgUserProfiles(reader, writer, TABLE);
  await profiles.write('t1', 'bob', { locale: 'fr-FR', attributes: { size: 'L' } });
  await profiles.write('t1', 'bob', { locale: 'de-DE', attributes: {} });
  expect(spy).not.toHaveBeenCalled();
  spy.mockRestore();
  expect(await rows(writer)).toEqual([{ tenant: 't1', user_id: 'bob', profile: { locale: 'de-DE', attributes: {} } }]);
  expect(await rows(reader)).toEqual([{ tenant: 't1', user_id: 'ada', profile: { displayName: 'Ada (reader)', attributes: {} } }]);
  const pk = await writer.query(`SELECT indexdef FROM pg_indexes WHERE tablename = '${TABLE}'`);
  expect(pk.rows.map((r) => r.indexdef)).toEqual([expect.stringMatching(/UNIQUE INDEX .* \(tenant, user_id\)/)]);
});

test('a reader without the table yet means no profile', async () => {
  const empty = await PgliteServer.start();
  const pool = empty.pool();
  try {
    await expect(new PgUserProfiles(pool, writer, 'never_written').read('t1', 'ada')).resolves.toBeUndefined();
  } finally {
    await empty.stop();
  }
});

test('rejects a table name that is not a plain identifier', () => {
  expect(() => new PgUserProfiles(reader, writer, 'x; DROP TABLE y')).toThrow(/invalid table name/);
});

test('a database that accepts connections and never answers: the read gives up within its timeout and the breaker opens', async () => {
  const sockets: net.Socket[] = [];
  const hung = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
  const port = (hung.address() as net.AddressInfo).port;
  const endpoint = { host: '127.0.0.1', port };
  const pools = createUserProfilePools(
    { reader: endpoint, writer: endpoint, database: 'postgres', username: 'u', auth: 'secret', table: TABLE, timeoutMs: 100 },
    async () => 'pw',
    { ssl: false },
  );
  try {
    const lookup = new ProfileLookup(new PgUserProfiles(pools.reader, pools.writer, TABLE), 100, new CircuitBreaker('userProfiles', { failureThreshold: 2 }));
    const outcomes: ProfileReadOutcome[] = [];
    for (let i = 0; i < 3; i++) await expect(lookup.read({ tenantId: 't1', userId: 'ada' }, (o) => outcomes.push(o))).resolves.toBeUndefined();
    expect(outcomes).toEqual(['failed', 'failed', 'skipped']);
    expect(lookup.breakerState).toBe('open');
    expect(sockets.length).toBeGreaterThan(0);
  } finally {
    sockets.forEach((s) => s.destroy());
    await Promise.all([pools.reader.end(), pools.writer.end()]).catch(() => undefined);
    await new Promise<void>((resolve) => hung.close(() => resolve()));
  }
});

describe('writeForwarding (the writer is an Aurora global secondary: DML is forwarded, DDL is not)', () => {
  test('a write never runs CREATE TABLE; without the table it fails naming the primary Region, with it the row lands on the writer', async () => {
    const secondary = await PgliteServer.start();
    const pool = secondary.pool();
    try {
      const spy = jest.spyOn(pool, 'query');
      const profiles = new PgUserProfiles(reader, pool, 'forwarded_profiles', true);
      await expect(profiles.write('t1', 'cy', { locale: 'it-IT', attributes: {} })).rejects.toThrow(/does not exist yet: .*the first profile write in the primary Region creates it/);
      expect(spy.mock.calls.map(([sql]) => String(sql))).not.toEqual(expect.arrayContaining([expect.stringMatching(/CREATE TABLE/)]));
      // Once the primary's first write has created the table (and it has replicated), writes land.
      await pool.query(CREATE.replace(TABLE, 'forwarded_profiles'));
      await profiles.write('t1', 'cy', { locale: 'it-IT', attributes: {} });
      expect((await pool.query('SELECT tenant, user_id, profile FROM forwarded_profiles')).rows).toEqual([{ tenant: 't1', user_id: 'cy', profile: { locale: 'it-IT', attributes: {} } }]);
      spy.mockRestore();
    } finally {
      await secondary.stop();
    }
  });
});
