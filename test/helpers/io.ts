// A CliIO that captures what a command writes.
import type { CliIO } from "../../src/commands/cli.ts";

export interface CapturedIO extends CliIO {
  out: () => string;
  err: () => string;
}

export function captureIO(env: NodeJS.ProcessEnv = {}): CapturedIO {
  let out = "";
  let err = "";
  return {
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (err += text) },
    env,
    out: () => out,
    err: () => err,
  };
}
