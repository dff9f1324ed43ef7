import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { MODULES, PLANS } from './plans.ts';
import { renderTable, TABLE_PATH } from './write-table.ts';

/**
 * docs/conformance.md is what plans.ts says (conformance.test.ts checks plans.ts against the run),
 * and plans.ts lists the suite's modules, each once, with a reason for every result but a pass.
 */
describe('docs/conformance.md', () => {
  it('is the rendering of test/conformance/plans.ts (run `node test/conformance/write-table.ts`)', () => {
    assert.equal(readFileSync(TABLE_PATH, 'utf8'), renderTable());
  });

  it('lists every module once, under a known plan, with a note; warnings only on warning rows', () => {
    const names = MODULES.map((m) => m.module);
    assert.equal(new Set(names).size, names.length, 'a module is listed twice');
    for (const m of MODULES) {
      assert.ok(m.plan in PLANS, m.module);
      assert.match(m.module, /^oidcc-[a-z0-9-]+$/, m.module);
      assert.ok(m.note.length > 10, `${m.module} has no note`);
      assert.equal(m.expect === 'warning', (m.warnings?.length ?? 0) > 0, `${m.module}: warnings go with the warning result`);
    }
    // The suite's plans at the commit read (plans.ts): 38 + 1 + 11 + 2 modules.
    assert.deepEqual(
      Object.keys(PLANS).map((plan) => MODULES.filter((m) => m.plan === plan).length),
      [38, 1, 11, 2],
    );
  });
});
