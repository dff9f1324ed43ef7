import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Apache httpd with mod_auth_openidc (Debian's apache2 and libapache2-mod-auth-openidc, installed by
 * .ci/run without starting or enabling the system service) run privately: its own ServerRoot and
 * configuration in a temporary directory, a loopback port, one process in the foreground (`-X`).
 * It protects /protected/ as a relying party of `issuer`; /protected/claims is a CGI script that
 * prints what mod_auth_openidc handed the application (REMOTE_USER, the OIDC_CLAIM_* variables and
 * headers). Nothing of /etc/apache2 is read.
 */

export const APACHE = '/usr/sbin/apache2';
export const MODULES_DIR = '/usr/lib/apache2/modules';
export const MOD_AUTH_OPENIDC = path.join(MODULES_DIR, 'mod_auth_openidc.so');

/** Whether this machine can run it (the tests say so and skip otherwise). */
export function apacheOpenidcMissing(): string | undefined {
  for (const file of [APACHE, MOD_AUTH_OPENIDC, path.join(MODULES_DIR, 'mod_mpm_prefork.so'), path.join(MODULES_DIR, 'mod_cgi.so')]) {
    if (!fs.existsSync(file)) return `${file} is not installed (apt-get install apache2 libapache2-mod-auth-openidc)`;
  }
  return undefined;
}

export interface ApacheRp {
  /** http://127.0.0.1:{port} */
  origin: string;
  /** The page mod_auth_openidc protects: it prints what the application got. */
  protectedUrl: string;
  /** mod_auth_openidc's redirect URI (register it at the OP). */
  redirectUri: string;
  /** Its error log so far. */
  errorLog(): string;
  close(): Promise<void>;
}

export interface ApacheRpOptions {
  port: number;
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Further mod_auth_openidc directives (e.g. OIDCIDTokenSignedResponseAlg). */
  extra?: string[];
}

const CLAIMS_CGI = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
env | grep -E '^(REMOTE_USER|OIDC_|HTTP_OIDC_)' | sort
`;

/** The redirect URI an Apache RP on `port` will use (known before it starts, to register it). */
export const apacheRedirectUri = (port: number) => `http://127.0.0.1:${port}/protected/redirect_uri`;

export async function startApacheRp(options: ApacheRpOptions): Promise<ApacheRp> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-apache-'));
  // Apache drops to `nobody` to serve: the CGI script and the logs must be reachable by it.
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'cgi'), { mode: 0o755 });
  fs.mkdirSync(path.join(dir, 'run'), { mode: 0o777 });
  fs.writeFileSync(path.join(dir, 'cgi', 'claims'), CLAIMS_CGI, { mode: 0o755 });
  const origin = `http://127.0.0.1:${options.port}`;
  const load = (name: string, file: string) => `LoadModule ${name} ${path.join(MODULES_DIR, file)}`;
  const conf = [
    `ServerRoot "${dir}"`,
    'ServerName 127.0.0.1',
    `Listen 127.0.0.1:${options.port}`,
    `PidFile "${dir}/run/httpd.pid"`,
    `DefaultRuntimeDir "${dir}/run"`,
    `ErrorLog "${dir}/error.log"`,
    'LogLevel warn auth_openidc:info',
    // One process serves one connection at a time (-X): a browser's idle keep-alive would hold it.
    'KeepAlive Off',
    load('mpm_prefork_module', 'mod_mpm_prefork.so'),
    load('authn_core_module', 'mod_authn_core.so'),
    load('authz_core_module', 'mod_authz_core.so'),
    load('authz_user_module', 'mod_authz_user.so'),
    load('alias_module', 'mod_alias.so'),
    load('cgi_module', 'mod_cgi.so'),
    `LoadModule auth_openidc_module ${MOD_AUTH_OPENIDC}`,
    'User nobody',
    'Group nogroup',
    `OIDCProviderMetadataURL ${options.issuer}/.well-known/openid-configuration`,
    `OIDCClientID ${options.clientId}`,
    `OIDCClientSecret ${options.clientSecret}`,
    `OIDCRedirectURI ${apacheRedirectUri(options.port)}`,
    `OIDCCryptoPassphrase ${randomBytes(24).toString('hex')}`,
    'OIDCScope "openid email profile"',
    // Concord requires PKCE of every client; mod_auth_openidc sends none unless told.
    'OIDCPKCEMethod S256',
    'OIDCProviderTokenEndpointAuth client_secret_basic',
    'OIDCPassClaimsAs both',
    // The tests' browser is fetch(), whose requests always say Sec-Fetch-Mode: cors; by default
    // mod_auth_openidc takes that for a script's request and answers 401 instead of sending it to the
    // OP. Its documented override: only X-Requested-With: XMLHttpRequest counts as a script.
    `OIDCUnAuthAction 401 "%{HTTP:X-Requested-With} == 'XMLHttpRequest'"`,
    ...(options.extra ?? []),
    `ScriptAlias /protected/ "${dir}/cgi/"`,
    `<Directory "${dir}/cgi">`,
    '  Options +ExecCGI',
    '</Directory>',
    '<Location /protected/>',
    '  AuthType openid-connect',
    '  Require valid-user',
    '</Location>',
    '',
  ].join('\n');
  const confPath = path.join(dir, 'httpd.conf');
  fs.writeFileSync(confPath, conf);

  let output = '';
  const child: ChildProcess = spawn(APACHE, ['-d', dir, '-f', confPath, '-X'], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
  child.stdout?.on('data', (c: Buffer) => (output += String(c)));
  child.stderr?.on('data', (c: Buffer) => (output += String(c)));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  // Ready when it answers on its port (the protected page redirects to the OP).
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      const log = errorLog();
      await close();
      throw new Error(`apache2 exited (${child.exitCode}): ${output}\n${log}`);
    }
    try {
      await fetch(`${origin}/`, { redirect: 'manual', signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        await close();
        throw new Error(`apache2 did not answer on ${origin}: ${output}\n${errorLog()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { origin, protectedUrl: `${origin}/protected/claims`, redirectUri: apacheRedirectUri(options.port), errorLog, close };
}
