import { createHash, randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { SAML, SamlStatusError, ValidateInResponseTo, type CacheProvider, type Profile, type SamlConfig } from '@node-saml/node-saml';
import { CLOCK_TOLERANCE_S, single } from '../checks.ts';
import { clip, UpstreamError, type SamlCheck } from '../errors.ts';
import { measure, UpstreamHttp } from '../http.ts';
import { RefreshingValue } from '../refreshing.ts';
import type {
  CallbackInput,
  Connector,
  LoginRequest,
  LogoutRequest,
  PendingLogin,
  PendingSamlLogin,
  ProbeResult,
  SamlConnectorOptions,
  SamlLogout,
  ServiceMetadata,
  UpstreamIdentity,
  UpstreamLogoutMessage,
} from '../types.ts';
import { DEFAULT_ATTRIBUTE_ALIASES } from './aliases.ts';
import {
  amrOf,
  assertionId,
  assertionsOf,
  attributesOf,
  authnOf,
  checkAlgorithms,
  checkAssertionIssuer,
  checkBearerRecipient,
  checkDestination,
  checkMessageIssuer,
  checkNoComments,
  checkNoDoctype,
  checkOneAssertion,
  checkPendingSaml,
  checkRelayState,
  checkSize,
  decodeBase64,
  isSigned,
  MAX_MESSAGE_BYTES,
  NAMEID_PERSISTENT,
  NAMEID_TRANSIENT,
  nameIdOf,
  parseMessage,
  postedMessage,
  refuse,
  STATUS_SUCCESS,
  statusOf,
} from './checks.ts';
import { certificatePemOf, MetadataInvalid, parseIdpMetadata, spMetadataXml, type IdpMetadata } from './metadata.ts';
import { decryptXml, NS, type XElement } from './xml.ts';

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_METADATA_TTL_S = 3600;
/** A signature by a key the cached metadata lacks fetches the metadata again (rollover at the IdP), at most this often. */
export const METADATA_REFETCH_FLOOR_MS = 10_000;
/** Longest a replay-cache entry is kept (seconds), whatever NotOnOrAfter says. */
const MAX_REPLAY_TTL_S = 24 * 3600;

/** Second-level status codes (SAML core 3.2.2.2) that mean an OAuth error the service expects (routes RETURNED_TO_SERVICE). */
const STATUS_AS_OAUTH: Readonly<Record<string, string>> = {
  'urn:oasis:names:tc:SAML:2.0:status:NoPassive': 'login_required',
  'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed': 'access_denied',
  'urn:oasis:names:tc:SAML:2.0:status:RequestDenied': 'access_denied',
  'urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext': 'access_denied',
};

interface Loaded {
  metadata: IdpMetadata;
  fetchedAt: number;
}

export function createSamlConnector(opts: SamlConnectorOptions): Connector {
  return new SamlConnector(opts);
}

/**
 * A SAML 2.0 IdP (Web Browser SSO profile, SAML profiles 4.1; single logout, 4.4), Concord as the
 * SP, on @node-saml/node-saml: the AuthnRequest (HTTP-Redirect, signed with Concord's SP key), the
 * Response (HTTP-POST): Concord's own checks first (checks.ts: size, DTD, Destination, Issuer,
 * status, one Assertion, algorithms, decryption), node-saml's (signatures by the IdP's metadata
 * certificates only, never KeyInfo; InResponseTo against this very login's AuthnRequest; times within
 * the OIDC leg's tolerance; Audience), then Concord's on the signed content node-saml returns
 * (Assertion Issuer, bearer Recipient, replay, subject). Identity is read only from that signed content.
 */
class SamlConnector implements Connector {
  readonly participantId: string;
  readonly protocol = 'saml' as const;
  readonly #opts: SamlConnectorOptions;
  readonly #http: UpstreamHttp;
  readonly #aliases: Record<string, string>;
  readonly #metadata: RefreshingValue<Loaded>;

  constructor(opts: SamlConnectorOptions) {
    if ((opts.metadataUrl === undefined) === (opts.metadataXml === undefined)) throw new TypeError('exactly one of metadataUrl and metadataXml');
    this.participantId = opts.participantId;
    this.#opts = opts;
    this.#metadata = new RefreshingValue({
      load: () => this.#load(),
      // Inline metadata changes only with the configuration (a new connector).
      ttlMs: opts.metadataUrl ? (opts.metadataTtlSeconds ?? DEFAULT_METADATA_TTL_S) * 1000 : Number.POSITIVE_INFINITY,
      onRefreshError: (err) =>
        opts.logger?.debug({ participant: this.participantId, code: (err as { code?: unknown }).code, reason: err instanceof Error ? err.message : String(err) }, 'SAML metadata refresh failed; keeping the last good copy'),
    });
    this.#aliases = { ...DEFAULT_ATTRIBUTE_ALIASES, ...opts.attributeAliases };
    this.#http = new UpstreamHttp({
      participantId: opts.participantId,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      logger: opts.logger,
      allowPrivateNetwork: opts.allowPrivateNetwork === true || opts.allowInsecureHttp === true,
    });
  }

  /** The IdP's entity ID once its metadata was read; until then where it comes from. */
  get issuer(): string {
    return this.#metadata.current?.metadata.entityId ?? this.#opts.metadataUrl ?? 'inline SAML metadata';
  }

  // ---- login -----------------------------------------------------------------------------------

  async beginLogin(request: LoginRequest): Promise<{ url: string; pending: PendingLogin }> {
    const { metadata } = await this.#loaded();
    const state = randomBytes(32).toString('base64url');
    let requestId: string | undefined;
    const capture: CacheProvider = {
      saveAsync: async (key, value) => {
        requestId = key;
        return { value, createdAt: Date.now() };
      },
      getAsync: async () => null,
      removeAsync: async () => null,
    };
    const forwarded = request.params ?? {};
    const prompts = forwarded.prompt ?? [];
    const saml = this.#saml(metadata, {
      cacheProvider: capture,
      validateInResponseTo: ValidateInResponseTo.always,
      // OIDC Core 3.1.2.1 in SAML terms (SAML core 3.4.1): prompt=login and max_age=0 force a new
      // authentication, prompt=none asks for none, acr_values are the requested context classes.
      forceAuthn: prompts.includes('login') || forwarded.max_age === 0,
      passive: prompts.includes('none'),
      ...(forwarded.acr_values?.length ? { authnContext: forwarded.acr_values, racComparison: 'exact' as const } : { disableRequestedAuthnContext: true }),
    });
    const url = await saml.getAuthorizeUrlAsync(state, undefined, {});
    if (!requestId) throw new Error('node-saml made an AuthnRequest without recording its ID');
    const pending: PendingSamlLogin = { protocol: 'saml', state, requestId, acsUrl: this.#opts.acsUrl, createdAt: Date.now() };
    return { url, pending };
  }

  callbackState(callback: CallbackInput): string | undefined {
    if (callback.method !== 'POST') return undefined;
    return single(callback.body, 'RelayState') ?? undefined;
  }

  async completeLogin(callback: CallbackInput, pending: PendingLogin): Promise<UpstreamIdentity> {
    const pid = this.participantId;
    checkPendingSaml(pending, pid);
    const { result, durationMs } = await measure(async () => {
      const { message, relayState } = postedMessage(callback, 'SAMLResponse', pid);
      checkRelayState(relayState, pending, pid);
      checkSize(message, pid);
      const xml = decodeBase64(message, pid);
      checkNoDoctype(xml, pid);
      const { root: response } = parseMessage(xml, NS.protocol, 'Response', pid);
      let { metadata } = await this.#loaded();

      checkDestination(response, pending.acsUrl, pid);
      checkMessageIssuer(response, metadata.entityId, pid);
      this.#checkStatus(response, pending);
      const { plain, encrypted } = checkOneAssertion(response, pid);
      if (this.#opts.wantAssertionsEncrypted && !encrypted) throw refuse('saml_not_encrypted', 'the Assertion is not encrypted (wantAssertionsEncrypted)', pid);
      checkAlgorithms(response, this.#opts.allowSha1, pid);
      const decryptionKey = encrypted ? await this.#decryptionKey(encrypted) : undefined;
      if (plain) checkNoComments(plain, pid);
      if (plain && !isSigned(plain)) throw refuse('saml_signature', 'the Assertion is not signed', pid);

      let profile: Profile;
      try {
        profile = await this.#validate(metadata, xml, pending, isSigned(response), decryptionKey);
      } catch (error) {
        // A signature by a key the cached metadata lacks: the IdP may have rolled its certificate over.
        if (!(error instanceof UpstreamError) || error.check !== 'saml_signature' || !(await this.#refreshForNewKeys())) throw error;
        metadata = (await this.#loaded()).metadata;
        profile = await this.#validate(metadata, xml, pending, isSigned(response), decryptionKey);
      }
      return this.#identity(metadata, profile, pending);
    });
    return { ...result, durationMs };
  }

  /**
   * A non-Success status (SAML core 3.2.2.2): with an Assertion beside it, a contradiction an SP
   * that reads the Assertion regardless would fall for (refused); without one, the IdP declining
   * this login, answered to the service when it is an error the service expects. Either way it must
   * answer this login's AuthnRequest.
   */
  #checkStatus(response: XElement, pending: PendingSamlLogin): void {
    const pid = this.participantId;
    const status = statusOf(response);
    if (status.code === STATUS_SUCCESS) return;
    const { plain, encrypted } = assertionsOf(response);
    if (plain.length + encrypted.length > 0) throw refuse('saml_status', `StatusCode ${clip(status.code ?? '(none)', 100)} beside an Assertion`, pid);
    const inResponseTo = response.getAttribute('InResponseTo');
    if (inResponseTo !== pending.requestId && !(inResponseTo === null && this.#opts.allowIdpInitiated)) {
      throw refuse('saml_in_response_to', 'an error Response that answers no AuthnRequest of this login', pid);
    }
    const upstreamError = status.detail ? STATUS_AS_OAUTH[status.detail] : undefined;
    const name = (uri: string | undefined) => uri?.replace(/^urn:oasis:names:tc:SAML:2\.0:status:/, '');
    throw new UpstreamError('upstream_error', `the IdP answered ${name(status.code) ?? '(no status)'}${status.detail ? `/${name(status.detail)}` : ''}${status.message ? `: ${clip(status.message)}` : ''}`, {
      participantId: pid,
      ...(upstreamError ? { upstreamError } : {}),
      upstreamErrorDescription: clip(`${name(status.code) ?? ''}${status.detail ? `/${name(status.detail)}` : ''}${status.message ? `: ${status.message}` : ''}`),
    });
  }

  /**
   * The published SP key the EncryptedAssertion was encrypted to (during a rollover, the IdP may
   * use either); the decrypted Assertion is held to the same rules as a plain one (no DTD,
   * algorithms).
   */
  async #decryptionKey(encrypted: XElement): Promise<string> {
    const pid = this.participantId;
    let lastError: unknown;
    for (const key of this.#opts.keys.published()) {
      let decrypted: string;
      try {
        decrypted = await decryptXml(encrypted.toString(), key.privateKeyPem);
      } catch (error) {
        lastError = error;
        continue;
      }
      checkNoDoctype(decrypted, pid);
      const { root } = parseMessage(decrypted, NS.assertion, 'Assertion', pid);
      checkNoComments(root, pid);
      checkAlgorithms(root, this.#opts.allowSha1, pid);
      return key.privateKeyPem;
    }
    throw refuse('saml_decryption', `the EncryptedAssertion opens with none of Concord's SP keys: ${clip((lastError as Error | undefined)?.message ?? 'no key')}`, pid, lastError);
  }

  /** node-saml's validation, configured for this login; its refusals mapped to SAML_CHECKS. */
  async #validate(metadata: IdpMetadata, xml: string, pending: PendingSamlLogin, responseSigned: boolean, decryptionKey: string | undefined): Promise<Profile> {
    const oneRequest: CacheProvider = {
      saveAsync: async (_key, value) => ({ value, createdAt: Date.now() }),
      // Only this login's AuthnRequest is outstanding: a Response to any other is refused.
      getAsync: async (key) => (key === pending.requestId ? new Date(pending.createdAt).toISOString() : null),
      removeAsync: async () => null,
    };
    const saml = this.#saml(metadata, {
      cacheProvider: oneRequest,
      validateInResponseTo: this.#opts.allowIdpInitiated ? ValidateInResponseTo.ifPresent : ValidateInResponseTo.always,
      // A Response signature that is there must verify (node-saml ignores a broken one when the Assertion's verifies).
      wantAuthnResponseSigned: responseSigned,
      ...(decryptionKey ? { decryptionPvk: decryptionKey } : {}),
    });
    let profile: Profile | null;
    try {
      ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') }));
    } catch (error) {
      throw refuse(checkOf(error), `node-saml: ${clip((error as Error).message)}`, this.participantId, error);
    }
    if (!profile || typeof profile.getAssertionXml !== 'function') throw refuse('saml_assertion_count', 'the Response carries no Assertion', this.participantId);
    return profile;
  }

  /** The identity, read from the signed Assertion node-saml verified (never from the raw message). */
  async #identity(metadata: IdpMetadata, profile: Profile, pending: PendingSamlLogin): Promise<Omit<UpstreamIdentity, 'durationMs'>> {
    const pid = this.participantId;
    const { root: assertion } = parseMessage(profile.getAssertionXml!(), NS.assertion, 'Assertion', pid);
    checkAssertionIssuer(assertion, metadata.entityId, pid);
    const notOnOrAfter = checkBearerRecipient(assertion, pending.acsUrl, pid);
    const attributes = attributesOf(assertion);
    const claims = this.#claims(attributes);
    const nameId = nameIdOf(assertion);
    const subject = this.#subject(nameId, claims);

    // Each Assertion once, until it expires (SAML profiles 4.1.4.5), in the shared store: another
    // instance, or a second tab, gets the same answer.
    const id = assertionId(assertion, pid);
    const ttl = Math.min(MAX_REPLAY_TTL_S, Math.max(1, Math.ceil((notOnOrAfter - Date.now()) / 1000) + CLOCK_TOLERANCE_S));
    const replayKey = createHash('sha256').update(`${metadata.entityId}\0${id}`).digest('base64url');
    if (!(await this.#opts.replay.firstUse(`${pid}:${replayKey}`, ttl))) throw refuse('saml_replay', `Assertion ${clip(id, 80)} was used before`, pid);

    const authn = authnOf(assertion);
    const logout: SamlLogout | undefined = nameId
      ? {
          protocol: 'saml',
          nameId: nameId.value,
          ...(nameId.format ? { nameIdFormat: nameId.format } : {}),
          ...(nameId.nameQualifier ? { nameQualifier: nameId.nameQualifier } : {}),
          ...(nameId.spNameQualifier ? { spNameQualifier: nameId.spNameQualifier } : {}),
          ...(authn.sessionIndex ? { sessionIndex: authn.sessionIndex } : {}),
        }
      : undefined;
    const amr = amrOf(authn.classRef);
    return {
      issuer: metadata.entityId,
      subject,
      claims,
      ...(authn.authTime !== undefined ? { authTime: authn.authTime } : {}),
      ...(authn.classRef ? { acr: authn.classRef } : {}),
      ...(amr ? { amr } : {}),
      ...(logout ? { logout } : {}),
      // What the IdP's LogoutRequests name this login's session by (SAML core 3.7.1): its sessions end by it.
      ...(authn.sessionIndex ? { sessionId: authn.sessionIndex } : {}),
    };
  }

  /** Attributes under their names and their aliases; one value as a string, several as an array. */
  #claims(attributes: Map<string, string[]>): Record<string, unknown> {
    const entries = new Map<string, unknown>();
    for (const [name, values] of attributes) entries.set(name, values.length === 1 ? values[0] : values);
    for (const [name, values] of attributes) {
      const alias = this.#aliases[name];
      // An attribute the IdP sent under the alias's own name wins over the alias.
      if (alias && !attributes.has(alias) && !entries.has(alias)) entries.set(alias, values.length === 1 ? values[0] : values);
    }
    return Object.fromEntries(entries);
  }

  /**
   * The subject: the configured attribute (one value), or the NameID when it is persistent or the
   * format this participant asked for on purpose; never a transient NameID (it changes at every login).
   */
  #subject(nameId: ReturnType<typeof nameIdOf>, claims: Record<string, unknown>): string {
    const pid = this.participantId;
    const { subjectAttribute, nameIdFormat } = this.#opts;
    let subject: string;
    if (subjectAttribute) {
      const value = claims[subjectAttribute];
      if (typeof value !== 'string' || value === '') throw refuse('saml_subject', `the subject attribute ${subjectAttribute} is ${Array.isArray(value) ? 'multi-valued' : 'missing or empty'}`, pid);
      subject = value;
    } else {
      if (!nameId) throw refuse('saml_subject', 'the Assertion carries no NameID', pid);
      const format = nameId.format ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';
      if (format === NAMEID_TRANSIENT) throw refuse('saml_subject', 'a transient NameID cannot be the subject (set subjectAttribute, or have the IdP send a persistent NameID)', pid);
      if (format !== NAMEID_PERSISTENT && format !== nameIdFormat) throw refuse('saml_subject', `NameID format ${clip(format, 100)} is neither persistent nor the configured nameIdFormat`, pid);
      subject = nameId.value;
    }
    if (subject.length > 255) throw refuse('saml_subject', 'the subject is longer than 255 characters', pid);
    return subject;
  }

  // ---- logout ----------------------------------------------------------------------------------

  async logoutUrl(request: LogoutRequest): Promise<string | undefined> {
    const { metadata } = await this.#loaded();
    const logout = request.logout;
    if (!metadata.sloUrl || logout?.protocol !== 'saml') return undefined;
    const saml = this.#saml(metadata, { generateUniqueId: () => logoutRequestId(request.state), logoutUrl: metadata.sloUrl });
    // SAML core 3.7.1: the NameID exactly as the Assertion carried it, and its SessionIndex.
    const profile: Profile = {
      issuer: this.#opts.spEntityId,
      nameID: logout.nameId,
      nameIDFormat: logout.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
      ...(logout.nameQualifier ? { nameQualifier: logout.nameQualifier } : {}),
      ...(logout.spNameQualifier ? { spNameQualifier: logout.spNameQualifier } : {}),
      ...(logout.sessionIndex ? { sessionIndex: logout.sessionIndex } : {}),
    };
    return saml.getLogoutUrlAsync(profile, request.state, {});
  }

  /**
   * A LogoutResponse or LogoutRequest at Concord's SLO endpoint, HTTP-Redirect (GET; its query must be
   * signed: node-saml accepts an unsigned one) or HTTP-POST (its XML must be signed). Checked like a
   * Response: size, DTD, Destination, Issuer, algorithms, signature by the IdP's metadata keys, times;
   * a LogoutResponse must answer the LogoutRequest of the logout named by its RelayState and say Success.
   */
  async logoutMessage(callback: CallbackInput): Promise<UpstreamLogoutMessage> {
    const pid = this.participantId;
    const params = callback.method === 'GET' ? callback.query : callback.body;
    if (callback.method === 'POST' && ['SAMLResponse', 'SAMLRequest', 'RelayState', 'SigAlg', 'Signature'].some((p) => callback.query.has(p))) {
      throw refuse('saml_malformed', 'a posted SAML message also carries SAML parameters in its query string', pid);
    }
    const kind = params.has('SAMLResponse') ? 'SAMLResponse' : 'SAMLRequest';
    const values = params.getAll(kind);
    if (values.length !== 1 || (kind === 'SAMLResponse' && params.has('SAMLRequest'))) throw refuse('saml_malformed', 'the SLO message must carry exactly one SAMLRequest or SAMLResponse', pid);
    for (const name of ['RelayState', 'SigAlg', 'Signature']) if (params.getAll(name).length > 1) throw refuse('saml_malformed', `${name} more than once`, pid);
    const encoded = values[0]!;
    checkSize(encoded, pid);
    const xml = callback.method === 'GET' ? inflate(encoded, pid) : decodeBase64(encoded, pid);
    checkNoDoctype(xml, pid);
    const local = kind === 'SAMLResponse' ? 'LogoutResponse' : 'LogoutRequest';
    const { root } = parseMessage(xml, NS.protocol, local, pid);
    let { metadata } = await this.#loaded();
    checkDestination(root, this.#opts.sloUrl, pid);
    checkMessageIssuer(root, metadata.entityId, pid, true);
    checkAlgorithms(root, this.#opts.allowSha1, pid);
    const relayState = params.get('RelayState') ?? undefined;

    const verify = async (md: IdpMetadata) => {
      const saml = this.#saml(md, { validateInResponseTo: ValidateInResponseTo.never });
      try {
        if (callback.method === 'GET') {
          if (!params.get('Signature') || !params.get('SigAlg')) throw new Error('Invalid signature: the Redirect-binding message is not signed');
          checkSigAlg(params.get('SigAlg')!, this.#opts.allowSha1, pid);
          return await saml.validateRedirectAsync(Object.fromEntries(params), callback.rawQuery ?? callback.query.toString());
        }
        if (!isSigned(root)) throw new Error('Invalid signature: the posted message is not signed');
        return kind === 'SAMLRequest' ? await saml.validatePostRequestAsync({ SAMLRequest: encoded }) : await saml.validatePostResponseAsync({ SAMLResponse: encoded });
      } catch (error) {
        if (error instanceof UpstreamError) throw error;
        throw refuse(checkOf(error), `node-saml: ${clip((error as Error).message)}`, pid, error);
      }
    };
    let result: Awaited<ReturnType<typeof verify>>;
    try {
      result = await verify(metadata);
    } catch (error) {
      if (!(error instanceof UpstreamError) || error.check !== 'saml_signature' || !(await this.#refreshForNewKeys())) throw error;
      metadata = (await this.#loaded()).metadata;
      result = await verify(metadata);
    }

    if (local === 'LogoutResponse') {
      if (!relayState) throw new UpstreamError('state_mismatch', 'the LogoutResponse carries no RelayState', { participantId: pid });
      if (root.getAttribute('InResponseTo') !== logoutRequestId(relayState)) throw refuse('saml_in_response_to', 'the LogoutResponse answers no LogoutRequest of this logout', pid);
      const status = statusOf(root);
      if (status.code !== STATUS_SUCCESS) {
        // The upstream could not end its session: Concord's is over all the same; the log says so.
        this.#opts.logger?.debug({ participant: pid, status: clip(status.code ?? '', 100) }, 'the IdP answered the LogoutRequest without Success');
      }
      return { kind: 'logout_response', state: relayState };
    }

    const profile = result.profile;
    if (!profile?.ID) throw refuse('saml_malformed', 'the LogoutRequest has no ID', pid);
    const format = profile.nameIDFormat;
    const subject = !this.#opts.subjectAttribute && format !== NAMEID_TRANSIENT && typeof profile.nameID === 'string' ? profile.nameID : undefined;
    const answerer = this.#saml(metadata, { logoutUrl: metadata.sloResponseUrl ?? metadata.sloUrl ?? metadata.ssoUrl });
    return {
      kind: 'logout_request',
      subject,
      sessionIndex: typeof profile.sessionIndex === 'string' ? profile.sessionIndex : undefined,
      respond: (ended) => answerer.getLogoutResponseUrlAsync(profile, relayState ?? '', {}, ended),
    };
  }

  // ---- metadata --------------------------------------------------------------------------------

  serviceMetadata(): ServiceMetadata {
    return {
      contentType: 'application/samlmetadata+xml',
      body: spMetadataXml({
        entityId: this.#opts.spEntityId,
        acsUrl: this.#opts.acsUrl,
        sloUrl: this.#opts.sloUrl,
        nameIdFormat: this.#opts.nameIdFormat,
        certificates: this.#opts.keys.published().map((k) => k.certificateBase64),
      }),
    };
  }

  async probe(): Promise<ProbeResult> {
    const { metadata } = await this.#refresh();
    return {
      issuer: metadata.entityId,
      endpoints: { sso: metadata.ssoUrl, slo: metadata.sloUrl, metadata: this.#opts.metadataUrl },
      algorithms: this.#opts.allowSha1 ? ['RSA-SHA256', 'RSA-SHA1'] : ['RSA-SHA256'],
    };
  }

  /** A node-saml instance for one call: the IdP's metadata certificates pinned, Concord's current key to sign. */
  #saml(metadata: IdpMetadata, extra: Partial<SamlConfig>): SAML {
    const signing = this.#opts.keys.published()[0];
    if (!signing) throw new Error('no SAML SP key');
    return new SAML({
      entryPoint: metadata.ssoUrl,
      ...(metadata.sloUrl ? { logoutUrl: metadata.sloUrl } : {}),
      issuer: this.#opts.spEntityId,
      callbackUrl: this.#opts.acsUrl,
      logoutCallbackUrl: this.#opts.sloUrl,
      idpCert: metadata.certificates.map(certificatePemOf),
      idpIssuer: metadata.entityId,
      audience: this.#opts.spEntityId,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      identifierFormat: this.#opts.nameIdFormat,
      privateKey: signing.privateKeyPem,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      acceptedClockSkewMs: CLOCK_TOLERANCE_S * 1000,
      validateInResponseTo: ValidateInResponseTo.always,
      ...extra,
    });
  }

  /** The cached metadata; past its TTL (for a metadata URL) it is still used while a refresh runs in the background. */
  #loaded(): Promise<Loaded> {
    return this.#metadata.get();
  }

  /**
   * After a signature that no cached certificate verifies: fetch the metadata again (at most once per
   * METADATA_REFETCH_FLOOR_MS) and say whether its certificates changed, so the caller may try once more.
   */
  async #refreshForNewKeys(): Promise<boolean> {
    const before = this.#metadata.current;
    if (!this.#opts.metadataUrl || !before || Date.now() - before.fetchedAt < METADATA_REFETCH_FLOOR_MS) return false;
    try {
      const after = await this.#refresh();
      return after.metadata.certificates.join() !== before.metadata.certificates.join();
    } catch {
      return false;
    }
  }

  #refresh(): Promise<Loaded> {
    return this.#metadata.refresh();
  }

  async #load(): Promise<Loaded> {
    const insecure = this.#opts.allowInsecureHttp === true;
    const xml = this.#opts.metadataXml ?? (await this.#fetchMetadata(this.#opts.metadataUrl!, insecure));
    try {
      return { metadata: parseIdpMetadata(xml, { insecure }), fetchedAt: Date.now() };
    } catch (error) {
      if (error instanceof MetadataInvalid) throw this.#invalid(error.message, error);
      throw error;
    }
  }

  async #fetchMetadata(url: string, insecure: boolean): Promise<string> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (cause) {
      throw this.#invalid(`idpMetadataUrl ${clip(url, 100)} is not a URL`, cause);
    }
    if (!(parsed.protocol === 'https:' || (insecure && parsed.protocol === 'http:'))) throw this.#invalid(`idpMetadataUrl ${parsed.href} must be https`);
    const response = await this.#http.request(parsed.href, { method: 'GET', headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' }, body: undefined }, 'discovery');
    if (response.status !== 200) throw this.#invalid(`idpMetadataUrl answered HTTP ${response.status}`);
    return response.text();
  }

  #invalid(message: string, cause?: unknown): UpstreamError {
    return new UpstreamError('discovery_invalid', `SAML metadata: ${message}`, { participantId: this.participantId, cause, setting: this.#opts.metadataUrl ? 'upstream.idpMetadataUrl' : 'upstream.idpMetadataXml' });
  }
}

/** The ID of the LogoutRequest sent for the logout with this RelayState: its LogoutResponse must answer it (InResponseTo). */
export function logoutRequestId(state: string): string {
  return `_${createHash('sha256').update(`concord-logout\0${state}`).digest('hex').slice(0, 40)}`;
}

/** The check a node-saml refusal corresponds to, from its message (node-saml 5.1 throws plain Errors). */
function checkOf(error: unknown): SamlCheck {
  if (error instanceof SamlStatusError) return 'saml_status';
  const message = error instanceof Error ? error.message : String(error);
  if (/InResponseTo/i.test(message)) return 'saml_in_response_to';
  if (/audience/i.test(message)) return 'saml_audience';
  if (/not yet valid|expired|subject confirmation|NotOnOrAfter|NotBefore/i.test(message)) return 'saml_time';
  if (/issuer/i.test(message)) return 'saml_issuer';
  if (/Bad status code/i.test(message)) return 'saml_status';
  if (/multiple assertions|Missing SAML assertion/i.test(message)) return 'saml_assertion_count';
  if (/decrypt/i.test(message)) return 'saml_decryption';
  if (/signature|signed|reference|transform/i.test(message)) return 'saml_signature';
  if (/is not supported/i.test(message)) return 'saml_algorithm';
  return 'saml_malformed';
}

/** The signature algorithm of a Redirect-binding message (SAML bindings 3.4.4.1). */
function checkSigAlg(sigAlg: string, allowSha1: boolean, participantId: string): void {
  const allowed = ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512', ...(allowSha1 ? ['http://www.w3.org/2000/09/xmldsig#rsa-sha1'] : [])];
  if (!allowed.includes(sigAlg)) throw refuse('saml_algorithm', `SigAlg ${clip(sigAlg, 100)} is refused`, participantId);
}

/** Redirect binding (SAML bindings 3.4.4.1): base64 of DEFLATE; inflated with a bound on its size. */
function inflate(value: string, participantId: string): string {
  const compact = value.replace(/[\r\n ]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) throw refuse('saml_malformed', 'the SAML message is not base64', participantId);
  try {
    return inflateRawSync(Buffer.from(compact, 'base64'), { maxOutputLength: MAX_MESSAGE_BYTES }).toString('utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw refuse('saml_body_too_large', `the SAML message inflates to more than ${MAX_MESSAGE_BYTES} bytes`, participantId);
    throw refuse('saml_malformed', 'the SAML message is not DEFLATE-compressed', participantId, error);
  }
}

