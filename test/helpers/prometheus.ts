// Prometheus text exposition parsed by parse-prometheus-text-format. That parser folds the series of
// a labelled histogram into one object and drops their labels, so samples are read a second time
// with the TYPE lines removed: each sample line then stands alone with all its labels.
import parsePrometheusTextFormat from "parse-prometheus-text-format";

export interface MetricFamily {
  name: string;
  help: string;
  type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
}

export interface Sample {
  /** As exposed, e.g. entra_proxy_request_duration_seconds_bucket. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  families: Map<string, MetricFamily>;
  samples: Sample[];
}

interface RawFamily {
  name: string;
  help: string;
  type: MetricFamily["type"];
  metrics: Array<{ labels?: Record<string, string>; value?: string }>;
}

export function parseMetrics(text: string): ParsedMetrics {
  const typed = parsePrometheusTextFormat(text) as RawFamily[];
  const untyped = parsePrometheusTextFormat(
    text
      .split("\n")
      .filter((l) => !l.startsWith("# TYPE "))
      .join("\n"),
  ) as RawFamily[];
  const families = new Map(typed.map((f) => [f.name, { name: f.name, help: f.help, type: f.type }]));
  const samples = untyped.flatMap((f) =>
    f.metrics.map((m) => ({ name: f.name, labels: m.labels ?? {}, value: Number(m.value) })),
  );
  return { families, samples };
}

/** The label names of a family's samples (histograms: of their _count series). */
export function labelSets(parsed: ParsedMetrics, family: string): string[][] {
  const f = parsed.families.get(family);
  const sampleName = f?.type === "HISTOGRAM" || f?.type === "SUMMARY" ? `${family}_count` : family;
  return parsed.samples.filter((s) => s.name === sampleName).map((s) => Object.keys(s.labels).sort());
}
