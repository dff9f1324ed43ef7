#!/usr/bin/env node
// The `concord` command. In a checkout, Node (>= 22.18, or 23.6) runs the TypeScript sources by
// stripping types; Node refuses to strip types under node_modules, so an installed package runs
// the JavaScript that `npm run build` (run by `prepare`) wrote to dist/.
const installed = import.meta.url.includes('/node_modules/');
const { run } = await import(installed ? '../dist/cli/main.js' : '../src/cli/main.ts');

await run();
