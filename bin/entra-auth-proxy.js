#!/usr/bin/env node
// Launcher: the published package runs the compiled JS in dist/ (Node does not strip types
// under node_modules); a source checkout without a build runs src/ directly on Node 24.
import { existsSync } from "node:fs";

const compiled = new URL("../dist/main.js", import.meta.url);
const source = new URL("../src/main.ts", import.meta.url);
const { main } = await import(existsSync(compiled) ? compiled.href : source.href);
process.exitCode = await main(process.argv.slice(2));
