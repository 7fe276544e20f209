/**
 * A local CloudFront control plane (restXml, API version 2020-05-31) for the real AWS SDK v3
 * client, with the two calls a configuration update makes:
 *
 * - `GetDistributionConfig`: `GET /2020-05-31/distribution/{Id}/config`, the configuration with
 *   its `ETag`.
 * - `UpdateDistribution`: `PUT /2020-05-31/distribution/{Id}/config` with `If-Match`: a missing
 *   one is `InvalidIfMatchVersion` (400), one that is not the current ETag is `PreconditionFailed`
 *   (412); otherwise the body becomes the configuration, with a new ETag.
 *
 * The configuration is kept as the XML the client sent (the SDK parses it back), so what an update
 * keeps or drops is what a later read shows. {@link LocalCloudFront.changeAfterNextRead} stands
 * for another writer: it bumps the ETag, as any change made by someone else would.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

const XMLNS = 'http://cloudfront.amazonaws.com/doc/2020-05-31/';

/** What an UpdateDistribution call sent, and how it was answered. */
export interface DistributionUpdate {
  readonly distributionId: string;
  readonly ifMatch?: string;
  readonly body: string;
  status: number;
}

interface Distribution {
  /** The `<DistributionConfig>` element's content. */
  config: string;
  etag: string;
}

export class LocalCloudFront {
  static async start(): Promise<LocalCloudFront> {
    const server = new LocalCloudFront();
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(0, '127.0.0.1', () => resolve());
    });
    return server;
  }

  readonly updates: DistributionUpdate[] = [];
  readonly configReads: string[] = [];
  private readonly distributions = new Map<string, Distribution>();
  private readonly server: http.Server;
  private readonly changeAfterRead = new Set<string>();
  private etags = 0;

  private constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, Buffer.concat(chunks).toString('utf8'), res));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Environment that points SDK CloudFront clients here. */
  env(): Record<string, string> {
    return { AWS_ENDPOINT_URL_CLOUDFRONT: this.url };
  }

  /** Adds a distribution whose configuration is the given `<DistributionConfig>` content. */
  putDistribution(id: string, configContent: string): void {
    this.distributions.set(id, { config: configContent, etag: this.nextEtag() });
  }

  /**
   * Another writer changes the distribution right after the next configuration read: the ETag
   * that read returned is stale by the time the reader updates.
   */
  changeAfterNextRead(id: string): void {
    this.changeAfterRead.add(id);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, body: string, res: http.ServerResponse): void {
    const match = /^\/2020-05-31\/distribution\/([^/]+)\/config$/.exec(new URL(req.url ?? '/', 'http://local').pathname);
    if (!match) return this.error(res, 404, 'UnknownOperation', `${req.method} ${req.url}`);
    const id = decodeURIComponent(match[1]);
    const distribution = this.distribution(id);
    if (!distribution) return this.error(res, 404, 'NoSuchDistribution', 'The specified distribution does not exist.');

    if (req.method === 'GET') {
      this.configReads.push(id);
      res.setHeader('etag', distribution.etag);
      if (this.changeAfterRead.delete(id)) distribution.etag = this.nextEtag();
      return this.xml(res, 200, `<DistributionConfig xmlns="${XMLNS}">${distribution.config}</DistributionConfig>`);
    }
    if (req.method !== 'PUT') return this.error(res, 405, 'MethodNotAllowed', String(req.method));

    const ifMatch = typeof req.headers['if-match'] === 'string' ? req.headers['if-match'] : undefined;
    const update: DistributionUpdate = { distributionId: id, ifMatch, body, status: 0 };
    this.updates.push(update);
    const fail = (status: number, code: string, message: string): void => {
      update.status = status;
      this.error(res, status, code, message);
    };
    if (!ifMatch) return fail(400, 'InvalidIfMatchVersion', 'The If-Match version is missing or not valid for the resource.');
    if (ifMatch !== distribution.etag) return fail(412, 'PreconditionFailed', 'The precondition given in one or more of the request header fields evaluated to false.');
    const content = /<DistributionConfig(?:\s[^>]*)?>([\s\S]*)<\/DistributionConfig>\s*$/.exec(body.replace(/^<\?xml[^>]*\?>/, '').trim());
    if (!content) return fail(400, 'MalformedXML', 'The XML document you provided was not well-formed or did not validate.');
    distribution.config = content[1];
    distribution.etag = this.nextEtag();
    update.status = 200;
    res.setHeader('etag', distribution.etag);
    return this.xml(res, 200, `<Distribution xmlns="${XMLNS}"><Id>${id}</Id><ARN>arn:aws:cloudfront::111122223333:distribution/${id}</ARN>`
      + `<Status>InProgress</Status><LastModifiedTime>${new Date().toISOString()}</LastModifiedTime><InProgressInvalidationBatches>0</InProgressInvalidationBatches>`
      + `<DomainName>${id.toLowerCase()}.cloudfront.net</DomainName><DistributionConfig>${distribution.config}</DistributionConfig></Distribution>`);
  }

  private distribution(id: string): Distribution | undefined {
    return this.distributions.get(id);
  }

  private nextEtag(): string {
    return `E2QWRUHEXAMPLE${++this.etags}`;
  }

  private xml(res: http.ServerResponse, status: number, xml: string): void {
    res.statusCode = status;
    res.setHeader('content-type', 'text/xml');
    res.setHeader('x-amz-request-id', `local-${Date.now().toString(36)}`);
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
  }

  private error(res: http.ServerResponse, status: number, code: string, message: string): void {
    this.xml(res, status, `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>local</RequestId></ErrorResponse>`);
  }
}
