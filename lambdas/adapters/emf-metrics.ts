/**
 * Metrics as CloudWatch embedded metric format (EMF) documents on stdout, written by the library
 * itself: the fewest documents an invocation's metrics fit in, in one write.
 *
 * An EMF document is one JSON object: `_aws.CloudWatchMetrics` is an array of directives, each
 * with its own `Dimensions` (dimension sets: lists of top-level keys) and `Metrics` (names and
 * units); the values of the dimensions and of the metrics are top-level keys of the same object.
 * So one document can carry metrics of different dimension sets (`Requests{service}`,
 * `CacheMisses{service,CacheLevel}`, `ModelLatency{service,Tier}`), but it has one value per key:
 * - a dimension takes one value per document (`CacheLevel` cannot be both `exact` and `semantic`);
 * - a metric name has one value (or array of values) per document, shared by every dimension set
 *   the name is listed with.
 * Metrics are therefore packed greedily, in the order they were recorded, into the first document
 * whose dimension values agree with theirs and that either lacks the metric name or holds the same
 * values under it (then the dimension set is added to that name: `CostUsd` of a request is
 * published both per service and per tier from one value). Samples of one name with one set of
 * dimension values are one array of values (EMF allows up to 100). A typical request (one cache
 * level missed, one tier answered, or a cache hit) is one document; a request whose metrics need
 * one dimension with two values (two cache levels missed, a fallback from one tier to another)
 * gets one more document per extra value, and never a wrong number.
 *
 * Powertools Metrics would write one document per dimension set, building a `Metrics` object (and
 * reading the environment) for each; its `addDimensions` adds dimension sets to every metric of a
 * document, which cannot express per-metric dimensions.
 */
import { AiMetricNames } from '../../constructs/contract/metrics';
import type { MetricUnit, MetricsRecorder } from '../core/ports';

/** EMF limits: values per metric name, metric definitions per directive. */
const MAX_VALUES = 100;
const MAX_METRICS = 100;

interface Sample {
  readonly name: string;
  readonly unit: MetricUnit;
  readonly dimensions: Record<string, string>;
  readonly values: number[];
}

interface Doc {
  readonly dimensionValues: Map<string, string>;
  readonly metrics: Map<string, { unit: MetricUnit; values: number[]; dimensionSets: string[][] }>;
}

export interface EmfWriterOptions {
  /** @default AiMetricNames.NAMESPACE */
  readonly namespace?: string;
  /** Value of the `service` dimension of every metric. */
  readonly serviceName: string;
  /** Writes the documents (one call per flush). @default process.stdout.write */
  readonly write?: (text: string) => void;
  /** @default Date.now */
  readonly now?: () => number;
  /** Writes nothing (as `POWERTOOLS_METRICS_DISABLED=true`). @default false */
  readonly disabled?: boolean;
}

/** Built once per container: the settings every invocation's recorder shares. */
export class EmfWriter {
  /** A writer configured from the environment (`POWERTOOLS_METRICS_DISABLED`), read once. */
  static fromEnvironment(serviceName: string, env: NodeJS.ProcessEnv = process.env): EmfWriter {
    return new EmfWriter({ serviceName, disabled: env.POWERTOOLS_METRICS_DISABLED?.toLowerCase() === 'true' });
  }

  readonly namespace: string;
  readonly serviceName: string;
  private readonly write: (text: string) => void;
  private readonly now: () => number;
  /** Nothing is written: recorders keep nothing and serialize nothing. */
  readonly disabled: boolean;

  constructor(options: EmfWriterOptions) {
    this.namespace = options.namespace ?? AiMetricNames.NAMESPACE;
    this.serviceName = options.serviceName;
    this.write = options.write ?? ((text) => void process.stdout.write(text));
    this.now = options.now ?? Date.now;
    this.disabled = options.disabled ?? false;
  }

  /** A recorder for one invocation. */
  recorder(): EmfMetricsRecorder {
    return new EmfMetricsRecorder(this);
  }

  /**
   * Serializes samples (and `properties`: log fields carried by the first document, so an
   * invocation's log line and its metrics are one line) into EMF document lines.
   */
  serialize(samples: readonly Sample[], properties: Record<string, unknown> = {}): string[] {
    const service = AiMetricNames.DIMENSION_SERVICE;
    const docs: Doc[] = [];
    for (const sample of samples) {
      const keys = Object.keys(sample.dimensions).filter((k) => k !== service);
      const dimensionSet = [service, ...keys];
      const fits = (doc: Doc): boolean => {
        if (!keys.every((k) => (doc.dimensionValues.get(k) ?? sample.dimensions[k]) === sample.dimensions[k])) return false;
        const existing = doc.metrics.get(sample.name);
        if (!existing) return doc.metrics.size < MAX_METRICS && sample.values.length <= MAX_VALUES;
        // One value list may serve several dimension sets (CostUsd under [service] and [service,
        // Tier]), never the same set twice: that would swallow the second sample's values.
        return existing.unit === sample.unit && sameValues(existing.values, sample.values)
          && !existing.dimensionSets.some((s) => sameValues(s, dimensionSet));
      };
      let doc = docs.find(fits);
      if (!doc) {
        doc = { dimensionValues: new Map(), metrics: new Map() };
        docs.push(doc);
      }
      for (const k of keys) doc.dimensionValues.set(k, sample.dimensions[k]);
      const existing = doc.metrics.get(sample.name);
      if (existing) {
        if (!existing.dimensionSets.some((s) => sameValues(s, dimensionSet))) existing.dimensionSets.push(dimensionSet);
      } else {
        doc.metrics.set(sample.name, { unit: sample.unit, values: sample.values, dimensionSets: [dimensionSet] });
      }
    }
    const timestamp = this.now();
    const lines = docs.map((doc, i) => {
      // One directive per distinct list of dimension sets.
      const directives = new Map<string, { Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }>();
      const values: Record<string, number | number[]> = {};
      for (const [name, m] of doc.metrics) {
        const signature = JSON.stringify(m.dimensionSets);
        let directive = directives.get(signature);
        if (!directive) directives.set(signature, (directive = { Namespace: this.namespace, Dimensions: m.dimensionSets, Metrics: [] }));
        directive.Metrics.push({ Name: name, Unit: m.unit });
        values[name] = m.values.length === 1 ? m.values[0] : m.values;
      }
      return JSON.stringify({
        ...(i === 0 ? properties : {}),
        _aws: { Timestamp: timestamp, CloudWatchMetrics: [...directives.values()] },
        [service]: this.serviceName,
        ...Object.fromEntries(doc.dimensionValues),
        ...values,
      });
    });
    if (lines.length === 0 && Object.keys(properties).length > 0) lines.push(JSON.stringify(properties));
    return lines;
  }

  /** Writes the lines in one call. */
  emit(lines: readonly string[]): void {
    if (this.disabled || lines.length === 0) return;
    this.write(`${lines.join('\n')}\n`);
  }
}

/** Collects one invocation's metrics; {@link flush} writes them. */
export class EmfMetricsRecorder implements MetricsRecorder {
  /** Every chunk of values, in recording order; a series holds at most 100 values per chunk. */
  private readonly samples: Sample[] = [];
  /** The chunk of each series that values are added to. */
  private readonly current = new Map<string, Sample>();

  constructor(private readonly writer: EmfWriter) {}

  add(name: string, unit: MetricUnit, value: number, dimensions: Record<string, string> = {}): void {
    if (this.writer.disabled) return;
    const key = seriesKey(name, unit, dimensions);
    const sample = this.current.get(key);
    if (sample && sample.values.length < MAX_VALUES) {
      sample.values.push(value);
      return;
    }
    // The first value of a series, or the 101st, 201st...: a new chunk (packed into another document).
    const chunk: Sample = { name, unit, dimensions, values: [value] };
    this.samples.push(chunk);
    this.current.set(key, chunk);
  }

  /**
   * Writes every recorded metric as EMF (with `properties`, log fields of the invocation, in the
   * first document) and forgets them.
   */
  flush(properties?: Record<string, unknown>): void {
    if (this.writer.disabled) return;
    this.writer.emit(this.writer.serialize(this.samples, properties));
    this.samples.length = 0;
    this.current.clear();
  }
}

/**
 * The series a sample belongs to: name, unit and dimensions in key order. Built on every `add`, so
 * concatenated rather than JSON-serialized; the separators are control characters (NUL, SOH),
 * which the names, units and dimension values (contract identifiers, tier ids, routes) do not hold.
 */
function seriesKey(name: string, unit: string, dimensions: Record<string, string>): string {
  const keys = Object.keys(dimensions);
  if (keys.length > 1) keys.sort();
  let key = `${name}\u0000${unit}`;
  for (const k of keys) key += `\u0000${k}\u0001${dimensions[k]}`;
  return key;
}

function sameValues<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
