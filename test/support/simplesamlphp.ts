/**
 * A real SAML 2.0 IdP for tests: Debian's SimpleSAMLphp 1.19 (`apt-get install simplesamlphp php-cli
 * php-xml`, done by .ci/run), run privately by PHP's built-in web server from a temporary directory.
 * Nothing of the system installation is used but its code (/usr/share/simplesamlphp): the
 * configuration (`SIMPLESAMLPHP_CONFIG_DIR`), metadata, certificate and key, sessions, cache and
 * logs all live in the temporary directory, which close() removes. The secret salt and admin
 * password are random per instance.
 *
 *   const idp = await startSimpleSamlPhp({ sps: [{ entityId, acsUrl, signingCertificate: sp.cert }] });
 *   idp.metadataUrl      // http://127.0.0.1:{port}/saml2/idp/metadata.php (also the entity ID)
 *   const page = await browser.get(authnRequestUrl);            // lands on the login form
 *   const post = await submitSimpleSamlPhpLogin(browser, page, idp.users[0]!);
 *   post.action, post.fields.SAMLResponse, post.fields.RelayState  // what the browser would POST to the ACS
 *   await idp.close();
 *
 * The IdP: entity ID `{baseUrl}saml2/idp/metadata.php` unless given; SSO and SLO endpoints in
 * HTTP-Redirect and HTTP-POST bindings; an `exampleauth:UserPass` source with the test users; a
 * persistent NameID per SP from the user's `uid` (`saml:PersistentNameID`, so `persistentNameId()`
 * can predict it), transient or `mail` (emailAddress) when the SP asks for those formats; logout
 * messages signed. Each registered SP chooses whether the Response and/or Assertion are signed,
 * whether the Assertion is encrypted, the signature algorithm, and whether its AuthnRequests and
 * logout messages must be signed. SPs can be (re)registered while the IdP runs (the metadata files
 * are read on every request), so an SP whose certificate exists only once it has started can be
 * added afterwards.
 *
 * Served as SimpleSAMLphp 1.19 expects (docs: simplesamlphp-install): the document root is its
 * `www/` directory and `baseurlpath` the absolute URL of that root; PHP's built-in server runs
 * `module.php/...` with PATH_INFO and serves `resources/` and `assets/` as files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserResponse, ParsedForm } from './http-client.ts';
import { parseForm } from './http-client.ts';
import { freePort } from './ports.ts';
import { createTestCertificate, pemBody, type TestKeyPair } from './x509.ts';

/** Where Debian installs SimpleSAMLphp (override with SIMPLESAMLPHP_DIR). */
export const SIMPLESAMLPHP_DIR = process.env.SIMPLESAMLPHP_DIR ?? '/usr/share/simplesamlphp';
const PHP = process.env.PHP_BINARY ?? 'php';
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
const LOG_LINES_KEPT = 400;

/** SAML 2.0 NameID formats (SAML core §8.3). */
export const NAMEID_FORMAT = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
} as const;

/** SAML 2.0 bindings (SAML bindings §3.4, §3.5). */
export const SAML_BINDING = {
  redirect: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
  post: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
} as const;

const SIGNATURE_ALGORITHM = {
  sha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  sha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
} as const;

/** A user of the IdP's `exampleauth:UserPass` source. */
export interface SamlTestUser {
  username: string;
  password: string;
  /** Attributes as released (name -> values; more than one value is a multi-valued attribute). `uid` is required (the persistent NameID is derived from it). */
  attributes: Record<string, string[]>;
}

/**
 * Alice (staff, two groups), Bob (student, non-ASCII display name) and Carol (whose mail is in
 * another domain than `domain`, for domain-policy tests). Passwords are `{username}-password`.
 */
export function defaultSamlUsers(domain = 'partner.example', otherDomain = 'elsewhere.example'): SamlTestUser[] {
  return [
    {
      username: 'alice',
      password: 'alice-password',
      attributes: {
        uid: ['alice'],
        mail: [`alice@${domain}`],
        eduPersonPrincipalName: [`alice@${domain}`],
        displayName: ['Alice Example'],
        givenName: ['Alice'],
        sn: ['Example'],
        eduPersonAffiliation: ['member', 'staff'],
        isMemberOf: ['staff', 'project-x'],
      },
    },
    {
      username: 'bob',
      password: 'bob-password',
      attributes: {
        uid: ['bob'],
        mail: [`bob@${domain}`],
        eduPersonPrincipalName: [`bob@${domain}`],
        displayName: ['Bøb Ünïcode'],
        givenName: ['Bøb'],
        sn: ['Ünïcode'],
        eduPersonAffiliation: ['member', 'student'],
        isMemberOf: ['students'],
      },
    },
    {
      username: 'carol',
      password: 'carol-password',
      attributes: {
        uid: ['carol'],
        mail: [`carol@${otherDomain}`],
        eduPersonPrincipalName: [`carol@${domain}`],
        displayName: ['Carol Elsewhere'],
        eduPersonAffiliation: ['affiliate'],
      },
    },
  ];
}

/** An SP registered at the IdP (an entry of `saml20-sp-remote.php`). */
export interface ServiceProviderRegistration {
  entityId: string;
  /** AssertionConsumerService, HTTP-POST binding. */
  acsUrl: string;
  /** SingleLogoutService (HTTP-Redirect binding); without it the IdP does not do SLO with this SP. */
  sloUrl?: string;
  /** The SP's signing certificate (PEM or base64 DER): checks its signed AuthnRequests and logout messages. */
  signingCertificate?: string;
  /** The SP's encryption certificate (PEM or base64 DER). Default: the signing certificate. */
  encryptionCertificate?: string;
  /** Sign the Response (`saml20.sign.response`). Default true. */
  signResponse?: boolean;
  /** Sign the Assertion (`saml20.sign.assertion`). Default true. */
  signAssertion?: boolean;
  /** Encrypt the Assertion for the SP (`assertion.encryption`; RSA-OAEP key transport, AES-128-CBC content as SimpleSAMLphp 1.19 does). Default false. */
  encryptAssertion?: boolean;
  /** XML signature algorithm for what the IdP signs for this SP. Default sha256 (RSA-SHA256). */
  signatureAlgorithm?: 'sha256' | 'sha1';
  /** NameID format used when the AuthnRequest names none. Default persistent. */
  nameIdFormat?: string;
  /** Refuse AuthnRequests that are not signed by the SP (`validate.authnrequest`). Default false. */
  requireSignedAuthnRequest?: boolean;
  /** Refuse LogoutRequests/LogoutResponses not signed by the SP (`validate.logout`). Default true when a signing certificate is given. */
  requireSignedLogout?: boolean;
  /** Attribute names: 'basic' (uid, mail, …, NameFormat basic) or 'oid' (urn:oid:…, NameFormat uri, as Shibboleth and most federations send). Default 'basic'. */
  attributeNames?: 'basic' | 'oid';
  /** Assertion lifetime in seconds (Conditions and SubjectConfirmationData NotOnOrAfter). Default 300. */
  assertionLifetimeSeconds?: number;
}

/**
 * The SP registration Concord's SAML connector is expected to have for a participant
 * (docs/design.md: SP entity ID `{issuer}/saml/{participantId}`, ACS `POST {issuer}/saml/{participantId}/acs`).
 */
export function concordServiceProvider(issuer: string, participantId: string, extra: Partial<ServiceProviderRegistration> = {}): ServiceProviderRegistration {
  const base = `${issuer.replace(/\/$/, '')}/saml/${encodeURIComponent(participantId)}`;
  return { entityId: base, acsUrl: `${base}/acs`, ...extra };
}

export interface SimpleSamlPhpOptions {
  /** SPs registered from the start. More can be added with registerServiceProvider(). */
  sps?: ServiceProviderRegistration[];
  /** Default: defaultSamlUsers(domain). */
  users?: SamlTestUser[];
  /** Mail domain of the default users. Default partner.example. */
  domain?: string;
  /** Entity ID of the IdP. Default its metadata URL. */
  entityId?: string;
  /** The IdP's signing (and encryption) key pair. Default a fresh one (CN=simplesamlphp-idp). */
  keyPair?: TestKeyPair;
  /** A fixed port (e.g. to restart on the same one). Default a free one. */
  port?: number;
  /** SimpleSAMLphp's log level. Default 'info'; 'debug' also logs every SAML message. */
  logLevel?: 'error' | 'warning' | 'notice' | 'info' | 'debug';
}

export interface SimpleSamlPhpIdp {
  /** `http://127.0.0.1:{port}/` (SimpleSAMLphp's baseurlpath). */
  readonly baseUrl: string;
  readonly entityId: string;
  readonly metadataUrl: string;
  /** The metadata as first fetched (EntityDescriptor). */
  readonly metadataXml: string;
  /** SingleSignOnService (HTTP-Redirect and HTTP-POST). */
  readonly ssoUrl: string;
  /** SingleLogoutService (HTTP-Redirect and HTTP-POST). */
  readonly sloUrl: string;
  /** The IdP's certificate, PEM (signing and encryption). */
  readonly certificate: string;
  /** The IdP's key pair: the test owns it, so tests can sign as this IdP (saml-forge). */
  readonly keyPair: TestKeyPair;
  readonly users: SamlTestUser[];
  /** The temporary directory (config, metadata, cert, sessions, logs). */
  readonly dir: string;
  readonly pid: number | undefined;
  /** Adds or replaces (same entity ID) an SP; effective for the next request. */
  registerServiceProvider(sp: ServiceProviderRegistration): void;
  removeServiceProvider(entityId: string): void;
  /** The persistent NameID SimpleSAMLphp gives `username` at the SP `spEntityId` (saml:PersistentNameID over `uid`). */
  persistentNameId(username: string, spEntityId: string): string;
  /** IdP-initiated (unsolicited) SSO towards an SP: a GET on this URL logs in and POSTs a Response without InResponseTo. */
  idpInitiatedUrl(spEntityId: string, relayState?: string): string;
  /**
   * IdP-initiated single logout: a GET on this URL (in the browser that holds the IdP session)
   * sends a LogoutRequest to each SP of the session that has an SLO URL, then goes to `returnTo`
   * (a loopback URL).
   */
  idpInitiatedLogoutUrl(returnTo: string): string;
  /** The last lines of the PHP server's output and SimpleSAMLphp's log. */
  log(lines?: number): string;
  /** Kills the PHP server and removes the directory. Idempotent. */
  close(): Promise<void>;
}

/** Whether SimpleSAMLphp and PHP are installed (tests need them; .ci/run installs them). */
export function simpleSamlPhpInstalled(): boolean {
  return fs.existsSync(path.join(SIMPLESAMLPHP_DIR, 'www', 'saml2', 'idp', 'SSOService.php')) && whichSync(PHP);
}

// ---------------------------------------------------------------------------------------------
// Cleanup on exit, whatever happens: every live PHP server killed, every directory removed.

const live = new Set<{ child: ChildProcess | undefined; dir: string }>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const entry of live) {
      if (entry.child) killGroup(entry.child, 'SIGKILL');
      fs.rmSync(entry.dir, { recursive: true, force: true });
    }
    live.clear();
  });
}

/**
 * Starts a SimpleSAMLphp IdP and waits until its metadata answers.
 * @throws Error when PHP or SimpleSAMLphp is missing, or the server does not come up (with the log tail).
 */
export async function startSimpleSamlPhp(options: SimpleSamlPhpOptions = {}): Promise<SimpleSamlPhpIdp> {
  if (!simpleSamlPhpInstalled()) {
    throw new Error(`SimpleSAMLphp is not installed (${SIMPLESAMLPHP_DIR}, ${PHP}); run .ci/run or apt-get install simplesamlphp php-cli php-xml`);
  }
  installExitHooks();
  const keyPair = options.keyPair ?? (await createTestCertificate({ commonName: 'simplesamlphp-idp' }));
  const users = options.users ?? defaultSamlUsers(options.domain);
  for (const user of users) {
    if (user.attributes.uid?.length !== 1) throw new Error(`test user ${user.username} needs exactly one uid value`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-simplesamlphp-'));
  const entry: { child: ChildProcess | undefined; dir: string } = { child: undefined, dir };
  live.add(entry);
  const secretSalt = randomBytes(24).toString('hex');
  const sps = new Map<string, ServiceProviderRegistration>();
  const output: string[] = [];
  const configDir = path.join(dir, 'config');
  const metadataDir = path.join(dir, 'metadata');

  const writeSps = () => writePhp(path.join(metadataDir, 'saml20-sp-remote.php'), 'metadata', Object.fromEntries([...sps].map(([id, sp]) => [id, spMetadata(sp)])));
  const log = (lines = 60) => {
    let samlLog = '';
    try {
      samlLog = fs.readFileSync(path.join(dir, 'log', 'simplesamlphp.log'), 'utf8');
    } catch {
      // not written yet
    }
    const tail = (text: string[]) => text.slice(-lines).join('\n');
    return `--- php -S ---\n${tail(output)}\n--- simplesamlphp.log ---\n${tail(samlLog.split('\n'))}`;
  };

  try {
    for (const sub of ['config', 'metadata', 'cert', 'sessions', 'tmp', 'data', 'log']) fs.mkdirSync(path.join(dir, sub), { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'cert', 'idp.key'), keyPair.key, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'cert', 'idp.crt'), keyPair.cert);
    // exampleauth:UserPass: ['exampleauth:UserPass', 'user:password' => attributes, ...]
    const userPass: Record<string, unknown> = { 0: 'exampleauth:UserPass' };
    for (const u of users) userPass[`${u.username}:${u.password}`] = u.attributes;
    writePhp(path.join(configDir, 'authsources.php'), 'config', { users: userPass });
    for (const sp of options.sps ?? []) sps.set(sp.entityId, sp);
    writeSps();

    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = options.port ?? (await freePort());
      const baseUrl = `http://${HOST}:${port}/`;
      writeConfig(configDir, { baseUrl, dir, secretSalt, logLevel: options.logLevel ?? 'info' });
      writePhp(path.join(metadataDir, 'saml20-idp-hosted.php'), 'metadata', {
        [options.entityId ?? '__DYNAMIC:1__']: {
          host: '__DEFAULT__',
          privatekey: 'idp.key',
          certificate: 'idp.crt',
          auth: 'users',
          NameIDFormat: [NAMEID_FORMAT.persistent, NAMEID_FORMAT.transient, NAMEID_FORMAT.emailAddress],
          SingleSignOnServiceBinding: [SAML_BINDING.redirect, SAML_BINDING.post],
          SingleLogoutServiceBinding: [SAML_BINDING.redirect, SAML_BINDING.post],
          'sign.logout': true,
          'signature.algorithm': SIGNATURE_ALGORITHM.sha256,
          authproc: { 10: { class: 'saml:PersistentNameID', attribute: 'uid' } },
        },
      });
      output.length = 0;
      const started = Date.now();
      const child = spawn(
        PHP,
        ['-d', 'display_errors=stderr', '-d', 'log_errors=0', '-d', `session.save_path=${path.join(dir, 'sessions')}`, '-d', 'opcache.enable=0', '-S', `${HOST}:${port}`, '-t', path.join(SIMPLESAMLPHP_DIR, 'www')],
        {
          cwd: dir,
          env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: configDir, PHP_CLI_SERVER_WORKERS: '2', TZ: 'UTC' },
          stdio: ['ignore', 'pipe', 'pipe'],
          // Its own process group: with PHP_CLI_SERVER_WORKERS the workers are children of the
          // server process and outlive it unless the whole group is signalled.
          detached: true,
        },
      );
      entry.child = child;
      const keep = (chunk: Buffer) => {
        output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        if (output.length > LOG_LINES_KEPT) output.splice(0, output.length - LOG_LINES_KEPT);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      const metadataUrl = `${baseUrl}saml2/idp/metadata.php`;
      try {
        const metadataXml = await waitForMetadata(child, metadataUrl);
        const entityId = options.entityId ?? /entityID="([^"&<]+)"/.exec(metadataXml)?.[1];
        if (!entityId) throw new Error('the metadata has no entityID');
        output.push(`[harness] metadata answered ${Date.now() - started} ms after spawn`);
        return makeIdp({ baseUrl, entityId, metadataUrl, metadataXml, keyPair, users, dir, child, secretSalt, sps, writeSps, log, entry });
      } catch (error) {
        lastError = error as Error;
        await stopChild(child);
        entry.child = undefined;
        // A port taken between freePort() and bind: try another (never with a fixed port).
        if (options.port !== undefined || !output.some((l) => /Failed to listen|Address already in use/i.test(l))) break;
      }
    }
    throw new Error(`SimpleSAMLphp did not start: ${lastError?.message}\n${log()}`);
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    live.delete(entry);
    throw error;
  }
}

function makeIdp(s: {
  baseUrl: string;
  entityId: string;
  metadataUrl: string;
  metadataXml: string;
  keyPair: TestKeyPair;
  users: SamlTestUser[];
  dir: string;
  child: ChildProcess;
  secretSalt: string;
  sps: Map<string, ServiceProviderRegistration>;
  writeSps: () => void;
  log: (lines?: number) => string;
  entry: { child: ChildProcess | undefined; dir: string };
}): SimpleSamlPhpIdp {
  let closed = false;
  return {
    baseUrl: s.baseUrl,
    entityId: s.entityId,
    metadataUrl: s.metadataUrl,
    metadataXml: s.metadataXml,
    ssoUrl: `${s.baseUrl}saml2/idp/SSOService.php`,
    sloUrl: `${s.baseUrl}saml2/idp/SingleLogoutService.php`,
    certificate: s.keyPair.cert,
    keyPair: s.keyPair,
    users: s.users,
    dir: s.dir,
    get pid() {
      return s.child.pid;
    },
    registerServiceProvider(sp) {
      s.sps.set(sp.entityId, sp);
      s.writeSps();
    },
    removeServiceProvider(entityId) {
      s.sps.delete(entityId);
      s.writeSps();
    },
    persistentNameId(username, spEntityId) {
      const user = s.users.find((u) => u.username === username);
      const uid = user?.attributes.uid?.[0];
      if (uid === undefined) throw new Error(`no test user ${username}`);
      // SimpleSAMLphp 1.19 modules/saml/lib/Auth/Process/PersistentNameID.php (lengths are PHP strlen: bytes).
      const part = (v: string) => `${Buffer.byteLength(v)}:${v}`;
      const data = `uidhashbase${s.secretSalt}${part(s.entityId)}${part(spEntityId)}${part(uid)}${s.secretSalt}`;
      return createHash('sha1').update(data, 'utf8').digest('hex');
    },
    idpInitiatedUrl(spEntityId, relayState) {
      const url = new URL(`${s.baseUrl}saml2/idp/SSOService.php`);
      url.searchParams.set('spentityid', spEntityId);
      if (relayState !== undefined) url.searchParams.set('RelayState', relayState);
      return url.href;
    },
    idpInitiatedLogoutUrl(returnTo) {
      const url = new URL(`${s.baseUrl}saml2/idp/SingleLogoutService.php`);
      url.searchParams.set('ReturnTo', returnTo);
      return url.href;
    },
    log: s.log,
    async close() {
      if (closed) return;
      closed = true;
      await stopChild(s.child);
      fs.rmSync(s.dir, { recursive: true, force: true });
      live.delete(s.entry);
    },
  };
}

/** The SAML message form SimpleSAMLphp's HTTP-POST binding page carries (action = the SP's endpoint). */
export interface SamlPostForm {
  action: URL;
  fields: Record<string, string>;
}

/**
 * Fills SimpleSAMLphp's username/password form (`page`, as the Browser landed on it) for `user`
 * and returns the HTTP-POST binding form the IdP answers with: the ACS URL and the SAMLResponse
 * (and RelayState) a browser would POST there. The POST itself is left to the caller.
 * @throws Error when the page is not the login form or the login does not end in a POST form (the page text in the message).
 */
export async function submitSimpleSamlPhpLogin(browser: Browser, page: BrowserResponse, user: Pick<SamlTestUser, 'username' | 'password'>): Promise<SamlPostForm> {
  let form: ParsedForm;
  try {
    form = parseForm(page.body);
  } catch {
    throw new Error(`not SimpleSAMLphp's login form (${page.status} ${page.url.href}): ${excerpt(page.body)}`);
  }
  if (!('AuthState' in form.fields)) throw new Error(`not SimpleSAMLphp's login form (${page.url.href}): ${excerpt(page.body)}`);
  const answer = await browser.post(new URL(form.action || page.url.href, page.url), { ...form.fields, username: user.username, password: user.password });
  return samlPostForm(answer);
}

/**
 * The HTTP-POST binding form (SAMLResponse or SAMLRequest) in a SimpleSAMLphp page.
 * @throws Error when the page has none (the page text in the message).
 */
export function samlPostForm(page: BrowserResponse): SamlPostForm {
  const form = (() => {
    try {
      return parseForm(page.body);
    } catch {
      return undefined;
    }
  })();
  if (!form || (!('SAMLResponse' in form.fields) && !('SAMLRequest' in form.fields))) {
    throw new Error(`no SAML POST form in the IdP's answer (${page.status} ${page.url.href}): ${excerpt(page.body)}`);
  }
  return { action: new URL(form.action, page.url), fields: form.fields };
}

function excerpt(html: string): string {
  return html.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 600);
}

// ---------------------------------------------------------------------------------------------
// Configuration files

function writeConfig(configDir: string, c: { baseUrl: string; dir: string; secretSalt: string; logLevel: string }): void {
  const level = { error: 3, warning: 4, notice: 5, info: 6, debug: 7 }[c.logLevel] ?? 6;
  writePhp(path.join(configDir, 'config.php'), 'config', {
    baseurlpath: c.baseUrl,
    certdir: `${path.join(c.dir, 'cert')}/`,
    loggingdir: `${path.join(c.dir, 'log')}/`,
    datadir: `${path.join(c.dir, 'data')}/`,
    tempdir: path.join(c.dir, 'tmp'),
    metadatadir: `${path.join(c.dir, 'metadata')}/`,
    attributenamemapdir: `${path.join(SIMPLESAMLPHP_DIR, 'config', 'attributemap')}/`,
    secretsalt: c.secretSalt,
    'auth.adminpassword': randomBytes(18).toString('base64url'),
    'admin.protectindexpage': true,
    'admin.protectmetadata': false,
    'admin.checkforupdates': false,
    technicalcontact_name: 'Concord tests',
    technicalcontact_email: 'tests@concord.invalid',
    timezone: 'UTC',
    'enable.saml20-idp': true,
    'enable.shib13-idp': false,
    'enable.adfs-idp': false,
    'module.enable': { exampleauth: true, core: true, saml: true, admin: true },
    'store.type': 'phpsession',
    'session.phpsession.savepath': path.join(c.dir, 'sessions'),
    'session.phpsession.cookiename': 'SimpleSAML',
    'session.cookie.name': 'SimpleSAMLSessionID',
    // Plain HTTP on loopback: SimpleSAMLphp refuses to set Secure cookies without HTTPS.
    'session.cookie.secure': false,
    'session.cookie.samesite': null,
    'language.cookie.secure': false,
    'language.cookie.samesite': null,
    'logging.handler': 'file',
    'logging.logfile': 'simplesamlphp.log',
    'logging.level': level,
    'logging.format': '%date{%H:%M:%S} %level %stat[%trackid] %msg',
    'statistics.out': [],
    debug: { saml: c.logLevel === 'debug', backtraces: true, validatexml: false },
    showerrors: true,
    errorreporting: false,
    production: true,
    'assertion.allowed_clock_skew': 180,
    // ReturnTo (IdP-initiated logout) and other redirects: loopback on any port, nothing else.
    'trusted.url.domains': ['127\\.0\\.0\\.1:\\d+', 'localhost:\\d+', '\\[::1\\]:\\d+'],
    'trusted.url.regex': true,
  });
}

function spMetadata(sp: ServiceProviderRegistration): Record<string, unknown> {
  const keys: Record<string, unknown>[] = [];
  if (sp.signingCertificate) keys.push({ encryption: false, signing: true, type: 'X509Certificate', X509Certificate: pemBody(sp.signingCertificate) });
  const encryption = sp.encryptionCertificate ?? sp.signingCertificate;
  if (encryption) keys.push({ encryption: true, signing: false, type: 'X509Certificate', X509Certificate: pemBody(encryption) });
  if (sp.encryptAssertion && !encryption) throw new Error(`SP ${sp.entityId}: encryptAssertion needs an encryption (or signing) certificate`);
  const nameIdFormat = sp.nameIdFormat ?? NAMEID_FORMAT.persistent;
  return {
    AssertionConsumerService: [{ Binding: SAML_BINDING.post, Location: sp.acsUrl, index: 0 }],
    ...(sp.sloUrl ? { SingleLogoutService: [{ Binding: SAML_BINDING.redirect, Location: sp.sloUrl }] } : {}),
    ...(keys.length ? { keys } : {}),
    NameIDFormat: nameIdFormat,
    // An SP asking for emailAddress gets the user's mail.
    'simplesaml.nameidattribute': 'mail',
    'saml20.sign.response': sp.signResponse ?? true,
    'saml20.sign.assertion': sp.signAssertion ?? true,
    'assertion.encryption': sp.encryptAssertion ?? false,
    'signature.algorithm': SIGNATURE_ALGORITHM[sp.signatureAlgorithm ?? 'sha256'],
    'validate.authnrequest': sp.requireSignedAuthnRequest ?? false,
    'validate.logout': sp.requireSignedLogout ?? Boolean(sp.signingCertificate),
    'assertion.lifetime': sp.assertionLifetimeSeconds ?? 300,
    ...(sp.attributeNames === 'oid'
      ? { 'attributes.NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri', authproc: { 90: { class: 'core:AttributeMap', 0: 'name2oid' } } }
      : { 'attributes.NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic' }),
  };
}

/** Writes `<?php $name = <value>;` atomically (SimpleSAMLphp may read it at any moment). */
function writePhp(file: string, variable: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `<?php\n$${variable} = ${phpValue(value, '')};\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** A PHP literal for a JSON-like value (strings single-quoted, arrays as [k => v]). */
export function phpValue(value: unknown, indent: string): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a PHP number: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => `${inner}${phpValue(v, inner)},`).join('\n')}\n${indent}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return '[]';
    const key = (k: string) => (/^(0|[1-9]\d{0,8})$/.test(k) ? k : phpValue(k, ''));
    return `[\n${entries.map(([k, v]) => `${inner}${key(k)} => ${phpValue(v, inner)},`).join('\n')}\n${indent}]`;
  }
  throw new Error(`no PHP literal for ${typeof value}`);
}

// ---------------------------------------------------------------------------------------------
// Process

async function waitForMetadata(child: ChildProcess, url: string): Promise<string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (exited || child.exitCode !== null) throw new Error(`php exited (code ${child.exitCode}, signal ${child.signalCode})`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      const body = await response.text();
      if (response.status === 200 && body.includes('EntityDescriptor')) return body;
      last = `${response.status}: ${excerpt(body)}`;
      // A PHP or configuration error does not heal by waiting.
      if (response.status >= 500) throw new Error(`metadata answered ${last}`);
    } catch (error) {
      if ((error as Error).message.startsWith('metadata answered')) throw error;
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`metadata did not answer within ${READY_TIMEOUT_MS} ms (last: ${last})`);
}

/** Signals the server's process group (the server and its workers). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      // Workers whose server already exited: make sure none is left.
      killGroup(child, 'SIGKILL');
      resolve();
    };
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_TIMEOUT_MS);
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', done);
    killGroup(child, 'SIGTERM');
  });
}

function whichSync(command: string): boolean {
  if (command.includes('/')) return fs.existsSync(command);
  return (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, command)));
}
