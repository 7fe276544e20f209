/**
 * The origin secret rotation as it is deployed: the bundled rotation handler
 * (assets/lambdas/origin-secret-rotation) in a process of its own, its real Secrets Manager and
 * CloudFront clients (lambdas/adapters/origin-rotation-clients.ts) pointed at local protocol
 * servers, through the four steps Secrets Manager invokes.
 */
import { CloudFrontClient, GetDistributionConfigCommand, type DistributionConfig } from '@aws-sdk/client-cloudfront';
import { ORIGIN_ROTATION_CONFIG_ENV, ORIGIN_SECRET_HEADER } from '../../constructs/contract/edge';
import { ORIGIN_SECRET_LENGTH } from '../../lambdas/core/origin-secret-rotation';
import { BundleProcess } from '../support/bundle-process';
import { LocalCloudFront } from '../support/cloudfront-server';
import { LocalSecretsManager } from '../support/secrets-manager-server';

const DISTRIBUTION = 'E1EDGEEXAMPLE';
const OLD = 'old-origin-secret-value';

/** A distribution as EdgeDistribution makes it: three origins (two regional, one failover name), an origin group, the verifier. */
function originXml(id: string, headers: Array<[string, string]>): string {
  const custom = headers.length === 0 ? '' : `<CustomHeaders><Quantity>${headers.length}</Quantity><Items>${headers
    .map(([n, v]) => `<OriginCustomHeader><HeaderName>${n}</HeaderName><HeaderValue>${v}</HeaderValue></OriginCustomHeader>`).join('')}</Items></CustomHeaders>`;
  return `<Origin><Id>${id}</Id><DomainName>${id}.api.example.com</DomainName><OriginPath></OriginPath>${custom}`
    + '<CustomOriginConfig><HTTPPort>80</HTTPPort><HTTPSPort>443</HTTPSPort><OriginProtocolPolicy>https-only</OriginProtocolPolicy>'
    + '<OriginSslProtocols><Quantity>1</Quantity><Items><SslProtocol>TLSv1.2</SslProtocol></Items></OriginSslProtocols>'
    + '<OriginReadTimeout>30</OriginReadTimeout><OriginKeepaliveTimeout>5</OriginKeepaliveTimeout></CustomOriginConfig>'
    + '<ConnectionAttempts>2</ConnectionAttempts><ConnectionTimeout>5</ConnectionTimeout></Origin>';
}

const CONFIG = '<CallerReference>edge-ref-1</CallerReference>'
  + '<Aliases><Quantity>1</Quantity><Items><CNAME>assistant.example.com</CNAME></Items></Aliases>'
  + '<DefaultRootObject></DefaultRootObject>'
  + `<Origins><Quantity>3</Quantity><Items>${originXml('us-east-1', [[ORIGIN_SECRET_HEADER, OLD], ['x-keep-me', 'kept']])}`
  + `${originXml('us-west-2', [['X-Origin-Verify', OLD]])}${originXml('api', [])}</Items></Origins>`
  + '<OriginGroups><Quantity>1</Quantity><Items><OriginGroup><Id>get-group</Id><FailoverCriteria><StatusCodes><Quantity>2</Quantity><Items><StatusCode>500</StatusCode><StatusCode>503</StatusCode></Items></StatusCodes></FailoverCriteria>'
  + '<Members><Quantity>2</Quantity><Items><OriginGroupMember><OriginId>us-east-1</OriginId></OriginGroupMember><OriginGroupMember><OriginId>us-west-2</OriginId></OriginGroupMember></Items></Members></OriginGroup></Items></OriginGroups>'
  + '<DefaultCacheBehavior><TargetOriginId>api</TargetOriginId><ViewerProtocolPolicy>https-only</ViewerProtocolPolicy>'
  + '<LambdaFunctionAssociations><Quantity>1</Quantity><Items><LambdaFunctionAssociation><LambdaFunctionARN>arn:aws:lambda:us-east-1:111122223333:function:edge-auth:3</LambdaFunctionARN>'
  + '<EventType>viewer-request</EventType><IncludeBody>false</IncludeBody></LambdaFunctionAssociation></Items></LambdaFunctionAssociations>'
  + '<CachePolicyId>4135ea2d-6df8-44a3-9df3-4b5a84be39ad</CachePolicyId><Compress>true</Compress></DefaultCacheBehavior>'
  + '<Comment>assistant edge</Comment><PriceClass>PriceClass_100</PriceClass><Enabled>true</Enabled>'
  + '<WebACLId>arn:aws:wafv2:us-east-1:111122223333:global/webacl/edge/abc</WebACLId><HttpVersion>http2and3</HttpVersion>';

describe('the origin secret rotation bundle against Secrets Manager and CloudFront', () => {
  let sm: LocalSecretsManager;
  let cf: LocalCloudFront;
  let rotation: BundleProcess;
  let reader: CloudFrontClient;
  let secretArn: string;

  beforeEach(async () => {
    sm = await LocalSecretsManager.start();
    cf = await LocalCloudFront.start();
    secretArn = sm.createSecret('edge-origin-secret', OLD, { rotationEnabled: true });
    cf.putDistribution(DISTRIBUTION, CONFIG);
    rotation = BundleProcess.start('origin-secret-rotation', {
      env: { ...sm.env(), ...cf.env(), [ORIGIN_ROTATION_CONFIG_ENV]: JSON.stringify({ distributionId: DISTRIBUTION }) },
    });
    reader = new CloudFrontClient({ region: 'us-east-1', endpoint: cf.url, credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' } });
  });
  afterEach(async () => {
    reader?.destroy();
    await rotation?.close();
    await cf?.close();
    await sm?.close();
  });

  const step = (token: string, Step: string): Promise<unknown> => rotation.invoke({ SecretId: secretArn, ClientRequestToken: token, Step });
  const readConfig = async (): Promise<DistributionConfig> =>
    (await reader.send(new GetDistributionConfigCommand({ Id: DISTRIBUTION }))).DistributionConfig!;
  const secretHeaders = (config: DistributionConfig): Record<string, string[]> => Object.fromEntries((config.Origins?.Items ?? []).map((o) => [
    o.Id!, (o.CustomHeaders?.Items ?? []).filter((h) => h.HeaderName!.toLowerCase() === ORIGIN_SECRET_HEADER).map((h) => h.HeaderValue!),
  ]));
  const withoutSecretHeaders = (config: DistributionConfig): unknown => ({
    ...config,
    Origins: {
      ...config.Origins,
      Items: config.Origins?.Items?.map((o) => ({
        ...o,
        CustomHeaders: o.CustomHeaders?.Items?.filter((h) => h.HeaderName!.toLowerCase() !== ORIGIN_SECRET_HEADER) ?? [],
      })),
    },
  });

  test('the four steps move every origin to the new value, and Secrets Manager\'s labels to it', async () => {
    const before = await readConfig();
    const oldVersion = Object.keys(sm.stages(secretArn))[0];
    const token = sm.startRotation(secretArn);

    await step(token, 'createSecret');
    const pending = sm.valueAt(secretArn, 'AWSPENDING')!;
    expect(pending).toMatch(new RegExp(`^[A-Za-z0-9]{${ORIGIN_SECRET_LENGTH}}$`));
    expect(sm.valueAt(secretArn, 'AWSCURRENT')).toBe(OLD);
    expect(sm.callsOf('GetRandomPassword')[0].input).toMatchObject({ PasswordLength: ORIGIN_SECRET_LENGTH, ExcludePunctuation: true, IncludeSpace: false });
    // Nothing at the edge changed yet, so testing now fails: the origins still send the old value.
    await expect(step(token, 'testSecret')).rejects.toThrow(/us-east-1, us-west-2, api/);
    expect(cf.updates).toHaveLength(0);

    await step(token, 'setSecret');
    expect(cf.updates).toHaveLength(1);
    // The update was conditional on the configuration it read.
    expect(cf.updates[0]).toMatchObject({ ifMatch: 'E2QWRUHEXAMPLE1', status: 200 });
    const after = await readConfig();
    // One header per origin (also the one that had none, and the one that spelled it in capitals), all the pending value.
    expect(secretHeaders(after)).toEqual({ 'us-east-1': [pending], 'us-west-2': [pending], 'api': [pending] });
    // Everything else is as it was: other headers, origin group, the verifier's association, the web ACL.
    expect(withoutSecretHeaders(after)).toEqual(withoutSecretHeaders(before));
    expect(after.Origins!.Items![0].CustomHeaders!.Items).toContainEqual({ HeaderName: 'x-keep-me', HeaderValue: 'kept' });
    expect(after.DefaultCacheBehavior!.LambdaFunctionAssociations!.Items![0].LambdaFunctionARN).toBe('arn:aws:lambda:us-east-1:111122223333:function:edge-auth:3');

    await step(token, 'testSecret');
    // Still the old value in AWSCURRENT until finishSecret.
    expect(sm.valueAt(secretArn, 'AWSCURRENT')).toBe(OLD);

    await step(token, 'finishSecret');
    expect(sm.valueAt(secretArn, 'AWSCURRENT')).toBe(pending);
    expect(sm.valueAt(secretArn, 'AWSPREVIOUS')).toBe(OLD);
    expect(sm.stages(secretArn)[oldVersion]).toEqual(['AWSPREVIOUS']);
    expect(sm.stages(secretArn)[token]).toEqual(expect.arrayContaining(['AWSCURRENT']));
    expect(sm.callsOf('UpdateSecretVersionStage').map((c) => c.input)).toEqual([
      { SecretId: secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: token, RemoveFromVersionId: oldVersion },
    ]);
  });

  test('every step done twice (Secrets Manager retries) changes nothing the second time', async () => {
    const token = sm.startRotation(secretArn);
    await step(token, 'createSecret');
    const pending = sm.valueAt(secretArn, 'AWSPENDING');
    await step(token, 'createSecret');
    expect(sm.valueAt(secretArn, 'AWSPENDING')).toBe(pending);
    expect(sm.callsOf('PutSecretValue')).toHaveLength(1);

    await step(token, 'setSecret');
    await step(token, 'setSecret');
    // The second read found every origin already sending the pending value: no second update.
    expect(cf.updates).toHaveLength(1);

    await step(token, 'testSecret');
    await step(token, 'finishSecret');
    await step(token, 'finishSecret');
    expect(sm.callsOf('UpdateSecretVersionStage')).toHaveLength(1);
    expect(sm.valueAt(secretArn, 'AWSCURRENT')).toBe(pending);
    expect(sm.valueAt(secretArn, 'AWSPREVIOUS')).toBe(OLD);
  });

  test('a change made to the distribution between the read and the update fails setSecret; the retry succeeds', async () => {
    const token = sm.startRotation(secretArn);
    await step(token, 'createSecret');
    cf.changeAfterNextRead(DISTRIBUTION);
    await expect(step(token, 'setSecret')).rejects.toMatchObject({ errorName: 'PreconditionFailed' });
    expect(cf.updates.map((u) => u.status)).toEqual([412]);
    expect(secretHeaders(await readConfig())['us-east-1']).toEqual([OLD]);

    await step(token, 'setSecret');
    expect(cf.updates.map((u) => u.status)).toEqual([412, 200]);
    expect(secretHeaders(await readConfig())['us-east-1']).toEqual([sm.valueAt(secretArn, 'AWSPENDING')]);
  });

  test('a step for a version that is not AWSPENDING, or on a secret without rotation, fails and changes nothing', async () => {
    await expect(step('no-such-version', 'createSecret')).rejects.toThrow(/not a version/);
    const plain = sm.createSecret('not-rotated', OLD);
    await expect(rotation.invoke({ SecretId: plain, ClientRequestToken: 'v', Step: 'createSecret' })).rejects.toThrow(/Rotation is not enabled/);
    expect(sm.callsOf('PutSecretValue')).toHaveLength(0);
    expect(cf.updates).toHaveLength(0);
  });
});
