import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { dpopKeys, dpopProof } from '../support/dpop-proof.ts';
import { startJwksServer, type JwksServer } from '../support/jwks-server.ts';

/*
 * concord-verify as a service gets it from npm: the workspace packed (`npm pack`, which builds it),
 * the tarball installed into an empty project outside this repository, and a script there, run by
 * the system's Node (the bundled one when there is none), verifies tokens from a loopback JWKS, a
 * DPoP-bound one with its proof, and finds none of the broker's dependencies.
 */

const REPO = path.resolve(import.meta.dirname, '../..');

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(Object.assign(error, { stdout, stderr })) : resolve({ stdout, stderr }),
    );
  });
}

/** The Node outside node_modules (the system's), else the one running the tests. */
function systemNode(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'node');
    if (dir !== '' && !dir.includes('node_modules') && existsSync(candidate)) return candidate;
  }
  return process.execPath;
}

// Runs in the consumer project: plain JavaScript, ESM, only what `npm install concord-verify` brought.
const CONSUMER_SCRIPT = `
import { createVerifier, VerifyError } from 'concord-verify';
const { ISSUER, AUDIENCE, TOKEN, BOUND_TOKEN, PROOF, HTU } = process.env;
const verify = createVerifier({ issuer: ISSUER, audience: AUDIENCE });
const out = {};
out.claims = await verify(TOKEN);
out.bound = await verify(BOUND_TOKEN, { dpop: { proof: PROOF, method: 'GET', url: HTU } });
try { await verify(BOUND_TOKEN); out.bearer = 'accepted'; } catch (err) { out.bearer = err instanceof VerifyError ? err.code : String(err); }
try { await verify(TOKEN + 'x'); out.tampered = 'accepted'; } catch (err) { out.tampered = err.code; }
out.absent = {};
for (const name of ['oidc-provider', 'koa', 'express', 'ioredis', 'openid-client']) {
  try { import.meta.resolve(name); out.absent[name] = false; } catch { out.absent[name] = true; }
}
console.log(JSON.stringify(out));
`;

describe('concord-verify, packed and installed on its own', () => {
  let dir: string;
  let jwks: JwksServer;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-verify-package-'));
    jwks = await startJwksServer();
  });
  after(async () => {
    await jwks?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // npm pack builds the package (tsc), npm install and a consumer's tsc run: minutes on a busy machine.
  it('installs from its tarball with jose alone and verifies Bearer and DPoP-bound tokens', { timeout: 300_000 }, async () => {
    const packed = await run('npm', ['pack', '-w', 'packages/verify', '--pack-destination', dir, '--json'], { cwd: REPO });
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info!.files.map((f) => f.path).sort();
    assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts') && files.includes('README.md'), files.join(', '));
    assert.ok(!files.some((f) => f.startsWith('src/') || f.endsWith('.ts') && !f.endsWith('.d.ts')), `no TypeScript sources: ${files.join(', ')}`);

    const project = path.join(dir, 'service');
    await mkdir(project);
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'a-service', version: '1.0.0', private: true, type: 'module' }));
    await run('npm', ['install', path.join(dir, info!.filename), '--prefer-offline', '--no-audit', '--no-fund'], { cwd: project });
    const installed = (await readdir(path.join(project, 'node_modules'))).filter((name) => !name.startsWith('.')).sort();
    assert.deepEqual(installed, ['concord-verify', 'jose'], 'jose is its one dependency');
    const manifest = JSON.parse(await readFile(path.join(project, 'node_modules', 'concord-verify', 'package.json'), 'utf8'));
    assert.equal(manifest.version, '0.1.0');

    // A Bearer token, and a DPoP-bound one with a proof by the key it is bound to.
    const token = await jwks.sign();
    const client = await dpopKeys();
    const jwk = await exportJWK(client.publicKey);
    const boundToken = await jwks.sign({ cnf: { jkt: await calculateJwkThumbprint(jwk) } });
    const htu = 'https://orders.example.test/orders';
    const proof = await dpopProof(client, 'GET', htu, boundToken);

    await writeFile(path.join(project, 'check.mjs'), CONSUMER_SCRIPT);
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, ISSUER: jwks.issuer, AUDIENCE: jwks.audience, TOKEN: token, BOUND_TOKEN: boundToken, PROOF: proof, HTU: htu };
    const { stdout } = await run(systemNode(), ['check.mjs'], { cwd: project, env });
    const out = JSON.parse(stdout) as { claims: { iss: string }; bound: { cnf: { jkt: string } }; bearer: string; tampered: string; absent: Record<string, boolean> };
    assert.equal(out.claims.iss, jwks.issuer);
    assert.equal(out.bound.cnf.jkt, await calculateJwkThumbprint(jwk));
    assert.equal(out.bearer, 'dpop_bound', 'a bound token without its proof is refused');
    assert.equal(out.tampered, 'bad_signature');
    assert.deepEqual(out.absent, { 'oidc-provider': true, koa: true, express: true, ioredis: true, 'openid-client': true }, "none of the broker's dependencies");

    // Its declarations serve a strict TypeScript consumer (no allowImportingTsExtensions, no
    // skipLibCheck): the one error is the one made on purpose, so the types are real, not any.
    await writeFile(
      path.join(project, 'typed.ts'),
      [
        "import { createVerifier, concordExpress, concordKoa, type DPoPOptions, type VerifyErrorCode } from 'concord-verify';",
        "const verify = createVerifier({ issuer: 'https://login.example.test', audience: 'https://orders.example.test', dpop: { iatWindow: 30 } });",
        'const window: number = verify.options.dpop.iatWindow;',
        "const options: DPoPOptions = { required: true };",
        "const known: VerifyErrorCode = 'dpop_proof_replayed';",
        "const unknown: VerifyErrorCode = 'no_such_code';",
        'concordKoa(verify);',
        'concordExpress(verify);',
        'export { window, options, known, unknown };',
        '',
      ].join('\n'),
    );
    const compilerOptions = { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2023', noEmit: true, types: ['node'], typeRoots: [path.join(REPO, 'node_modules', '@types')] };
    await writeFile(path.join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['typed.ts'] }));
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const typed = await run(process.execPath, [tsc, '-p', '.'], { cwd: project }).then(
      () => '',
      (err: { stdout: string }) => err.stdout,
    );
    assert.deepEqual(typed.trim().split('\n'), [`typed.ts(6,7): error TS2322: Type '"no_such_code"' is not assignable to type 'VerifyErrorCode'.`]);
  });
});
