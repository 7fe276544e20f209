/**
 * The `coalescing` prop of TieredRouter (and of ScalableAiService's routerOptions): the runtime
 * configuration it writes, its defaults, and the synth errors of values that cannot work.
 */
import { Duration, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { isolatedVpc, newStack, routerConfig } from './helpers';
import { ModelTier, ResponseCache, ScalableAiService, TieredRouter, type IModelTier, type TieredRouterProps } from '../../constructs';

function tier(tierId: string, timeout: Duration): IModelTier {
  return ModelTier.bedrock({ tierId, modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014, timeout });
}

function synth(props: Partial<TieredRouterProps>, withCache = true): { stack: Stack; config: any } {
  const stack = newStack();
  const vpc = withCache ? isolatedVpc(stack) : undefined;
  const cache = vpc ? new ResponseCache(stack, 'Cache', { vpc }) : undefined;
  new TieredRouter(stack, 'Router', { tiers: [tier('small', Duration.seconds(8)), tier('large', Duration.seconds(15))], cache, vpc, ...props });
  return { stack, config: routerConfig(Template.fromStack(stack)) };
}

describe('TieredRouter coalescing', () => {
  test('on by default with a cache: 3 seconds of waiting at most', () => {
    expect(synth({}).config.coalescing).toEqual({ maxWaitMs: 3_000 });
  });

  test('off without a cache, and when disabled', () => {
    expect(synth({}, false).config.coalescing).toBeUndefined();
    expect(synth({ coalescing: { enabled: false } }).config.coalescing).toBeUndefined();
  });

  test('maxWait as given; the default shrinks to what the router\'s timeout leaves after the slowest tier', () => {
    expect(synth({ coalescing: { maxWait: Duration.millis(1_500) } }).config.coalescing).toEqual({ maxWaitMs: 1_500 });
    // 16 s router timeout - 15 s of the slowest tier: 1 s.
    expect(synth({ timeout: Duration.seconds(16) }).config.coalescing).toEqual({ maxWaitMs: 1_000 });
  });

  test.each<[string, Partial<TieredRouterProps>, boolean, RegExp]>([
    ['enabled without a cache', { coalescing: { enabled: true } }, false, /coalescing\.enabled needs cache/],
    ['a wait the router\'s timeout cannot hold after the slowest tier', { coalescing: { maxWait: Duration.seconds(15) } }, true,
      /coalescing\.maxWait must be whole milliseconds between 1 ms and 14000 ms .*slowest tier's timeout of 15000 ms.*got 15 seconds/],
    ['no wait at all', { coalescing: { maxWait: Duration.millis(0) } }, true, /coalescing\.maxWait must be/],
    ['a fraction of a millisecond', { coalescing: { maxWait: Duration.millis(10.5) } }, true, /coalescing\.maxWait must be whole milliseconds/],
  ])('refused: %s', (_, props, withCache, message) => {
    expect(() => synth(props, withCache)).toThrow(message);
  });
});

describe('ScalableAiService coalescing', () => {
  test('on by default (the service has a cache); routerOptions.coalescing reaches the router', () => {
    const tiers = (): IModelTier[] => [tier('small', Duration.seconds(8))];
    const byDefault = newStack();
    new ScalableAiService(byDefault, 'Service', { tiers: tiers() });
    expect(routerConfig(Template.fromStack(byDefault)).coalescing).toEqual({ maxWaitMs: 3_000 });

    const tuned = newStack();
    new ScalableAiService(tuned, 'Service', { tiers: tiers(), routerOptions: { coalescing: { maxWait: Duration.seconds(2) } } });
    expect(routerConfig(Template.fromStack(tuned)).coalescing).toEqual({ maxWaitMs: 2_000 });
  });
});
