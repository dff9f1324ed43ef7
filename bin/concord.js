#!/usr/bin/env node
// The `concord` command. Node (>= 22.18, or 23.6) runs the TypeScript sources directly by stripping types.
import { run } from '../src/cli/main.ts';

await run();
