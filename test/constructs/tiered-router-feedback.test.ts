/** TieredRouter: the `POST /v1/feedback` route and the `feedbackWindow` prop. */
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { isolatedVpc, newStack, onlyResource, routerConfig } from './helpers';
import { ModelTier, ResponseCache, RouterAuthorization, TieredRouter, type TieredRouterProps } from '../../constructs';

const tier = () => ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });

function router(props: Partial<TieredRouterProps> = {}, withCache = true) {
  const stack = newStack();
  const vpc = withCache ? isolatedVpc(stack) : undefined;
  const cache = vpc ? new ResponseCache(stack, 'Cache', { vpc }) : undefined;
  const built = new TieredRouter(stack, 'Router', { tiers: [tier()], cache, vpc, ...props });
  return { stack, router: built, template: Template.fromStack(stack) };
}

describe('TieredRouter: feedback', () => {
  test('with a cache: POST /v1/feedback on the router\'s API, with the same authorizer as the chat route', () => {
    const { template } = router({ authorization: RouterAuthorization.jwt({ issuer: 'https://issuer.example.com', audience: ['web'] }) });
    const [authorizerId] = onlyResource(template, 'AWS::ApiGatewayV2::Authorizer');
    for (const routeKey of ['POST /v1/chat', 'POST /v1/feedback']) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: routeKey, AuthorizationType: 'JWT', AuthorizerId: { Ref: authorizerId } });
    }
  });

  test('the serving records live for 24 hours by default, or for feedbackWindow', () => {
    expect(routerConfig(router().template).feedback).toEqual({ windowSeconds: 86_400 });
    expect(routerConfig(router({ feedbackWindow: Duration.hours(2) }).template).feedback).toEqual({ windowSeconds: 7_200 });
  });

  test('without a cache: no route and no serving records', () => {
    const { template } = router({}, false);
    expect(Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey)).toEqual(['POST /v1/chat']);
    expect(routerConfig(template).feedback).toBeUndefined();
  });

  test.each<[string, Duration, RegExp]>([
    ['shorter than 5 minutes', Duration.minutes(4), /feedbackWindow must be whole seconds between 5 minutes and 7 days; got 4 minutes/],
    ['longer than 7 days', Duration.days(8), /feedbackWindow must be whole seconds between 5 minutes and 7 days; got 8 days/],
    ['not whole seconds', Duration.millis(600_500), /feedbackWindow must be whole seconds/],
  ])('rejects a feedbackWindow %s', (_, feedbackWindow, message) => {
    expect(() => router({ feedbackWindow })).toThrow(message);
  });

  test('rejects a feedbackWindow without a cache', () => {
    expect(() => router({ feedbackWindow: Duration.hours(1) }, false)).toThrow(/TieredRouter: feedbackWindow needs cache/);
  });

  test('accepts the bounds', () => {
    expect(() => router({ feedbackWindow: Duration.minutes(5) })).not.toThrow();
    expect(() => router({ feedbackWindow: Duration.days(7) })).not.toThrow();
  });
});
