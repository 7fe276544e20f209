/** The metrics a synthesized CloudWatch dashboard charts, read out of its DashboardBody. */
import type { Template } from 'aws-cdk-lib/assertions';
import { dashboardBodyText } from '../../scripts/render-dashboard-layout';

export interface DashboardMetric {
  readonly namespace: string;
  readonly name: string;
  /** Dimension name → value as the dashboard fixes it (`TOKEN` where the value is a CloudFormation token). */
  readonly dimensions: Record<string, string>;
}

/**
 * Every metric line of every dashboard of the template, deduplicated: a line is
 * `[namespace, name, dim1, value1, ..., { options }]`; metric math expressions (`[{ expression }]`) are skipped.
 */
export function dashboardMetrics(template: Template): DashboardMetric[] {
  const found = new Map<string, DashboardMetric>();
  for (const dashboard of Object.values(template.findResources('AWS::CloudWatch::Dashboard'))) {
    for (const widget of JSON.parse(dashboardBodyText(dashboard.Properties.DashboardBody)).widgets) {
      for (const line of (widget.properties?.metrics ?? []) as unknown[][]) {
        if (typeof line[0] !== 'string') continue;
        const strings = line.slice(2).filter((x): x is string => typeof x === 'string');
        const dimensions: Record<string, string> = {};
        for (let i = 0; i + 1 < strings.length; i += 2) dimensions[strings[i]] = strings[i + 1];
        const metric = { namespace: line[0], name: String(line[1]), dimensions };
        found.set(metricKey(metric), metric);
      }
    }
  }
  return [...found.values()];
}

/** `Name{Dim=value,...}` with the dimensions sorted: one string per metric and dimension set. */
export function metricKey(m: { name: string; dimensions: Record<string, string> }): string {
  return `${m.name}{${Object.keys(m.dimensions).sort().map((k) => `${k}=${m.dimensions[k]}`).join(',')}}`;
}
