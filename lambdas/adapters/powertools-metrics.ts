import { EmfMetricsRecorder, EmfWriter } from './emf-metrics';

const writers = new Map<string, EmfWriter>();

/**
 * Records metrics as CloudWatch EMF on stdout (see {@link EmfWriter}: the fewest documents, one
 * write, per flush). The writer, with its settings from the environment, is built once per
 * container and service name; a recorder is one invocation's metrics.
 *
 * The name is kept from when each dimension set went through a Powertools `Metrics` object; the
 * documents are the same EMF that Powertools writes (namespace, `service` dimension, units).
 */
export class PowertoolsMetricsRecorder extends EmfMetricsRecorder {
  constructor(serviceName: string) {
    let writer = writers.get(serviceName);
    if (!writer) writers.set(serviceName, (writer = EmfWriter.fromEnvironment(serviceName)));
    super(writer);
  }
}
