import { Metrics, MetricUnit as PtUnit } from '@aws-lambda-powertools/metrics';
import { AiMetricNames } from '../../constructs/contract/metrics';
import type { MetricUnit, MetricsRecorder } from '../core/ports';

const UNITS: Record<MetricUnit, (typeof PtUnit)[keyof typeof PtUnit]> = {
  Count: PtUnit.Count,
  Milliseconds: PtUnit.Milliseconds,
  None: PtUnit.NoUnit,
};

/**
 * Records metrics as CloudWatch EMF through Powertools. Metrics that share a dimension set are
 * published together in one EMF document per set when {@link flush} is called.
 */
export class PowertoolsMetricsRecorder implements MetricsRecorder {
  private readonly groups = new Map<string, { dimensions: Record<string, string>; values: Array<[string, MetricUnit, number]> }>();

  constructor(private readonly serviceName: string) {}

  add(name: string, unit: MetricUnit, value: number, dimensions: Record<string, string> = {}): void {
    const key = JSON.stringify(Object.entries(dimensions).sort());
    let group = this.groups.get(key);
    if (!group) {
      group = { dimensions, values: [] };
      this.groups.set(key, group);
    }
    group.values.push([name, unit, value]);
  }

  /** Writes every recorded metric as EMF to stdout and forgets them. */
  flush(): void {
    for (const { dimensions, values } of this.groups.values()) {
      const metrics = new Metrics({
        namespace: AiMetricNames.NAMESPACE,
        serviceName: this.serviceName,
        defaultDimensions: dimensions,
      });
      for (const [name, unit, value] of values) metrics.addMetric(name, UNITS[unit], value);
      metrics.publishStoredMetrics();
    }
    this.groups.clear();
  }
}
