/**
 * A real LemonLDAP::NG portal (Debian's `liblemonldap-ng-portal-perl` 2.16) acting as an OpenID
 * Connect provider, run privately for one test: its own `lemonldap-ng.ini` and File configuration
 * backend (`conf/lmConf-1.json`) in a temporary directory, sessions in files there, its PSGI app
 * served by `plackup` on a free port of 127.0.0.1 over http. The system-wide configuration
 * (/etc/lemonldap-ng, /var/lib/lemonldap-ng) is never read or written, and no service is involved.
 *
 *   const llng = await startLemonLdap({ concordIssuer, participantId: 'badwolf', clientId, clientSecret });
 *   llng.issuer   // 'http://127.0.0.1:{port}/' (LLNG's default issuer: its portal URL, trailing slash)
 *   await llng.close();
 *
 * Users are the portal's built-in Demo backend (Lemonldap::NG::Portal::UserDB::Demo): dwho, rtyler
 * and msmith, password = login, mail `{login}@badwolf.org`, cn their full name, and Demo groups.
 * Concord is registered as one relying party: authorization code flow with PKCE required, ID token
 * signed RS256 with a key generated here, the broker callback and the upstream-logout return as its
 * redirect URIs, and the claims of the `email`, `profile` and `groups` scopes served, as LLNG does
 * by default (OIDC Core 5.4), at the userinfo endpoint only.
 *
 * Install (what .ci/run does): `apt-get install --no-install-recommends liblemonldap-ng-portal-perl
 * libio-string-perl libstring-random-perl libgd-securityimage-perl libimage-magick-perl`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';

const HOST = '127.0.0.1';
/** Perl loads the whole portal before it answers: generous, for a machine shared by several test runs. */
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;
/** Bind races with another process for the free port we picked: try again on another port. */
const PORT_ATTEMPTS = 3;
const PORTAL_PSGI = '/usr/share/lemonldap-ng/portal/htdocs/index.psgi';
const TEMPLATE_DIR = '/usr/share/lemonldap-ng/portal/templates';

/** The Demo backend's accounts (Lemonldap::NG::Portal::UserDB::Demo), password = login. */
export const LLNG_DEMO_USERS = {
  dwho: { password: 'dwho', mail: 'dwho@badwolf.org', cn: 'Doctor Who', groups: ['timelords', 'users'] },
  rtyler: { password: 'rtyler', mail: 'rtyler@badwolf.org', cn: 'Rose Tyler', groups: ['earthlings', 'users'] },
  msmith: { password: 'msmith', mail: 'msmith@badwolf.org', cn: 'Mickey Smith', groups: ['earthlings', 'users'] },
} as const;

/** The email domain of the Demo users. */
export const LLNG_DEMO_DOMAIN = 'badwolf.org';

export interface LemonLdapOptions {
  /** Concord's issuer, e.g. `http://127.0.0.1:4000`: the redirect URIs are under `{concordIssuer}/broker/{participantId}/`. */
  concordIssuer: string;
  participantId: string;
  /** Concord's client id at LLNG. */
  clientId: string;
  clientSecret: string;
  /**
   * How LLNG signs its ID tokens for Concord (oidcRPMetaDataOptionsIDTokenSignAlg). Default RS256;
   * LLNG's Manager proposes HS512 for a new RP, which Concord refuses.
   */
  idTokenSignAlg?: 'RS256' | 'RS384' | 'RS512' | 'HS256' | 'HS512';
  /** Skip LLNG's "Do you want to logout?" page for this RP (oidcRPMetaDataOptionsLogoutBypassConfirm). Default false. */
  logoutBypassConfirm?: boolean;
  /** LLNG's logLevel: error, warn, notice, info or debug. Default info. */
  logLevel?: 'error' | 'warn' | 'notice' | 'info' | 'debug';
}

export interface LemonLdap {
  /** The OP's issuer, `http://127.0.0.1:{port}/`. */
  readonly issuer: string;
  /** The portal's origin, `http://127.0.0.1:{port}`. */
  readonly origin: string;
  /** The temporary directory (configuration, sessions, logs). Removed by close(). */
  readonly dir: string;
  /** The portal's log (LLNG's own lines and the access log), the last `lines` lines. */
  log(lines?: number): string;
  /** Kills the portal's processes and removes the directory. Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Cleanup on exit: a portal a test forgot to close is killed and its directory removed.

const live = new Set<Portal>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const portal of live) portal.cleanupSync();
    live.clear();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const portal of live) portal.cleanupSync();
      live.clear();
      process.kill(process.pid, signal);
    });
  }
}

/**
 * Starts a private LemonLDAP::NG portal and waits until its discovery document answers.
 * Throws when LLNG is not installed, or when the portal exits or does not answer within 60 s
 * (the error carries the tail of its log); nothing is left running or on disk then.
 */
export async function startLemonLdap(options: LemonLdapOptions): Promise<LemonLdap> {
  assertInstalled();
  installExitHooks();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-llng-'));
  const keys = signingKey();
  let lastError: unknown;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    const portal = new Portal(dir, port);
    writeConfiguration(dir, port, keys, options);
    try {
      await portal.start();
      return portal;
    } catch (err) {
      lastError = err;
      await portal.stopProcess();
      if (!(err instanceof PortInUse)) break;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

function assertInstalled(): void {
  const missing: string[] = [];
  if (!fs.existsSync(PORTAL_PSGI)) missing.push(PORTAL_PSGI);
  if (spawnSync('plackup', ['--version'], { stdio: 'ignore' }).status !== 0) missing.push('plackup');
  if (missing.length > 0) {
    throw new Error(
      `LemonLDAP::NG is not installed (missing ${missing.join(', ')}). Run .ci/run, or: apt-get install --no-install-recommends ` +
        'liblemonldap-ng-portal-perl libio-string-perl libstring-random-perl libgd-securityimage-perl libimage-magick-perl',
    );
  }
}

interface SigningKey {
  privatePem: string;
  publicPem: string;
  kid: string;
}

/** The OP's RSA signing key: PKCS#1 PEM, which is what Crypt::OpenSSL::RSA->new_private_key reads. */
function signingKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privatePem: privateKey, publicPem: publicKey, kid: `llng-${randomBytes(6).toString('hex')}` };
}

/**
 * lemonldap-ng.ini (where the configuration is: a File backend in `dir/conf`) and lmConf-1.json
 * (the configuration itself, as the Manager would save it). Names are LLNG 2.16's configuration
 * keys (Lemonldap::NG::Common::Conf::DefaultValues, Lemonldap::NG::Portal::Issuer::OpenIDConnect).
 */
function writeConfiguration(dir: string, port: number, key: SigningKey, options: LemonLdapOptions): void {
  const origin = `http://${HOST}:${port}`;
  const storage = (name: string) => {
    fs.mkdirSync(path.join(dir, name, 'lock'), { recursive: true });
    return { Directory: path.join(dir, name), LockDirectory: path.join(dir, name, 'lock') };
  };
  fs.mkdirSync(path.join(dir, 'conf'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'cache'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'lemonldap-ng.ini'),
    [
      '[all]',
      `logLevel = ${options.logLevel ?? 'info'}`,
      '[configuration]',
      'type = File',
      `dirName = ${path.join(dir, 'conf')}`,
      '[portal]',
      `templateDir = ${TEMPLATE_DIR}`,
      'staticPrefix = /static',
      'languages = en',
      '',
    ].join('\n'),
  );
  const broker = `${options.concordIssuer}/broker/${options.participantId}`;
  const conf = {
    cfgNum: 1,
    cfgAuthor: 'concord tests',
    cfgDate: String(Math.floor(Date.now() / 1000)),
    cfgVersion: '2.16.1',
    portal: `${origin}/`,
    domain: HOST,
    securedCookie: 0,
    // Every portal path is open (the handler's rules; the portal itself asks for a login where needed).
    locationRules: { [HOST]: { default: 'accept' } },
    exportedHeaders: {},
    // The Demo backend and its attributes.
    authentication: 'Demo',
    userDB: 'Same',
    passwordDB: 'Demo',
    registerDB: 'Null',
    demoExportedVars: { uid: 'uid', cn: 'cn', mail: 'mail' },
    whatToTrace: 'uid',
    loginHistoryEnabled: 0,
    notification: 0,
    // Sessions: files in the temporary directory (OIDC codes and tokens go to globalStorage too).
    globalStorage: 'Apache::Session::File',
    globalStorageOptions: { ...storage('sessions'), generateModule: 'Lemonldap::NG::Common::Apache::Session::Generate::SHA256' },
    persistentStorage: 'Apache::Session::File',
    persistentStorageOptions: storage('psessions'),
    localSessionStorage: 'Cache::FileCache',
    localSessionStorageOptions: { cache_root: path.join(dir, 'cache'), namespace: 'lemonldap-ng-sessions', default_expires_in: 600, cache_depth: 3, directory_umask: '007' },
    // The OpenID Connect provider.
    issuerDBOpenIDConnectActivation: 1,
    oidcServicePrivateKeySig: key.privatePem,
    oidcServicePublicKeySig: key.publicPem,
    oidcServiceKeyIdSig: key.kid,
    oidcRPMetaDataOptions: {
      concord: {
        oidcRPMetaDataOptionsDisplayName: 'Concord',
        oidcRPMetaDataOptionsClientID: options.clientId,
        oidcRPMetaDataOptionsClientSecret: options.clientSecret,
        oidcRPMetaDataOptionsRedirectUris: `${broker}/callback`,
        oidcRPMetaDataOptionsPostLogoutRedirectUris: `${broker}/logged-out`,
        oidcRPMetaDataOptionsIDTokenSignAlg: options.idTokenSignAlg ?? 'RS256',
        // Concord always sends PKCE (S256): LLNG can insist on it.
        oidcRPMetaDataOptionsRequirePKCE: 1,
        oidcRPMetaDataOptionsBypassConsent: 1,
        oidcRPMetaDataOptionsLogoutBypassConfirm: options.logoutBypassConfirm ? 1 : 0,
      },
    },
    // Claim -> session attribute[;type;array]; each claim is released with its scope: the standard ones
    // (email, profile) and a `groups` scope of our own (the Demo groups, always as a JSON array).
    oidcRPMetaDataExportedVars: { concord: { email: 'mail', name: 'cn', preferred_username: 'uid', groups: 'groups;string;always' } },
    oidcRPMetaDataOptionsExtraClaims: { concord: { groups: 'groups' } },
  };
  fs.writeFileSync(path.join(dir, 'conf', 'lmConf-1.json'), JSON.stringify(conf, null, 1));
  // The portal's PSGI app with an access log, so a failing test shows which requests LLNG saw.
  fs.writeFileSync(
    path.join(dir, 'portal.psgi'),
    ["use Plack::Builder;", `my $app = do '${PORTAL_PSGI}' or die "cannot load the portal: $@";`, "builder { enable 'AccessLog', format => 'combined'; $app };", ''].join('\n'),
  );
}

class PortInUse extends Error {}

class Portal implements LemonLdap {
  readonly issuer: string;
  readonly origin: string;
  readonly dir: string;
  readonly #logFile: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(dir: string, port: number) {
    this.dir = dir;
    this.origin = `http://${HOST}:${port}`;
    this.issuer = `${this.origin}/`;
    this.#logFile = path.join(dir, 'portal.log');
  }

  async start(): Promise<void> {
    const log = fs.openSync(this.#logFile, 'a');
    const port = new URL(this.origin).port;
    // plackup's default server (HTTP::Server::PSGI): one process, no fork; its own process group,
    // so close() can signal everything it might start.
    const child = spawn('plackup', ['-E', 'deployment', '-s', 'HTTP::Server::PSGI', '--host', HOST, '--port', port, path.join(this.dir, 'portal.psgi')], {
      cwd: this.dir,
      env: { ...process.env, LLNG_DEFAULTCONFFILE: path.join(this.dir, 'lemonldap-ng.ini') },
      stdio: ['ignore', log, log],
      detached: true,
    });
    fs.closeSync(log);
    child.unref();
    this.#child = child;
    live.add(this);
    let exit: string | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exit = signal ?? `code ${code}`;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
      child.once('error', (err) => {
        exit = err.message;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exit !== undefined) {
        const log = this.log();
        if (/Address already in use/i.test(log)) throw new PortInUse(`port ${port} was taken`);
        throw new Error(`LemonLDAP::NG portal exited (${exit}) before it answered:\n${log}`);
      }
      const answer = await this.#discovery();
      if (answer === 'ready') return;
      if (answer === 'failed') throw new Error(`LemonLDAP::NG portal failed to initialise:\n${this.log()}`);
      if (Date.now() > deadline) throw new Error(`LemonLDAP::NG portal did not answer its discovery within ${READY_TIMEOUT_MS} ms:\n${this.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** ready: the discovery document names our issuer; failed: LLNG answers that its initialisation failed (it will not recover). */
  async #discovery(): Promise<'ready' | 'failed' | 'not yet'> {
    try {
      const res = await fetch(`${this.origin}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      if (res.status === 200) return (JSON.parse(body) as { issuer?: unknown }).issuer === this.issuer ? 'ready' : 'failed';
      if (res.status >= 500 && /Initialization failed/i.test(body)) return 'failed';
      return 'not yet';
    } catch {
      return 'not yet';
    }
  }

  log(lines = 60): string {
    try {
      return fs.readFileSync(this.#logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM to the process group, SIGKILL if it is still there after 5 s. */
  async stopProcess(): Promise<void> {
    const child = this.#child;
    if (child?.pid !== undefined) {
      signalGroup(child.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const exited = await Promise.race([this.#exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS)))]);
      clearTimeout(timer);
      if (!exited) {
        signalGroup(child.pid, 'SIGKILL');
        await this.#exited;
      }
    }
    live.delete(this);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.stopProcess();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  cleanupSync(): void {
    if (this.#child?.pid !== undefined) signalGroup(this.#child.pid, 'SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
