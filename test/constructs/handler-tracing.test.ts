/**
 * The tracing prop (HandlerTracing): off by default; X-Ray active tracing with the Powertools
 * Tracer switched on; or the ADOT layer with its exec wrapper. Nag-clean under both packs.
 */
import * as path from 'node:path';
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { newApp, newStack, readReport, statementsAllowing, trySynth } from './helpers';
import { BatchPipeline, HandlerTracing, ModelTier, ScalableAiService, TieredRouter, type IModelTier } from '../../constructs';

const ADOT_LAYER = 'arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-nodejs-arm64-ver-1-30-2:1';

function tier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014, timeout: Duration.seconds(8) });
}

function functions(template: Template): Array<Record<string, any>> {
  return Object.values(template.findResources('AWS::Lambda::Function')).map((f) => f.Properties);
}

describe('HandlerTracing', () => {
  test('off by default: no TracingConfig, no tracer switch, no X-Ray permission', () => {
    const stack = newStack();
    new TieredRouter(stack, 'Router', { tiers: [tier()] });
    const template = Template.fromStack(stack);
    const [fn] = functions(template);
    expect(fn.TracingConfig).toBeUndefined();
    expect(fn.Environment.Variables).not.toHaveProperty('POWERTOOLS_TRACE_ENABLED');
    expect(statementsAllowing(template, 'xray:PutTraceSegments')).toEqual([]);
  });

  test('xRay(): active tracing, the Powertools Tracer on, X-Ray write permission', () => {
    const stack = newStack();
    new TieredRouter(stack, 'Router', { tiers: [tier()], tracing: HandlerTracing.xRay() });
    const template = Template.fromStack(stack);
    const [fn] = functions(template);
    expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
    expect(fn.Environment.Variables.POWERTOOLS_TRACE_ENABLED).toBe('true');
    expect(fn.Environment.Variables).not.toHaveProperty('AWS_LAMBDA_EXEC_WRAPPER');
    expect(fn.Layers).toBeUndefined();
    expect(statementsAllowing(template, 'xray:PutTraceSegments')).toHaveLength(1);
  });

  test('openTelemetry(layer): the ADOT layer and its wrapper, the Powertools Tracer off, active tracing for the X-Ray export', () => {
    const stack = newStack();
    new TieredRouter(stack, 'Router', { tiers: [tier()], tracing: HandlerTracing.openTelemetry(ADOT_LAYER) });
    const [fn] = functions(Template.fromStack(stack));
    expect(fn.Layers).toEqual([ADOT_LAYER]);
    expect(fn.Environment.Variables.AWS_LAMBDA_EXEC_WRAPPER).toBe('/opt/otel-handler');
    expect(fn.Environment.Variables).not.toHaveProperty('POWERTOOLS_TRACE_ENABLED');
    expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
  });

  test('openTelemetry() rejects what is not a layer version ARN, naming the prop', () => {
    expect(() => HandlerTracing.openTelemetry('aws-otel-nodejs-arm64')).toThrow(/HandlerTracing.openTelemetry\(layerArn\).*not the ARN of a Lambda layer version/);
    // A layer without its version cannot be attached.
    expect(() => HandlerTracing.openTelemetry('arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-nodejs-arm64-ver-1-30-2')).toThrow(/layerArn/);
    expect(() => HandlerTracing.openTelemetry('arn:aws:lambda:us-east-1:123456789012:function:my-fn:1')).toThrow(/layerArn/);
  });

  test('ScalableAiService passes tracing to every function it creates (router, batch pipeline)', () => {
    const stack = newStack();
    new ScalableAiService(stack, 'Service', { tiers: [tier()], tracing: HandlerTracing.xRay(), batchPipeline: {} });
    const fns = functions(Template.fromStack(stack)).filter((f) => f.Environment?.Variables?.POWERTOOLS_SERVICE_NAME !== undefined);
    expect(fns.length).toBeGreaterThanOrEqual(3);
    for (const fn of fns) expect({ fn: fn.Description, tracing: fn.TracingConfig }).toEqual({ fn: fn.Description, tracing: { Mode: 'Active' } });
  });

  test('traced functions synthesize with no unacknowledged AwsSolutions or NIST 800-53 R5 finding', () => {
    const app = newApp();
    const traced = new Stack(app, 'Traced', { env: { account: '111122223333', region: 'us-east-1' } });
    const service = new ScalableAiService(traced, 'Service', { tiers: [tier()], tracing: HandlerTracing.xRay(), batchPipeline: {} });
    new BatchPipeline(traced, 'OtelPipeline', { router: new TieredRouter(traced, 'OtelRouter', { tiers: [tier()], tracing: HandlerTracing.openTelemetry(ADOT_LAYER) }), tracing: HandlerTracing.openTelemetry(ADOT_LAYER) });
    expect(service.router).toBeDefined();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new NIST80053R5Checks(app));
    const synth = trySynth(app);
    expect({ error: synth.error?.message, printed: synth.error ? synth.printed : '' }).toEqual({ error: undefined, printed: '' });
    const report = readReport(path.join(synth.assembly!.directory, 'validation-report.json'));
    expect(report.pluginReports.flatMap((r) => r.violations)).toEqual([]);
  });
});
