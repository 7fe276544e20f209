import { callerFromAuthorizer } from '../../lambdas/core/caller';

describe('callerFromAuthorizer: IAM', () => {
  test('an assumed role: the tenant is the role ARN, the user is the session name', () => {
    const caller = callerFromAuthorizer({ iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/ShopBackend/session-alice' } }, 'iam');
    expect(caller).toEqual({ tenantId: 'arn:aws:iam::123456789012:role/ShopBackend', userId: 'session-alice' });
  });

  test('every session of one role is the same tenant, different users', () => {
    const a = callerFromAuthorizer({ iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/ShopBackend/alice' } }, 'iam');
    const b = callerFromAuthorizer({ iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/ShopBackend/bob' } }, 'iam');
    expect(a?.tenantId).toBe(b?.tenantId);
    expect(a?.userId).not.toBe(b?.userId);
  });

  test('a session name with characters allowed by STS (@ . = , -) is kept whole', () => {
    const caller = callerFromAuthorizer({ iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/Role-1/alice@example.com' } }, 'iam');
    expect(caller).toEqual({ tenantId: 'arn:aws:iam::123456789012:role/Role-1', userId: 'alice@example.com' });
  });

  test('roles of different accounts are different tenants', () => {
    const a = callerFromAuthorizer({ iam: { userArn: 'arn:aws:sts::111111111111:assumed-role/Shop/s' } }, 'iam');
    const b = callerFromAuthorizer({ iam: { userArn: 'arn:aws:sts::222222222222:assumed-role/Shop/s' } }, 'iam');
    expect(a?.tenantId).not.toBe(b?.tenantId);
  });

  test('an IAM user: the tenant is the user ARN, no user id', () => {
    const caller = callerFromAuthorizer({ iam: { userArn: 'arn:aws:iam::123456789012:user/ci-bot', accountId: '123456789012' } }, 'iam');
    expect(caller).toEqual({ tenantId: 'arn:aws:iam::123456789012:user/ci-bot' });
    expect(caller?.userId).toBeUndefined();
  });

  test.each([
    ['aws-cn', 'arn:aws-cn:sts::123456789012:assumed-role/Shop/s1', 'arn:aws-cn:iam::123456789012:role/Shop'],
    ['aws-us-gov', 'arn:aws-us-gov:sts::123456789012:assumed-role/Shop/s1', 'arn:aws-us-gov:iam::123456789012:role/Shop'],
  ])('an assumed role in the %s partition keeps its partition', (_partition, userArn, tenantId) => {
    expect(callerFromAuthorizer({ iam: { userArn } }, 'iam')).toEqual({ tenantId, userId: 's1' });
  });

  test('an IAM user in another partition', () => {
    expect(callerFromAuthorizer({ iam: { userArn: 'arn:aws-cn:iam::123456789012:user/bot' } }, 'iam')).toEqual({
      tenantId: 'arn:aws-cn:iam::123456789012:user/bot',
    });
  });

  test.each([
    ['no authorizer', undefined],
    ['an empty authorizer', {}],
    ['no userArn', { iam: { accountId: '123456789012' } }],
    ['an empty userArn', { iam: { userArn: '' } }],
    ['a JWT context only', { jwt: { claims: { tenant_id: 't1', sub: 'u1' } } }],
  ])('no caller with %s', (_name, authorizer) => {
    expect(callerFromAuthorizer(authorizer, 'iam')).toBeUndefined();
  });
});

describe('callerFromAuthorizer: JWT', () => {
  test('the tenant comes from the tenant_id claim, the user from sub', () => {
    expect(callerFromAuthorizer({ jwt: { claims: { tenant_id: 'acme', sub: 'user-1', scope: 'chat' } } }, 'jwt')).toEqual({
      tenantId: 'acme',
      userId: 'user-1',
    });
  });

  test('without sub: a tenant and no user id', () => {
    const caller = callerFromAuthorizer({ jwt: { claims: { tenant_id: 'acme' } } }, 'jwt');
    expect(caller?.tenantId).toBe('acme');
    expect(caller?.userId).toBeUndefined();
  });

  test('without the tenant claim: no caller (sub alone is not a tenant)', () => {
    expect(callerFromAuthorizer({ jwt: { claims: { sub: 'user-1' } } }, 'jwt')).toBeUndefined();
  });

  test('an empty tenant claim: no caller', () => {
    expect(callerFromAuthorizer({ jwt: { claims: { tenant_id: '', sub: 'user-1' } } }, 'jwt')).toBeUndefined();
  });

  test('a custom claim name', () => {
    const claims = { 'custom:org': 'globex', 'tenant_id': 'ignored', 'sub': 'user-2' };
    expect(callerFromAuthorizer({ jwt: { claims } }, 'jwt', 'custom:org')).toEqual({ tenantId: 'globex', userId: 'user-2' });
    expect(callerFromAuthorizer({ jwt: { claims: { tenant_id: 'acme', sub: 'u' } } }, 'jwt', 'custom:org')).toBeUndefined();
  });

  test.each([
    ['no authorizer', undefined],
    ['no jwt', {}],
    ['no claims', { jwt: {} }],
    ['an IAM context only', { iam: { userArn: 'arn:aws:iam::123456789012:user/bot' } }],
  ])('no caller with %s', (_name, authorizer) => {
    expect(callerFromAuthorizer(authorizer, 'jwt')).toBeUndefined();
  });
});

describe('callerFromAuthorizer: Cognito identity pool credentials', () => {
  const arn = 'arn:aws:sts::111122223333:assumed-role/Cognito_ShopAuth_Role/CognitoIdentityCredentials';

  test('the user is the Cognito identity, not the shared session name', () => {
    const alice = callerFromAuthorizer({ iam: { userArn: arn, cognitoIdentity: { identityId: 'us-east-1:aaaa', identityPoolId: 'us-east-1:pool' } } }, 'iam');
    const bob = callerFromAuthorizer({ iam: { userArn: arn, cognitoIdentity: { identityId: 'us-east-1:bbbb', identityPoolId: 'us-east-1:pool' } } }, 'iam');
    expect(alice).toEqual({ tenantId: 'arn:aws:iam::111122223333:role/Cognito_ShopAuth_Role', userId: 'cognito:us-east-1:aaaa' });
    expect(bob?.userId).toBe('cognito:us-east-1:bbbb');
    expect(alice?.tenantId).toBe(bob?.tenantId);
  });

  test('without a Cognito identity the session name stays the user', () => {
    expect(callerFromAuthorizer({ iam: { userArn: arn, cognitoIdentity: null } }, 'iam')?.userId).toBe('CognitoIdentityCredentials');
  });
});

describe('callerFromAuthorizer: ids that are not well-formed Unicode or hold NUL', () => {
  test.each([
    ['a JWT sub with a lone high surrogate', { jwt: { claims: { tenant_id: 'acme', sub: 'user-\uD800' } } }, 'jwt'],
    ['a JWT sub with a lone low surrogate', { jwt: { claims: { tenant_id: 'acme', sub: '\uDC00user' } } }, 'jwt'],
    ['a JWT tenant with a lone surrogate', { jwt: { claims: { tenant_id: 'acme-\uD83D', sub: 'user-1' } } }, 'jwt'],
    ['an IAM role session name with a lone surrogate', { iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/Shop/user-\uD800' } }, 'iam'],
    ['an IAM Cognito identity with a lone surrogate', {
      iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/Shop/CognitoIdentityCredentials', cognitoIdentity: { identityId: 'eu-west-1:\uDFFF' } },
    }, 'iam'],
    // Found by test/fuzz: PostgreSQL text cannot hold NUL, so a profile request of such a caller was a 503.
    ['a JWT tenant with NUL', { jwt: { claims: { tenant_id: 'acme\u0000', sub: 'user-1' } } }, 'jwt'],
    ['a JWT sub with NUL', { jwt: { claims: { tenant_id: 'acme', sub: '\u0000' } } }, 'jwt'],
    ['an IAM role session name with NUL', { iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/Shop/user\u0000' } }, 'iam'],
  ] as const)('%s: no caller (401)', (_name, authorizer, source) => {
    expect(callerFromAuthorizer(authorizer, source)).toBeUndefined();
  });

  test('U+FFFD itself and astral characters (surrogate pairs) are well-formed: accepted as they are', () => {
    expect(callerFromAuthorizer({ jwt: { claims: { tenant_id: 'acme', sub: 'user-\uFFFD' } } }, 'jwt')).toEqual({ tenantId: 'acme', userId: 'user-\uFFFD' });
    expect(callerFromAuthorizer({ jwt: { claims: { tenant_id: 'acme', sub: 'user-\u{1F600}' } } }, 'jwt')).toEqual({ tenantId: 'acme', userId: 'user-\u{1F600}' });
  });
});
