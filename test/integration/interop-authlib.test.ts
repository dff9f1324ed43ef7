import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DEMO_PASSWORD } from '../../demo/partner-idp.ts';
import { startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';

/**
 * A relying party nobody here wrote: Authlib (Debian's python3-authlib, installed by .ci/run), in a
 * Python process of its own (test/support/authlib-rp.py). It discovers Concord, sends the user with
 * PKCE S256, exchanges the code and verifies the ID token itself; the user's part is a real brokered
 * login (Concord's page, Acme's password page) in this test's browser.
 */

const PYTHON = '/usr/bin/python3'; // Debian's, where python3-authlib is (not a pyenv or venv one first on PATH)
const SCRIPT = fileURLToPath(new URL('../support/authlib-rp.py', import.meta.url));
const REDIRECT_URI = 'http://127.0.0.1:9999/authlib/callback';
const CLIENT = {
  client_id: 'authlib-rp',
  client_name: 'Authlib RP',
  client_secret: 'authlib-rp-secret-0123456789abcdef',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code'],
  skip_consent: true,
};

/** The Python RP, line by line: what it printed, and a way to answer it. */
function startRp(issuer: string) {
  const child = spawn(PYTHON, [SCRIPT], {
    env: { ...process.env, ISSUER: issuer, CLIENT_ID: CLIENT.client_id, CLIENT_SECRET: CLIENT.client_secret, REDIRECT_URI, AUTHLIB_INSECURE_TRANSPORT: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += String(c)));
  let stdout = '';
  let wake: (() => void) | undefined;
  child.stdout.on('data', (c: Buffer) => {
    stdout += String(c);
    wake?.();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  void exited.then(() => wake?.());
  let done = false;
  void exited.then(() => (done = true));
  return {
    /** The next JSON line the RP printed. */
    async next(): Promise<Record<string, unknown>> {
      while (!stdout.includes('\n')) {
        if (done) assert.fail(`the Authlib RP stopped: exit ${await exited}: ${stderr}`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const at = stdout.indexOf('\n');
      const line = stdout.slice(0, at);
      stdout = stdout.slice(at + 1);
      return JSON.parse(line) as Record<string, unknown>;
    },
    answer: (text: string) => child.stdin.write(`${text}\n`),
    exited,
    stderr: () => stderr,
    kill: () => child.kill(),
  };
}

describe('interop: Authlib (Python) as the relying party', { skip: existsSync(PYTHON) ? false : `${PYTHON} is not installed` }, () => {
  let fed: Federation;
  let rp: ReturnType<typeof startRp> | undefined;

  before(async () => {
    fed = await startFederation({ port: await freePort(), clients: [CLIENT] });
  });
  after(async () => {
    rp?.kill(); // also when the test failed or timed out half-way
    await fed.close();
  });

  it('signs a user in through Acme with PKCE, and verifies Concord’s ID token and userinfo itself', async () => {
    const python = startRp(fed.concord.issuer);
    rp = python;
    const { authorization_url: url } = (await python.next()) as { authorization_url: string };
    const request = new URL(url);
    assert.equal(request.origin + request.pathname, `${fed.concord.issuer}/auth`);
    assert.equal(request.searchParams.get('code_challenge_method'), 'S256', 'Authlib sends PKCE S256');
    assert.ok(request.searchParams.get('nonce'));

    // The user: Concord's login page (email), Acme's (password), back to the RP's redirect URI.
    const browser = new Browser();
    const stopAt = (u: URL) => u.href.startsWith(REDIRECT_URI);
    let page = await browser.get(url, { stopAt });
    const emailForm = parseForm(page.body, '/login');
    page = await browser.post(new URL(emailForm.action, page.url), { ...emailForm.fields, email: 'alice@acme.example' }, { stopAt });
    assert.equal(page.url.origin, fed.acme.issuer, 'on to Acme');
    const passwordForm = parseForm(page.body, '/login');
    page = await browser.post(new URL(passwordForm.action, page.url), { ...passwordForm.fields, username: 'alice@acme.example', password: DEMO_PASSWORD }, { stopAt });
    const callback = page.stoppedAt;
    assert.ok(callback && callback.searchParams.get('code'), `no code for the RP: ${page.status} ${page.url.href}`);

    python.answer(callback.href);
    const result = (await python.next()) as { id_token_header: { alg: string; kid?: string }; id_token_claims: Record<string, unknown>; userinfo: Record<string, unknown> };
    assert.equal(await python.exited, 0, python.stderr());
    const alice = fed.acme.users.find((u) => u.email === 'alice@acme.example')!;
    assert.equal(result.id_token_claims.iss, fed.concord.issuer);
    assert.equal(result.id_token_claims.aud, CLIENT.client_id);
    assert.equal(result.id_token_claims.sub, `acme:${alice.sub}`);
    assert.equal(result.id_token_claims.email, 'alice@acme.example');
    assert.ok(result.id_token_header.kid, 'the ID token names its key');
    assert.equal(result.userinfo.sub, `acme:${alice.sub}`);
    assert.equal(result.userinfo.name, alice.name);
  });
});
