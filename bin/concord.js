#!/usr/bin/env node
// The `concord` command: the JavaScript that `npm run build` compiles to dist/ (run by `prepare`, so
// `npm ci`, `npm install` and `npm pack` make it), on any Node from 20.19 on: the system's Node will
// do, whether Concord is installed as a package or run from a checkout. The broker itself runs on
// the Node 24 that `npm ci` brings (package.json devDependency `node`) or the Docker image's.
import { existsSync } from 'node:fs';

const MINIMUM = [20, 19];
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < MINIMUM[0] || (major === MINIMUM[0] && minor < MINIMUM[1])) {
  process.stderr.write(`concord: needs Node ${MINIMUM.join('.')} or later; this is Node ${process.versions.node}\n`);
  process.exit(1);
}
const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('concord: dist/ is missing (a source checkout not built yet): run `npm run build`, then try again\n');
  process.exit(1);
}
const { run } = await import(entry.href);
await run();
