/** The HTTP API: `serve(handle, options)` starts it over a running pipeline. */
export { serve, errorResponse } from './http.ts';
export type { ServeOptions, Server } from './http.ts';
export { parseEvents } from './request-body.ts';
export { formatMetrics, METRICS_CONTENT_TYPE } from './metrics.ts';
