import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';

/**
 * Dependencies between the parts of src/ point one way (routes -> domain -> store): the folder
 * import graph has no cycle, and the lower parts never import the parts that serve HTTP routes.
 * Read from the sources' import and export statements (type-only ones included: a type import is
 * still a dependency of the reader on the writer's words).
 */
const SRC = join(import.meta.dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** part -> the other parts it imports from, each with one file that does so (for the message). */
function partGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(SRC)) {
    const rel = relative(SRC, file).split(sep);
    if (rel.length < 2) continue; // app.ts, main.ts, errors.ts: the top, which may import anything
    const part = rel[0]!;
    const edges = graph.get(part) ?? new Map<string, string>();
    graph.set(part, edges);
    for (const match of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'\.\.\/([a-z-]+)\//gm)) {
      const target = match[1]!;
      if (target !== part && !edges.has(target)) edges.set(target, relative(SRC, file));
    }
  }
  return graph;
}

function findCycle(graph: Map<string, Map<string, string>>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'visiting') return [...path.slice(path.indexOf(node)), node];
    state.set(node, 'visiting');
    path.push(node);
    for (const next of graph.get(node)?.keys() ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

/** The parts that answer HTTP routes of their own (pages, admin API, console). */
const ROUTES = ['interactions', 'admin', 'console'];

/** Parts that must not depend on the given ones: the knots once tied here, and the store at the bottom. */
const FORBIDDEN: Record<string, string[]> = {
  store: ['*'],
  upstream: ['participants', 'sessions', 'provider', ...ROUTES],
  observability: ['provider', 'sessions', 'participants', 'http', ...ROUTES],
  provider: ROUTES,
  sessions: ['provider', ...ROUTES],
  participants: ['provider', 'sessions', ...ROUTES],
  pages: ['provider', 'http', ...ROUTES],
  keys: ['provider', ...ROUTES],
  mapping: ['participants', 'upstream', 'provider', ...ROUTES],
};

describe('layers: dependencies between the parts of src/ point one way', () => {
  const graph = partGraph();

  it('reads the parts it expects (the check would pass vacuously on a moved tree)', () => {
    for (const part of ['store', 'upstream', 'observability', 'provider', 'interactions', 'sessions']) assert.ok(graph.has(part), part);
    assert.ok(graph.get('interactions')!.has('provider'), 'the routes use the provider part');
  });

  it('has no cycle between parts', () => {
    const cycle = findCycle(graph);
    assert.equal(cycle, undefined, cycle && `cycle ${cycle.join(' -> ')} (${cycle.slice(0, -1).map((p, i) => graph.get(p)!.get(cycle[i + 1]!)).join(', ')})`);
  });

  for (const [part, forbidden] of Object.entries(FORBIDDEN)) {
    it(`${part} imports none of ${forbidden.join(', ')}`, () => {
      const wrong = [...(graph.get(part) ?? new Map<string, string>())].filter(([target]) => forbidden.includes('*') || forbidden.includes(target));
      assert.deepEqual(wrong.map(([target, file]) => `${file} -> ${target}`), []);
    });
  }

  it('finds a cycle and a forbidden edge when there is one (the checks can fail)', () => {
    const knotted = new Map([...graph].map(([k, v]) => [k, new Map(v)]));
    knotted.get('observability')!.set('interactions', 'observability/instrument.ts');
    assert.deepEqual(findCycle(knotted)?.at(0), findCycle(knotted)?.at(-1));
    assert.ok(findCycle(knotted)!.includes('interactions'));
  });
});
