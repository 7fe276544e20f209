/**
 * An OIDC-style issuer for tests: a local HTTPS server (self-signed certificate made with openssl
 * for 127.0.0.1, trusted by a client through NODE_EXTRA_CA_CERTS={@link LocalJwksServer.caFile})
 * that serves `/.well-known/jwks.json` with an RSA public key, and signs RS256 tokens with the
 * private key. It can be made to hang (accept, never answer) to test a client's time limit.
 */
import { execFileSync } from 'node:child_process';
import { createSign, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** A token's header and payload, signed as they are (nothing is added). */
export interface TokenParts {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
}

const base64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

export class LocalJwksServer {
  static async start(): Promise<LocalJwksServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jwks-'));
    const keyFile = path.join(dir, 'tls-key.pem');
    const caFile = path.join(dir, 'tls-cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    const server = new LocalJwksServer(dir, caFile, fs.readFileSync(keyFile), fs.readFileSync(caFile));
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(0, '127.0.0.1', () => resolve());
    });
    return server;
  }

  /** The key id of the signing key in the JWKS. */
  readonly kid = randomUUID();
  /** JWKS downloads served (or held, when hanging). */
  jwksRequests = 0;
  /** `hang`: accept the request and never answer. */
  mode: 'serve' | 'hang' = 'serve';

  private readonly privateKey: KeyObject;
  private readonly publicJwk: Record<string, unknown>;
  private readonly server: https.Server;

  private constructor(private readonly dir: string, readonly caFile: string, key: Buffer, cert: Buffer) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey;
    this.publicJwk = { ...pair.publicKey.export({ format: 'jwk' }), kid: this.kid, alg: 'RS256', use: 'sig' };
    this.server = https.createServer({ key, cert }, (req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.statusCode = 404;
        res.end();
        return;
      }
      this.jwksRequests++;
      if (this.mode === 'hang') return;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [this.publicJwk] }));
    });
  }

  /** `https://127.0.0.1:<port>`: the issuer, whose JWKS is at `<issuer>/.well-known/jwks.json`. */
  get issuer(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** An RS256 token with this server's key and kid, `iss` = {@link issuer}, valid for an hour, plus `claims`. */
  token(claims: Record<string, unknown>): string {
    const now = Math.floor(Date.now() / 1000);
    return this.sign({ header: { alg: 'RS256', typ: 'JWT', kid: this.kid }, payload: { iss: this.issuer, iat: now, exp: now + 3600, sub: 'user-1', ...claims } });
  }

  /** `header.payload.signature` with an RS256 signature by this server's key, whatever the header says. */
  sign(parts: TokenParts): string {
    const signingInput = `${base64url(JSON.stringify(parts.header))}.${base64url(JSON.stringify(parts.payload))}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(this.privateKey);
    return `${signingInput}.${base64url(signature)}`;
  }

  /** Closes the server (held requests included) and removes the certificate files. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
