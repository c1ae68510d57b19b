import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The platform's Prometheus metrics, on one registry served at GET /metrics. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    deliveries: new Counter({ name: 'codexk8s_webhook_deliveries_total', help: 'Webhook deliveries by event and result', labelNames: ['event', 'result'] as const, registers: [registry] }),
    signatureFailures: new Counter({ name: 'codexk8s_webhook_signature_failures_total', help: 'Rejected deliveries by reason', labelNames: ['reason'] as const, registers: [registry] }),
    verifiedBy: new Counter({ name: 'codexk8s_webhook_verified_by_secret_total', help: 'Which secret verified each delivery (0 = current, 1+ = previous)', labelNames: ['secret'] as const, registers: [registry] }),
    watchLastEvent: new Gauge({ name: 'codexk8s_kubernetes_watch_last_event_seconds', help: 'Unix time of the last event (or bookmark) the Job watch received', registers: [registry] }),
    namespacesCleaned: new Counter({ name: 'codexk8s_run_namespaces_cleaned_total', help: 'Run namespaces the cleanup deleted: expired (the run ended past the TTL) or orphan (no run knows it)', labelNames: ['reason'] as const, registers: [registry] }),
    latency: new Histogram({ name: 'codexk8s_webhook_latency_seconds', help: 'Webhook handling latency', labelNames: ['result'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
