import { passwordProvider } from '../../lambdas/adapters/user-profile-store';

const base = { writer: { host: 'w.proxy.example', port: 5432 }, reader: { host: 'r.proxy.example', port: 5432 }, database: 'app', username: 'router', table: 'user_profiles', timeoutMs: 500 };
const saved = { ...process.env };

afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
});

test('iam: an RDS auth token signed for each endpoint\'s own host and the database user', async () => {
  Object.assign(process.env, { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIALOCALTEST', AWS_SECRET_ACCESS_KEY: 'local-secret' });
  const password = passwordProvider({ ...base, auth: 'iam' });
  const [writer, reader] = await Promise.all([password(base.writer), password(base.reader)]);
  expect(writer).toMatch(/^w\.proxy\.example:5432\/\?Action=connect&DBUser=router&/);
  expect(reader).toMatch(/^r\.proxy\.example:5432\/\?Action=connect&DBUser=router&/);
  expect(writer).toContain('X-Amz-Signature=');
  expect(writer).toContain('%2Feu-west-1%2Frds-db%2F');
});

test('secret without a secret ARN is refused at once', () => {
  expect(() => passwordProvider({ ...base, auth: 'secret' })).toThrow(/secretArn/);
});
