import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks, NIST80053R5Checks, type NagPack } from 'cdk-nag';

/**
 * The cdk-nag packs of the examples (an unacknowledged finding fails synth): AWS Solutions
 * always; with `-c nag=all` also NIST 800-53 Rev 5.
 */
export function addCompliancePacks(app: App, nag: unknown = app.node.tryGetContext('nag')): NagPack[] {
  if (nag !== undefined && nag !== 'all') {
    throw new Error(`-c nag=${String(nag)}: give "all" (AwsSolutions and NIST 800-53 R5), or leave it out (AwsSolutions only)`);
  }
  const packs: NagPack[] = [new AwsSolutionsChecks(app)];
  if (nag === 'all') packs.push(new NIST80053R5Checks(app));
  Validations.of(app).addPlugins(...packs);
  return packs;
}
