/**
 * The emitted-metric contract: every metric of the library's namespace that an alarm or the
 * dashboard reads (name + dimension names) is emitted by handler code with those dimensions, and its
 * name is in the bundled handlers. Emissions are found by reading `lambdas/**` for
 * `.add(M.X, unit, value, { [M.DIMENSION_Y]: ... })` calls (the `service` dimension is on every metric).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { newStack } from './helpers';
import { fullService } from './monitoring-fixture';
import { AiMetricNames } from '../../constructs';

const ROOT = path.join(__dirname, '..', '..');
const NAMES = AiMetricNames as unknown as Record<string, string>;

type Usage = { name: string; dimensions: string[] };
const key = (u: Usage) => `${u.name}{${[...u.dimensions].sort().join(',')}}`;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Metric name + dimension names of every `.add(M.X ...)` call in the handler code. */
export function emittedMetrics(): Set<string> {
  const emitted = new Set<string>();
  for (const file of sourceFiles(path.join(ROOT, 'lambdas'))) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\.add\(\s*(?:M|AiMetricNames)\.([A-Z_0-9]+)\s*,([^\n]*)/g)) {
      const name = NAMES[m[1]];
      if (name === undefined) throw new Error(`${file}: unknown metric constant ${m[1]}`);
      let rest = m[2];
      // A dimensions object held in a variable: resolve `const byTier = { ... }` in the same file.
      const variable = /,\s*([a-zA-Z_]\w*)\s*\)\s*;?\s*$/.exec(rest)?.[1];
      if (variable && !/^\d/.test(variable)) {
        const decl = new RegExp(`const ${variable}\\s*=\\s*\\{([^}]*)\\}`).exec(text);
        if (decl) rest += decl[1];
      }
      const dims = [...rest.matchAll(/\[(?:M|AiMetricNames)\.(DIMENSION_[A-Z_]+)\]/g)].map((d) => NAMES[d[1]]);
      emitted.add(key({ name, dimensions: [AiMetricNames.DIMENSION_SERVICE, ...dims] }));
    }
  }
  return emitted;
}

/** Own-namespace metrics that alarms (plain, math, anomaly) and dashboards of a template read. */
export function watchedMetrics(template: Template): Usage[] {
  const used: Usage[] = [];
  const fromStat = (metric: any) => {
    if (metric?.Namespace !== AiMetricNames.NAMESPACE) return;
    used.push({ name: metric.MetricName, dimensions: (metric.Dimensions ?? []).map((d: any) => d.Name) });
  };
  for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm')) as any[]) {
    const p = alarm.Properties;
    fromStat(p);
    for (const m of p.Metrics ?? []) fromStat(m.MetricStat?.Metric);
  }
  for (const dashboard of Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as any[]) {
    const body = dashboard.Properties.DashboardBody;
    const text = typeof body === 'string' ? body : body['Fn::Join'][1].map((p: unknown) => (typeof p === 'string' ? p : 'TOKEN')).join('');
    for (const widget of JSON.parse(text).widgets) {
      for (const line of widget.properties?.metrics ?? []) {
        if (line[0] !== AiMetricNames.NAMESPACE) continue;
        const dims = line.slice(2).filter((x: unknown) => typeof x === 'string').filter((_: string, i: number) => i % 2 === 0);
        used.push({ name: line[1], dimensions: dims });
      }
    }
  }
  return used;
}

/** What the checker reports: watched metrics no handler emits with those dimensions. */
export function unemitted(used: Usage[], emitted: Set<string>): string[] {
  return [...new Set(used.map(key))].filter((k) => !emitted.has(k)).sort();
}

const emitted = emittedMetrics();

test('the handler scan finds the emissions (Latency three ways, CostUsd per tier via a variable)', () => {
  expect(emitted).toContain('Latency{service}');
  expect(emitted).toContain('Latency{ServedBy,service}');
  expect(emitted).toContain('Latency{Tier,service}');
  expect(emitted).toContain('CostUsd{Tier,service}');
});

test('every own-namespace metric the full facade\'s alarms and dashboard watch is emitted by handler code', () => {
  const used = watchedMetrics(fullService().template);
  expect(used.length).toBeGreaterThan(30);
  expect(unemitted(used, emitted)).toEqual([]);
});

test('every watched name is emitted by the bundled handler code', () => {
  const bundles = fs.readdirSync(path.join(ROOT, 'assets', 'lambdas'), { recursive: true })
    .map(String).filter((f) => f.endsWith('index.js'))
    .map((f) => fs.readFileSync(path.join(ROOT, 'assets', 'lambdas', f), 'utf8')).join('\n');
  // Every name is in every bundle (the contract class is bundled whole): look for the calls that
  // record it, `.add(<contract>.<CONSTANT>,`, whatever the bundler named the class.
  const constantOf = new Map(Object.entries(AiMetricNames).map(([k, v]) => [v as string, k]));
  const names = [...new Set(watchedMetrics(fullService().template).map((u) => u.name))];
  expect(names.filter((n) => !new RegExp(`\\.add\\([\\w$]+\\.${constantOf.get(n) ?? '(?!)'},`).test(bundles))).toEqual([]);
});

test('the checker reports an alarm on a metric nobody emits, and on a wrong dimension set', () => {
  const stack = newStack();
  const metric = (name: string, dims: Record<string, string>) => new cloudwatch.Metric({ namespace: AiMetricNames.NAMESPACE, metricName: name, dimensionsMap: { service: 's', ...dims } });
  new cloudwatch.Alarm(stack, 'Made', { metric: metric('MadeUpMetric', {}), threshold: 1, evaluationPeriods: 1 });
  new cloudwatch.Alarm(stack, 'Wrong', { metric: metric(AiMetricNames.UNAVAILABLE, { Tier: 'small' }), threshold: 1, evaluationPeriods: 1 });
  expect(unemitted(watchedMetrics(Template.fromStack(stack)), emitted)).toEqual(['MadeUpMetric{service}', 'Unavailable{Tier,service}']);
});
