import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { demoBanner, demoPorts, startDemo, type Demo } from '../../demo/run.ts';
import { freePorts } from '../support/ports.ts';

/*
 * `npm run demo`'s banner: every link it prints answers (no 404 to start with), and the port
 * layout is the one the README tells (DEMO_BASE_PORT=N: the service, the page to open, at N+2).
 */

describe('npm run demo: the banner', () => {
  let demo: Demo;
  let base: number;
  before(async () => {
    base = await freePorts(6);
    demo = await startDemo({ basePort: base, logLevel: 'silent' });
  });
  after(async () => {
    await demo?.close();
  });

  it('every link it prints answers, the admin API with the token it prints', async () => {
    const banner = demoBanner(demo);
    const links = [...banner.matchAll(/https?:\/\/[^\s)]+/g)].map((m) => m[0]).filter((url) => !banner.includes(`CONCORD_ADMIN_URL=${url}`));
    assert.ok(links.length >= 7, banner);
    const token = /Bearer (\S+?)\)/.exec(banner)?.[1];
    assert.equal(token, demo.adminToken);
    for (const link of links) {
      const admin = link.startsWith(demo.adminUrl);
      const response = await fetch(link, { headers: admin ? { authorization: `Bearer ${token}` } : {}, redirect: 'manual' });
      assert.ok(response.status >= 200 && response.status < 400, `${link}: ${response.status}`);
    }
    assert.ok(links.includes(`http://localhost:${base + 2}`), 'the service to open is at N+2');
  });

  it('puts each part where the README says DEMO_BASE_PORT=N puts it', async () => {
    const readme = await readFile(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const ports = demoPorts(100);
    assert.match(readme, /Concord at N, its admin API at N\+1, the demo service\s+\(the page to open\) at N\+2, and the Acme, Globex and Initech IdPs at N\+3, N\+4 and N\+5/);
    assert.deepEqual(ports, { concord: 100, admin: 101, service: 102, acme: 103, globex: 104, initech: 105 });
    assert.equal(new URL(demo.serviceUrl).port, String(base + 2));
    assert.equal(new URL(demo.adminUrl).port, String(base + 1));
  });
});
