/**
 * GET /metrics: the pipeline's status and the HTTP server's own counters in the Prometheus text
 * exposition format, version 0.0.4.
 *
 * Invariants:
 * - Every family has its # HELP and # TYPE lines, and its samples follow them contiguously.
 * - Label values are escaped (backslash, double quote, newline) so a table named `a"b` cannot
 *   break the format; label sets are bounded (routes are patterns, never raw paths).
 */
import type { StatusReport } from '../pipeline/api.ts';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Upper bounds of the request duration histogram, in seconds. */
const DURATION_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type Labels = Record<string, string>;

interface DurationHistogram {
  /** Non-cumulative counts per bucket; rendered cumulatively. */
  bucketCounts: number[];
  count: number;
  sumSeconds: number;
}

/** What the server counts about its own requests. */
export class HttpMetrics {
  readonly #requests = new Map<string, { route: string; status: number; count: number }>();
  readonly #durations = new Map<string, DurationHistogram>();

  record(route: string, status: number, durationSeconds: number): void {
    const key = `${route} ${status}`;
    const counter = this.#requests.get(key);
    if (counter) counter.count++;
    else this.#requests.set(key, { route, status, count: 1 });
    let histogram = this.#durations.get(route);
    if (!histogram) {
      histogram = { bucketCounts: DURATION_BUCKETS_SECONDS.map(() => 0), count: 0, sumSeconds: 0 };
      this.#durations.set(route, histogram);
    }
    const bucket = DURATION_BUCKETS_SECONDS.findIndex((bound) => durationSeconds <= bound);
    if (bucket !== -1) histogram.bucketCounts[bucket]++;
    histogram.count++;
    histogram.sumSeconds += durationSeconds;
  }

  write(exposition: Exposition): void {
    exposition.family('sluice_http_requests_total', 'counter', 'HTTP requests answered, by route pattern and status.');
    for (const { route, status, count } of this.#requests.values()) {
      exposition.sample('sluice_http_requests_total', { route, status: String(status) }, count);
    }
    exposition.family('sluice_http_request_duration_seconds', 'histogram', 'Time from a request\'s arrival to the end of its response (a change stream counts when it closes).');
    for (const [route, histogram] of this.#durations) {
      let cumulative = 0;
      DURATION_BUCKETS_SECONDS.forEach((bound, index) => {
        cumulative += histogram.bucketCounts[index];
        exposition.sample('sluice_http_request_duration_seconds_bucket', { route, le: formatNumber(bound) }, cumulative);
      });
      exposition.sample('sluice_http_request_duration_seconds_bucket', { route, le: '+Inf' }, histogram.count);
      exposition.sample('sluice_http_request_duration_seconds_sum', { route }, histogram.sumSeconds);
      exposition.sample('sluice_http_request_duration_seconds_count', { route }, histogram.count);
    }
  }
}

/** Builds the text of one exposition. */
export class Exposition {
  readonly #lines: string[] = [];

  /** A family's # HELP and # TYPE lines, and its samples when they all share its name. */
  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: Iterable<[Labels | undefined, number]> = []): void {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.sample(name, labels, value);
  }

  sample(name: string, labels: Labels | undefined, value: number): void {
    const pairs = labels === undefined ? [] : Object.entries(labels).map(([label, text]) => `${label}="${escapeLabelValue(text)}"`);
    this.#lines.push(`${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${formatNumber(value)}`);
  }

  text(): string {
    return this.#lines.join('\n') + '\n';
  }
}

const STATES: StatusReport['state'][] = ['starting', 'replaying', 'running', 'stopping', 'stopped'];

/** The whole /metrics text. */
export function formatMetrics(status: StatusReport, http: HttpMetrics, changeStreamsOpen: number): string {
  const out = new Exposition();
  out.family('sluice_state', 'gauge', 'The pipeline\'s state: 1 for the current one.', STATES.map((state) => [{ state }, state === status.state ? 1 : 0]));
  out.family('sluice_uptime_seconds', 'gauge', 'Seconds since the pipeline started.', [[undefined, status.uptimeSeconds]]);
  out.family('sluice_steps_total', 'counter', 'Steps the circuit has run since start.', [[undefined, status.steps]]);
  out.family('sluice_events_processed_total', 'counter', 'Input records the steps have consumed since start.', [[undefined, status.eventsProcessed]]);
  out.family('sluice_step_duration_seconds_last', 'gauge', 'Seconds spent in the last step.', [[undefined, status.lastStepMs / 1000]]);
  out.family('sluice_step_duration_seconds_max', 'gauge', 'Seconds spent in the longest step since start.', [[undefined, status.maxStepMs / 1000]]);

  const tables = status.tables;
  out.family('sluice_table_events_appended_total', 'counter', 'Rows appended to a table since start.', tables.map((t) => [{ table: t.name }, t.eventsAppended]));
  out.family('sluice_table_end_offset', 'gauge', 'The end offset of a table\'s log topic.', tables.map((t) => [{ table: t.name, topic: t.topic }, t.endOffset]));
  out.family('sluice_table_processed_offset', 'gauge', 'The offset of a table\'s log topic that the views have processed up to.', tables.map((t) => [{ table: t.name, topic: t.topic }, t.processedOffset]));
  out.family('sluice_table_lag_records', 'gauge', 'Records in a table\'s log topic not yet processed.', tables.map((t) => [{ table: t.name }, t.lag]));
  out.family('sluice_table_rows', 'gauge', 'Rows in a table.', tables.map((t) => [{ table: t.name }, t.rows]));

  out.family('sluice_source_lag_records', 'gauge', 'Records a source captured into the log that the views have not processed yet.', status.sources.map((s) => [{ source: s.name }, s.lag]));
  out.family('sluice_source_lag_bytes', 'gauge', 'Bytes of WAL (PostgreSQL) or binlog (MySQL) the source database has written beyond what Sluice has captured.', status.sources.flatMap((s): [Labels, number][] => (s.lagBytes === undefined ? [] : [[{ source: s.name }, s.lagBytes]])));
  out.family('sluice_source_lag_seconds', 'gauge', 'How long ago the oldest change captured but not yet in the views was committed at the source (0 when none waits).', status.sources.map((s) => [{ source: s.name }, s.lagSeconds]));
  out.family('sluice_source_rows_captured_total', 'counter', 'Changes a source captured into the log since start.', status.sources.map((s) => [{ source: s.name }, s.rowsCaptured]));
  out.family('sluice_source_snapshot_rows', 'gauge', 'Rows the source\'s initial snapshot has read.', status.sources.flatMap((s): [Labels, number][] => (s.snapshot ? [[{ source: s.name }, s.snapshot.rows]] : [])));
  out.family('sluice_source_snapshot_estimated_rows', 'gauge', 'PostgreSQL\'s estimate of the rows the snapshot reads in all.', status.sources.flatMap((s): [Labels, number][] => (s.snapshot ? [[{ source: s.name }, s.snapshot.estimatedRows]] : [])));
  out.family('sluice_source_failed', 'gauge', '1 when a source\'s capture stopped on an error (see GET /v1/status for why).', status.sources.map((s) => [{ source: s.name }, s.error ? 1 : 0]));

  out.family('sluice_view_rows', 'gauge', 'Rows in a view.', status.views.map((v) => [{ view: v.name }, v.rows]));
  out.family('sluice_view_failed', 'gauge', '1 when a view has no current result (see GET /v1/status for why).', status.views.map((v) => [{ view: v.name }, v.failure ? 1 : 0]));

  out.family(
    'sluice_sink_step', 'gauge', 'The last step a sink has written.',
    status.sinks.flatMap((s): [Labels, number][] => (s.step === undefined ? [] : [[{ sink: s.name, kind: s.kind, view: s.view }, s.step]])),
  );

  out.family('sluice_http_change_streams', 'gauge', 'Change streams (Server-Sent Events) open now.', [[undefined, changeStreamsOpen]]);
  http.write(out);
  return out.text();
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}
