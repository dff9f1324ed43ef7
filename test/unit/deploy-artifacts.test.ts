import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { startConcord, type TestConcord } from '../support/concord.ts';

/**
 * The operator's artifacts (deploy/grafana, deploy/prometheus, docs/operations.md) against the
 * service: they parse, every metric they name is one a live Concord exports on /metrics (with the
 * labels it has), every alert has its runbook section, and every Concord metric has a panel.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** PromQL functions, aggregations, keywords and modifiers: every other identifier must be a metric. */
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'changes', 'resets', 'histogram_quantile', 'time', 'vector', 'scalar',
  'abs', 'absent', 'absent_over_time', 'clamp_min', 'clamp_max', 'avg_over_time', 'max_over_time', 'min_over_time', 'sum_over_time',
  'label_replace', 'sort', 'sort_desc', 'timestamp', 'predict_linear', 'inf', 'nan',
]);

/** Labels Prometheus adds at scrape time, or that histograms carry. */
const TARGET_LABELS = new Set(['job', 'instance']);

interface Selector {
  metric: string;
  labels: string[];
}

/** The metric selectors of an expression: names (with their label matchers) outside strings, ranges and grouping lists. */
function selectors(expr: string): Selector[] {
  let text = expr
    .replace(/\$\{[^}]*\}|\$\w+/g, 'X') // Grafana variables
    .replace(/\[[^\]]*\]/g, ' '); // range selectors
  // Label matchers: keep the names, drop the values.
  const matchers: string[][] = [];
  text = text.replace(/\{([^}]*)\}/g, (_, inner: string) => {
    const names = [...inner.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)].map((m) => m[1]!);
    matchers.push(names);
    return `#${matchers.length - 1}#`;
  });
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  text = text.replace(/"(?:[^"\\]|\\.)*"/g, ' ');
  const out: Selector[] = [];
  for (const m of text.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)\s*(#(\d+)#)?/g)) {
    const name = m[1]!;
    if (PROMQL_WORDS.has(name)) continue;
    if (/^\d/.test(name)) continue;
    out.push({ metric: name, labels: m[3] === undefined ? [] : matchers[Number(m[3])]! });
  }
  return out;
}

describe('deploy artifacts', () => {
  let concord: TestConcord;
  /** Sample names a live /metrics exports (histograms: _bucket, _sum, _count). */
  const exported = new Set<string>();
  /** Metric family -> its label names (from the live registry). */
  const labelsOf = new Map<string, Set<string>>();
  let dashboard: { panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }>; panels?: unknown[] }>; templating: { list: Array<{ name: string; query?: string | { query: string } }> } };
  let rules: { groups: Array<{ name: string; rules: Rule[] }> };
  let runbook: string;

  before(async () => {
    concord = await startConcord({ logLevel: 'silent', settings: { upstream: { healthInterval: 0 } } });
    const text = await (await fetch(`${concord.adminUrl}/metrics`)).text();
    for (const line of text.split('\n')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (!type) continue;
      const [, name, kind] = type;
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(name! + suffix);
      else if (kind === 'summary') for (const suffix of ['', '_sum', '_count']) exported.add(name! + suffix);
      else exported.add(name!);
      const metric = concord.concord.metrics.registry.getSingleMetric(name!) as unknown as { labelNames?: string[] } | undefined;
      const names = new Set([...(metric?.labelNames ?? []), ...TARGET_LABELS]);
      if (kind === 'histogram') {
        for (const suffix of ['_bucket', '_sum', '_count']) labelsOf.set(name! + suffix, suffix === '_bucket' ? new Set([...names, 'le']) : names);
      } else labelsOf.set(name!, names);
    }
    dashboard = JSON.parse(await readFile(path.join(ROOT, 'deploy/grafana/concord-dashboard.json'), 'utf8')) as typeof dashboard;
    rules = parseYaml(await readFile(path.join(ROOT, 'deploy/prometheus/alerts.yaml'), 'utf8')) as typeof rules;
    runbook = await readFile(path.join(ROOT, 'docs/operations.md'), 'utf8');
  });
  after(() => concord.close());

  const dashboardExprs = () => {
    const exprs: Array<{ where: string; expr: string }> = [];
    const walk = (panels: typeof dashboard.panels) => {
      for (const p of panels) {
        for (const t of p.targets ?? []) exprs.push({ where: `panel "${p.title}"`, expr: t.expr });
        if (p.panels) walk(p.panels as typeof dashboard.panels);
      }
    };
    walk(dashboard.panels);
    return exprs;
  };

  const checkExpr = (where: string, expr: string, recorded: Set<string>) => {
    const found = selectors(expr);
    assert.ok(found.length > 0, `${where}: no metric in ${expr}`);
    for (const { metric, labels } of found) {
      if (recorded.has(metric)) continue;
      assert.ok(exported.has(metric), `${where}: ${metric} is not exported by Concord (${expr.trim().slice(0, 120)})`);
      for (const label of labels) {
        assert.ok(labelsOf.get(metric)?.has(label), `${where}: ${metric} has no label "${label}"`);
      }
    }
  };

  it('the expression checker finds metrics and labels, and refuses unknown ones (so the checks below can fail)', () => {
    assert.deepEqual(selectors('sum by (participant) (rate(concord_login_total{participant!="unknown",outcome=~"a|b"}[5m])) / on (x) up'), [
      { metric: 'concord_login_total', labels: ['participant', 'outcome'] },
      { metric: 'up', labels: [] },
    ]);
    assert.deepEqual(selectors('histogram_quantile(0.95, sum by (le) (rate(concord_http_request_duration_seconds_bucket{route!~"/assets.*"}[$__rate_interval]))) > 2 * 86400'), [
      { metric: 'concord_http_request_duration_seconds_bucket', labels: ['route'] },
    ]);
    assert.throws(() => checkExpr('t', 'rate(concord_logins_total[5m])', new Set()), /concord_logins_total is not exported/);
    assert.throws(() => checkExpr('t', 'concord_upstream_up{endpoint="x"}', new Set()), /has no label "endpoint"/);
    assert.throws(() => checkExpr('t', 'concord_login_duration_seconds_bucket{le="1"} + concord_login_duration_seconds', new Set()), /concord_login_duration_seconds is not exported/);
  });

  it('the dashboard parses and names only metrics (and labels) that Concord exports', () => {
    assert.equal(typeof dashboard.panels, 'object');
    const exprs = dashboardExprs();
    assert.ok(exprs.length >= 20, `only ${exprs.length} queries`);
    for (const { where, expr } of exprs) checkExpr(where, expr, new Set());
    for (const variable of dashboard.templating.list) {
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
      const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(query ?? '');
      if (variable.name === 'datasource') continue;
      assert.ok(m, `variable ${variable.name}: ${query}`);
      assert.ok(exported.has(m[1]!), `variable ${variable.name}: ${m[1]} is not exported`);
      assert.ok(labelsOf.get(m[1]!)?.has(m[2]!), `variable ${variable.name}: ${m[1]} has no label ${m[2]}`);
    }
  });

  it('every Concord metric has a panel, and login, upstream and participant panels filter by participant', () => {
    const used = new Set(dashboardExprs().flatMap(({ expr }) => selectors(expr).map((s) => s.metric.replace(/_(bucket|sum|count)$/, ''))));
    const families = [...exported].filter((n) => n.startsWith('concord_')).map((n) => n.replace(/_(bucket|sum|count)$/, ''));
    for (const family of new Set(families)) assert.ok(used.has(family), `no panel shows ${family}`);
    for (const { where, expr } of dashboardExprs()) {
      if (/concord_(login|upstream)_/.test(expr) && !/concord_tokens/.test(expr)) assert.match(expr, /participant=~"\$participant"/, `${where} does not follow the participant selector`);
    }
  });

  it('the alert rules parse and name only metrics that Concord exports (or that the file records)', () => {
    assert.ok(Array.isArray(rules.groups) && rules.groups.length > 0);
    const recorded = new Set(rules.groups.flatMap((g) => g.rules.filter((r) => r.record).map((r) => r.record!)));
    for (const name of recorded) assert.match(name, /^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/, `recording rule name ${name} (level:metric:operations)`);
    for (const group of rules.groups) {
      assert.ok(Array.isArray(group.rules) && group.rules.length > 0, group.name);
      for (const rule of group.rules) {
        assert.ok(Boolean(rule.alert) !== Boolean(rule.record), `${group.name}: a rule is either an alert or a recording rule`);
        assert.equal(typeof rule.expr, 'string');
        checkExpr(`${group.name}/${rule.alert ?? rule.record}`, rule.expr, recorded);
        // Balanced parentheses, a cheap syntax check without promtool.
        let depth = 0;
        for (const c of rule.expr.replace(/"(?:[^"\\]|\\.)*"/g, '')) {
          if (c === '(') depth++;
          if (c === ')') depth--;
          assert.ok(depth >= 0, `${rule.alert ?? rule.record}: unbalanced parentheses`);
        }
        assert.equal(depth, 0, `${rule.alert ?? rule.record}: unbalanced parentheses`);
        if (rule.for) assert.match(rule.for, /^\d+[smhd]$/);
      }
    }
  });

  it('has the alerts the runbook promises: multiwindow burn rates per participant, upstream down, sync lag, keys, domain proof', () => {
    const alerts = new Map(rules.groups.flatMap((g) => g.rules.filter((r) => r.alert).map((r) => [r.alert!, r] as const)));
    for (const name of ['ConcordLoginAvailabilityBurnRateCritical', 'ConcordLoginAvailabilityBurnRateWarning', 'ConcordUpstreamDown', 'ConcordConfigSyncLagHigh', 'ConcordSigningKeyRotationOverdue', 'ConcordSigningKeyNearMaxAge', 'ConcordDomainProofMissing', 'ConcordDomainSuspended']) {
      assert.ok(alerts.has(name), `no alert ${name}`);
    }
    // Multiwindow: each burn-rate alert pairs a long and a short window, per participant.
    for (const name of ['ConcordLoginAvailabilityBurnRateCritical', 'ConcordLoginAvailabilityBurnRateWarning']) {
      const expr = alerts.get(name)!.expr;
      const windows = [...expr.matchAll(/ratio_rate(\d+[mhd])/g)].map((m) => m[1]);
      assert.ok(new Set(windows).size >= 4, `${name}: windows ${windows.join(', ')}`);
    }
    const recordedByParticipant = rules.groups.flatMap((g) => g.rules).filter((r) => r.record?.includes('login_errors'));
    assert.ok(recordedByParticipant.length >= 4 && recordedByParticipant.every((r) => /sum by \(participant\)/.test(r.expr)));
    assert.match(alerts.get('ConcordUpstreamDown')!.expr, /concord_upstream_up/);
    for (const [name, rule] of alerts) {
      assert.ok(['critical', 'warning', 'info'].includes(rule.labels?.severity ?? ''), `${name}: severity`);
      assert.ok(rule.annotations?.summary, `${name}: summary`);
    }
  });

  // promtool (Prometheus' own checker) is not a dependency: where it is installed, it checks the
  // PromQL and runs the alert unit tests of deploy/prometheus/alerts.test.yaml.
  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  it('passes promtool check rules and promtool test rules', { skip: promtool.status === 0 ? false : 'promtool is not installed' }, () => {
    const cwd = path.join(ROOT, 'deploy/prometheus');
    const check = spawnSync('promtool', ['check', 'rules', 'alerts.yaml'], { cwd, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const test = spawnSync('promtool', ['test', 'rules', 'alerts.test.yaml'], { cwd, encoding: 'utf8' });
    assert.equal(test.status, 0, test.stdout + test.stderr);
  });

  it('links each alert to its own section of docs/operations.md, which shows the commands to run', () => {
    const anchors = new Set(
      [...runbook.matchAll(/^#{2,4} (.+)$/gm)].map((m) =>
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const group of rules.groups) {
      for (const rule of group.rules.filter((r) => r.alert)) {
        const url = rule.annotations?.runbook_url ?? '';
        const m = /^docs\/operations\.md#([\w-]+)$/.exec(url);
        assert.ok(m, `${rule.alert}: runbook_url ${url}`);
        assert.ok(anchors.has(m[1]!), `${rule.alert}: no section #${m[1]} in docs/operations.md`);
        const section = runbook.split(/^#{2,4} /m).find((s) => s.toLowerCase().startsWith(rule.alert!.toLowerCase()));
        assert.ok(section && /```/.test(section), `${rule.alert}: its runbook section has no commands`);
      }
    }
    for (const command of ['concord participants list', 'concord participants disable', 'concord keys rotate', 'concord audit', '/readyz', '/metrics']) {
      assert.ok(runbook.includes(command), `the runbook never shows ${command}`);
    }
  });
});
