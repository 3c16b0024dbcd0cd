// The one writer of the proxy's own responses (application/problem+json), for requests that reached
// the front door and for raw sockets Node's parser refused alike, with one fixed set of headers.
import type { ServerResponse } from "node:http";
import helmet from "helmet";
import { ERROR_CATALOGUE, type ProxyError } from "../errors.ts";

/**
 * helmet's security headers, taken once: its default middleware sets the same headers on every
 * response whatever the request, so running it per response would only repeat the work.
 */
function helmetHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const collector = {
    setHeader(name: string, value: string) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  helmet()({} as never, collector as never, () => {});
  return headers;
}

/** Every problem response carries exactly these, plus its own Content-Type and X-Request-Id. */
export const PROBLEM_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  ...helmetHeaders(),
  "cache-control": "no-store",
});

const CONTENT_TYPE = "application/problem+json; charset=utf-8";

export function writeProblem(res: ServerResponse, problem: ProxyError, requestId: string): void {
  const body = JSON.stringify(problem.toProblem(requestId));
  res.writeHead(problem.status, {
    ...PROBLEM_HEADERS,
    ...problem.headers,
    "content-type": CONTENT_TYPE,
    "content-length": Buffer.byteLength(body),
    "x-request-id": requestId,
  });
  res.end(res.req?.method === "HEAD" ? undefined : body);
}

/** The raw HTTP/1.1 bytes of a problem response for a socket that never became a request. */
export function rawProblem(problem: ProxyError, requestId: string): string {
  const body = JSON.stringify(problem.toProblem(requestId));
  const lines = [`HTTP/1.1 ${problem.status} ${ERROR_CATALOGUE[problem.code].title}`];
  for (const [name, value] of Object.entries(PROBLEM_HEADERS)) lines.push(`${name}: ${value}`);
  lines.push(
    `content-type: ${CONTENT_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${requestId}`,
    "connection: close",
    "",
    body,
  );
  return lines.join("\r\n");
}
