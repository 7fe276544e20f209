import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { GetObjectCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import type { BulkOutputReader } from '../core/jobs/bulk-completion';

/**
 * Reads the output Bedrock batch inference wrote to S3. Objects are streamed line by line, so an
 * output of many records is never held in memory as a whole. Errors (S3 unavailable, access
 * denied) are thrown.
 */
export class S3BulkOutputReader implements BulkOutputReader {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: prefix })) {
      for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
    }
    return keys;
  }

  async *lines(key: string): AsyncIterable<string> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if (!out.Body) throw new Error(`s3://${this.bucket}/${key} has no body`);
    const body = out.Body as Readable;
    const reader = createInterface({ input: body, crlfDelay: Infinity });
    try {
      for await (const line of reader) yield line;
    } finally {
      reader.close();
      body.destroy();
    }
  }
}
