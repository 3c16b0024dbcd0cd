// OpenTelemetry traces (design.md "Tracing"): a server span per request, a client span per upstream
// attempt whose context goes upstream in `traceparent`, and a span per token acquisition, exported by
// OTLP/HTTP. The SDK is imported only when an endpoint is configured; without one there is no Tracing
// and the request path pays one undefined check. Spans never carry a token, key or query string.
// Contexts are passed explicitly (no global context manager or propagator is installed).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Context, Span, Tracer } from "@opentelemetry/api";
import type { TracingSettings } from "../config/environment.ts";

export interface UpstreamSpan {
  end(status: number | undefined, error?: string): void;
}

export interface RequestTrace {
  /** Starts the client span of one upstream attempt and writes its `traceparent` into `headers`. */
  startUpstream(method: string, url: URL, headers: OutgoingHttpHeaders): UpstreamSpan;
  end(route: string, status: number, error: string | undefined): void;
}

export interface TokenAcquisitionSpan {
  identity: string;
  scope: string;
  trigger: string;
  result: "success" | "failure";
  error: string;
  /** Epoch ms when the acquisition started and ended. */
  startedAt: number;
  endedAt: number;
}

export interface Tracing {
  /** A server span for an inbound request, continuing the caller's `traceparent` if it sent one. */
  startRequest(method: string, headers: IncomingHttpHeaders): RequestTrace;
  recordTokenAcquisition(span: TokenAcquisitionSpan): void;
  /** Exports what is pending and stops. */
  shutdown(): Promise<void>;
}

export async function createTracing(
  settings: TracingSettings | undefined,
  version: string,
): Promise<Tracing | undefined> {
  if (settings === undefined) return undefined;
  const api = await import("@opentelemetry/api");
  const { W3CTraceContextPropagator } = await import("@opentelemetry/core");
  const { resourceFromAttributes } = await import("@opentelemetry/resources");
  const { TracerProvider, BatchSpanProcessor } = await import("@opentelemetry/sdk-trace");
  const { OTLPTraceExporter } =
    settings.protocol === "http/json"
      ? await import("@opentelemetry/exporter-trace-otlp-http")
      : await import("@opentelemetry/exporter-trace-otlp-proto");
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": "entra-auth-proxy", "service.version": version }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: settings.url }) })],
  });
  const tracer: Tracer = provider.getTracer("entra-auth-proxy", version);
  const propagator = new W3CTraceContextPropagator();
  const { SpanKind, SpanStatusCode, ROOT_CONTEXT, trace, defaultTextMapGetter, defaultTextMapSetter } = api;

  const setStatus = (span: Span, failed: boolean, error?: string) => {
    if (failed)
      span.setStatus(error ? { code: SpanStatusCode.ERROR, message: error } : { code: SpanStatusCode.ERROR });
  };

  return {
    startRequest(method, headers) {
      const parent: Context = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      const span = tracer.startSpan(
        method,
        { kind: SpanKind.SERVER, attributes: { "http.request.method": method } },
        parent,
      );
      const context = trace.setSpan(parent, span);
      return {
        startUpstream(upstreamMethod, url, upstreamHeaders) {
          const client = tracer.startSpan(
            upstreamMethod,
            {
              kind: SpanKind.CLIENT,
              attributes: {
                "http.request.method": upstreamMethod,
                "server.address": url.hostname,
                "server.port": Number(url.port || (url.protocol === "https:" ? 443 : 80)),
              },
            },
            context,
          );
          propagator.inject(trace.setSpan(context, client), upstreamHeaders, defaultTextMapSetter);
          return {
            end(status, error) {
              if (status !== undefined) client.setAttribute("http.response.status_code", status);
              setStatus(client, status === undefined || status >= 500, error);
              client.end();
            },
          };
        },
        end(route, status, error) {
          span.updateName(`${method} ${route}`);
          span.setAttribute("http.route", route);
          span.setAttribute("http.response.status_code", status);
          if (error) span.setAttribute("error.type", error);
          setStatus(span, status >= 500, error);
          span.end();
        },
      };
    },
    recordTokenAcquisition(event) {
      const span = tracer.startSpan(
        "token acquisition",
        {
          kind: SpanKind.CLIENT,
          startTime: event.startedAt,
          attributes: {
            "entra_proxy.identity": event.identity,
            "entra_proxy.scope": event.scope,
            "entra_proxy.trigger": event.trigger,
            "entra_proxy.result": event.result,
          },
        },
        ROOT_CONTEXT,
      );
      if (event.error) span.setAttribute("error.type", event.error);
      setStatus(span, event.result === "failure", event.error);
      span.end(event.endedAt);
    },
    shutdown: () => provider.shutdown(),
  };
}
