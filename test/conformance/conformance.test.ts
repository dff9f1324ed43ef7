import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Findings, startHarness, type Harness } from './harness.ts';
import { BASIC_MODULES, codeReusedAfter30Seconds, codeUsedOnce, type ModuleRun } from './modules-basic.ts';
import { BACKCHANNEL_MODULES, discoveryEndpointVerification, LOGOUT_MODULES } from './modules-logout.ts';
import { MODULES, PLANS, type ModuleDefinition } from './plans.ts';

/**
 * The OpenID Foundation's OP test plans (plans.ts), run against one Concord with its partner IdPs:
 * one named test per module, which must give the result plans.ts declares, warnings included.
 */

let h: Harness;
let earlyCodeUse: ReturnType<typeof codeUsedOnce> | undefined;

const RUNS: Record<string, ModuleRun> = {
  ...BASIC_MODULES,
  ...LOGOUT_MODULES,
  ...BACKCHANNEL_MODULES,
  'oidcc-discovery-endpoint-verification': (harness, findings) => discoveryEndpointVerification(harness, findings),
  'oidcc-codereuse-30seconds': async (harness, findings) => codeReusedAfter30Seconds(harness, findings, await earlyCodeUse!),
};

/** Runs a module and checks its outcome is the one plans.ts declares. */
async function runModule(def: ModuleDefinition): Promise<void> {
  const run = RUNS[def.module];
  assert.ok(run, `no implementation of ${def.module}`);
  const findings = new Findings();
  await run(h, findings);
  const warned = findings.conditions();
  const details = findings.warnings.map((w) => `${w.condition}: ${w.detail}`).join('\n');
  if (def.expect === 'passed') assert.deepEqual(warned, [], `${def.module} was to pass, but warned:\n${details}`);
  else assert.deepEqual(warned, [...(def.warnings ?? [])].sort(), `${def.module}'s warnings differ from plans.ts:\n${details}`);
}

describe('OpenID Foundation conformance plans', () => {
  before(async () => {
    h = await startHarness();
    // oidcc-codereuse-30seconds waits 30 s after a code's first use: that first use is made now,
    // so the wait passes while the other modules run.
    earlyCodeUse = codeUsedOnce(h);
    earlyCodeUse.catch(() => undefined);
  });
  after(async () => {
    await h?.close();
  });

  it('implements exactly the runnable modules of the plans', () => {
    const runnable = MODULES.filter((m) => m.expect !== 'not supported').map((m) => m.module).sort();
    assert.deepEqual(Object.keys(RUNS).sort(), runnable);
  });

  for (const plan of Object.keys(PLANS) as Array<keyof typeof PLANS>) {
    describe(PLANS[plan].name, () => {
      // The 30-second module last: its wait is then mostly over.
      const modules = MODULES.filter((m) => m.plan === plan && m.expect !== 'not supported');
      const ordered = [...modules.filter((m) => m.module !== 'oidcc-codereuse-30seconds'), ...modules.filter((m) => m.module === 'oidcc-codereuse-30seconds')];
      for (const def of ordered) {
        it(def.module, () => runModule(def));
      }
    });
  }
});
