import { Token } from 'aws-cdk-lib';

/** Geography prefixes of Bedrock's system-defined cross-region inference profiles, by Region prefix. */
const GEOGRAPHY_BY_REGION_PREFIX: ReadonlyArray<[RegExp, string]> = [
  [/^us-gov-/, 'us-gov'],
  [/^us-/, 'us'],
  [/^eu-/, 'eu'],
  [/^ap-/, 'apac'],
];

/** Cross-region inference profile ids for the Region a stack is in. */
export abstract class CrossRegionInference {
  /**
   * The geographic inference profile id of `modelId` (a foundation model id, such as
   * `amazon.nova-micro-v1:0`) for a stack in `region`: `us.` in us-*, `eu.` in eu-*, `apac.` in
   * ap-*. Throws for an unresolved Region or one outside these geographies.
   */
  public static geographicProfileId(modelId: string, region: string): string {
    if (Token.isUnresolved(region)) {
      throw new Error(`CrossRegionInference.geographicProfileId(${modelId}): the Region must be resolved (give the stack an explicit env.region)`);
    }
    const match = GEOGRAPHY_BY_REGION_PREFIX.find(([pattern]) => pattern.test(region));
    if (!match) throw new Error(`CrossRegionInference.geographicProfileId(${modelId}): Region ${region} has no geographic inference profile this library knows (us, eu, apac); use globalProfileId or a profile id`);
    return `${match[1]}.${modelId}`;
  }

  /** The global inference profile id of `modelId` (`global.<modelId>`), the same in every Region. */
  public static globalProfileId(modelId: string): string {
    return `global.${modelId}`;
  }
}
