import { Names } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/**
 * A lower-case identifier unique to the construct path, for RDS names (letters, digits and
 * single hyphens, starting with a letter, at most 63 characters).
 */
export function generatedIdentifier(scope: Construct, suffix: string): string {
  const base = Names.uniqueResourceName(scope, { maxLength: 50, separator: '-' }).toLowerCase().replace(/[^a-z0-9-]/g, '-');
  return `sai-${base}-${suffix}`.replace(/-+/g, '-');
}
