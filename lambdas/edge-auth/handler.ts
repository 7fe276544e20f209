import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { CloudFrontRequestEvent, CloudFrontRequestResult } from 'aws-lambda';
import { EDGE_AUTH_CONFIG_FILE, type EdgeAuthRuntimeConfig } from '../../constructs/contract/edge';
import { edgeVerifier, type EdgeVerifier } from '../core/edge-auth';

let verifier: EdgeVerifier | undefined;

/**
 * Lambda@Edge viewer request: verifies the caller's JWT and sets `x-edge-tenant` to its tenant,
 * or answers 401. Lambda@Edge has no environment variables: the configuration is the file
 * {@link EDGE_AUTH_CONFIG_FILE} beside this bundle, read once per container.
 */
export async function handler(event: CloudFrontRequestEvent): Promise<CloudFrontRequestResult> {
  verifier ??= edgeVerifier(JSON.parse(readFileSync(path.join(__dirname, EDGE_AUTH_CONFIG_FILE), 'utf8')) as EdgeAuthRuntimeConfig);
  const request = event.Records[0].cf.request;
  return (await verifier.verify(request)) as CloudFrontRequestResult;
}
