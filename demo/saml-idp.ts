import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';
import { certificatePem, selfSignedCertificate } from '../src/keys/certificate.ts';
import { DEMO_PASSWORD, renderPage } from './partner-idp.ts';

/**
 * A demo SAML 2.0 identity provider for `npm run demo`, in Node alone (no PHP, nothing to install
 * beyond `npm ci`): its metadata, an SSO endpoint (HTTP-Redirect) with a small login page, and a
 * Response with one Assertion, signed (XML-DSig, RSA-SHA256, exclusive c14n) with xml-crypto (the
 * signer node-saml itself uses, already in the tree), POSTed to the SP's ACS (HTTP-POST binding).
 *
 * A demo, not an IdP to deploy: it trusts only its one registered SP (entity ID and ACS from its
 * registration, never from the request), but does not check AuthnRequest signatures, has no single
 * logout (Concord then skips the upstream logout, as for any IdP without an SLO endpoint) and keeps
 * its users in memory. Concord's tests use SimpleSAMLphp, a real IdP nobody here wrote.
 *
 *   node demo/saml-idp.ts [initech] [port]      # runs one on its own (SP: Concord at $CONCORD_ISSUER, default http://localhost:3000)
 */

export interface SamlDemoUser {
  username: string;
  /** Default DEMO_PASSWORD. */
  password?: string;
  /** Attribute name -> values (NameFormat uri with urn:oid: names, as Shibboleth sends them). */
  attributes: Record<string, string[]>;
}

/** Initech's users: a university on Shibboleth (eduPerson attributes by OID). */
export const DEMO_SAML_USERS: SamlDemoUser[] = [
  {
    username: 'dave@initech.example',
    attributes: {
      'urn:oid:0.9.2342.19200300.100.1.3': ['dave@initech.example'],
      'urn:oid:2.16.840.1.113730.3.1.241': ['Dave Davis'],
      'urn:oid:2.5.4.42': ['Dave'],
      'urn:oid:2.5.4.4': ['Davis'],
      'urn:oid:1.3.6.1.4.1.5923.1.1.1.9': ['staff@initech.example', 'member@initech.example'],
      'urn:oid:1.3.6.1.4.1.5923.1.5.1.1': ['research', 'staff'],
    },
  },
  {
    username: 'erin@initech.example',
    attributes: {
      'urn:oid:0.9.2342.19200300.100.1.3': ['erin@initech.example'],
      'urn:oid:2.16.840.1.113730.3.1.241': ['Erin Evans'],
      'urn:oid:1.3.6.1.4.1.5923.1.1.1.9': ['student@initech.example'],
      'urn:oid:1.3.6.1.4.1.5923.1.5.1.1': ['students'],
    },
  },
];

export interface SamlDemoIdpOptions {
  name: string;
  domain: string;
  /** Host name in its URLs (default 127.0.0.1); it listens on 127.0.0.1 either way. */
  host?: string;
  /** 0 or absent: a free port. */
  port?: number;
  color?: string;
  users?: SamlDemoUser[];
  /** The one SP it serves. */
  sp: { entityId: string; acsUrl: string };
}

export interface SamlDemoIdp {
  entityId: string;
  metadataUrl: string;
  url: string;
  close(): Promise<void>;
}

const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const ASSERTION_LIFETIME_S = 300;

export async function startSamlDemoIdp(options: SamlDemoIdpOptions): Promise<SamlDemoIdp> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const now = Date.now();
  const der = selfSignedCertificate({ privateKey, publicKey, commonName: `${options.name} demo IdP`, serialSeed: randomBytes(16).toString('hex'), notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * 86400_000) });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const users = options.users ?? DEMO_SAML_USERS;
  const color = options.color ?? '#1b7f5a';
  /** Login attempts in progress, by a random ticket in the form: the AuthnRequest ID and RelayState. */
  const pending = new Map<string, { requestId: string; relayState: string | undefined; expires: number }>();

  const server = http.createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  const entityId = `${url}/metadata`;

  const page = (title: string, body: string) => renderPage({ title, body, partner: options.name, color });
  const send = (res: http.ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const request = new URL(req.url ?? '/', url);
    if (req.method === 'GET' && request.pathname === '/metadata') return send(res, 200, 'application/samlmetadata+xml', metadata());
    if (req.method === 'GET' && request.pathname === '/sso') {
      const authn = readAuthnRequest(request.searchParams.get('SAMLRequest'));
      if (!authn || authn.issuer !== options.sp.entityId) return send(res, 400, 'text/html', page('Sign-in request refused', '<p class="error">This is not a sign-in request from the service this IdP knows.</p>'));
      const ticket = randomBytes(24).toString('base64url');
      for (const [key, value] of pending) if (value.expires < Date.now()) pending.delete(key);
      pending.set(ticket, { requestId: authn.id, relayState: request.searchParams.get('RelayState') ?? undefined, expires: Date.now() + 600_000 });
      return send(res, 200, 'text/html', loginForm(ticket));
    }
    if (req.method === 'POST' && request.pathname === '/login') {
      const form = new URLSearchParams(await readBody(req));
      const ticket = form.get('ticket') ?? '';
      const login = pending.get(ticket);
      if (!login || login.expires < Date.now()) return send(res, 400, 'text/html', page('Sign-in expired', '<p class="error">This sign-in took too long. Go back to the service and start again.</p>'));
      const user = users.find((u) => u.username === (form.get('username') ?? '').trim().toLowerCase());
      if (!user || !same(form.get('password') ?? '', user.password ?? DEMO_PASSWORD)) return send(res, 200, 'text/html', loginForm(ticket, 'Wrong username or password.'));
      pending.delete(ticket);
      const samlResponse = Buffer.from(signedResponse(user, login.requestId)).toString('base64');
      return send(res, 200, 'text/html', postForm(samlResponse, login.relayState));
    }
    send(res, 404, 'text/plain', 'not found');
  }

  function loginForm(ticket: string, error?: string): string {
    return page(
      `Sign in to ${options.name}`,
      `<h1>Sign in to ${esc(options.name)}</h1>${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/login"><input type="hidden" name="ticket" value="${esc(ticket)}">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" placeholder="you@${esc(options.domain)}" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
    );
  }

  /** The HTTP-POST binding (SAML bindings 3.5.4): a form that the browser posts to the ACS. */
  function postForm(samlResponse: string, relayState: string | undefined): string {
    return page(
      'Signing you in',
      `<form id="saml" method="post" action="${esc(options.sp.acsUrl)}"><input type="hidden" name="SAMLResponse" value="${samlResponse}">${relayState !== undefined ? `<input type="hidden" name="RelayState" value="${esc(relayState)}">` : ''}
<p>Taking you back to the service…</p><button type="submit">Continue</button></form><script>document.getElementById('saml').submit()</script>`,
    );
  }

  function metadata(): string {
    return `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${esc(entityId)}">
<md:IDPSSODescriptor protocolSupportEnumeration="${NS_PROTOCOL}">
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${der.toString('base64')}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:NameIDFormat>${PERSISTENT}</md:NameIDFormat>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${esc(url)}/sso"/>
</md:IDPSSODescriptor></md:EntityDescriptor>
`;
  }

  /** A Response with one bearer Assertion (SAML profiles 4.1.4.2), the Assertion signed. */
  function signedResponse(user: SamlDemoUser, inResponseTo: string): string {
    const issued = new Date();
    const until = iso(new Date(issued.getTime() + ASSERTION_LIFETIME_S * 1000));
    const assertionId = `_${randomBytes(20).toString('hex')}`;
    const nameId = createHash('sha256').update(`${entityId}\0${options.sp.entityId}\0${user.username}`).digest('hex').slice(0, 40);
    const attributes = Object.entries(user.attributes)
      .map(([name, values]) => `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">${values.map((v) => `<saml:AttributeValue>${esc(v)}</saml:AttributeValue>`).join('')}</saml:Attribute>`)
      .join('');
    const xml =
      `<samlp:Response xmlns:samlp="${NS_PROTOCOL}" xmlns:saml="${NS_ASSERTION}" ID="_${randomBytes(20).toString('hex')}" Version="2.0" IssueInstant="${iso(issued)}" Destination="${esc(options.sp.acsUrl)}" InResponseTo="${esc(inResponseTo)}">` +
      `<saml:Issuer>${esc(entityId)}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
      `<saml:Assertion ID="${assertionId}" Version="2.0" IssueInstant="${iso(issued)}"><saml:Issuer>${esc(entityId)}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="${PERSISTENT}" SPNameQualifier="${esc(options.sp.entityId)}">${nameId}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${until}" Recipient="${esc(options.sp.acsUrl)}" InResponseTo="${esc(inResponseTo)}"/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions NotBefore="${iso(new Date(issued.getTime() - 30_000))}" NotOnOrAfter="${until}"><saml:AudienceRestriction><saml:Audience>${esc(options.sp.entityId)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${iso(issued)}" SessionIndex="_${randomBytes(16).toString('hex')}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      `<saml:AttributeStatement>${attributes}</saml:AttributeStatement></saml:Assertion></samlp:Response>`;
    const signer = new SignedXml({ privateKey: keyPem, publicCert: certificatePem(der), canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#', signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256' });
    signer.addReference({ xpath: `//*[@ID='${assertionId}']`, transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'], digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256' });
    signer.computeSignature(xml, { prefix: 'ds', location: { reference: `//*[@ID='${assertionId}']/*[local-name()='Issuer']`, action: 'after' } });
    return signer.getSignedXml();
  }

  return {
    entityId,
    metadataUrl: entityId,
    url,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The ID and Issuer of an HTTP-Redirect AuthnRequest (base64 of DEFLATE), or undefined. */
function readAuthnRequest(value: string | null): { id: string; issuer: string } | undefined {
  if (!value) return undefined;
  let xml: string;
  try {
    xml = inflateRawSync(Buffer.from(value, 'base64'), { maxOutputLength: 64 * 1024 }).toString('utf8');
  } catch {
    return undefined;
  }
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) return undefined;
  const id = /<(?:\w+:)?AuthnRequest\b[^>]*\sID="([A-Za-z_][\w.-]{0,127})"/.exec(xml)?.[1];
  const issuer = /<(?:\w+:)?Issuer\b[^>]*>([^<]{1,1024})<\/(?:\w+:)?Issuer>/.exec(xml)?.[1];
  return id && issuer ? { id, issuer: issuer.trim() } : undefined;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 16 * 1024) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const iso = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

if (import.meta.main) {
  const port = Number(process.argv[3] ?? 4003);
  const concord = (process.env.CONCORD_ISSUER ?? 'http://localhost:3000').replace(/\/+$/, '');
  const idp = await startSamlDemoIdp({ name: 'Initech', domain: 'initech.example', host: 'localhost', port, sp: { entityId: `${concord}/saml/initech`, acsUrl: `${concord}/saml/initech/acs` } });
  process.stdout.write(`Initech SAML IdP: ${idp.metadataUrl}\n`);
}
