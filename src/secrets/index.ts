import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { ConcordError } from '../errors.ts';

/**
 * AES-256-GCM for secrets at rest (signing keys, client and upstream secrets).
 * The sealed form `v2.<iv>.<tag>.<ciphertext>` (base64url) names its version so the format can change.
 *
 * Every value is sealed for a context (what it is and whose: `signing-key:{kid}`,
 * `participant:{id}:upstream.clientSecret`...), authenticated as GCM's additional data: a sealed value
 * copied into another record, by someone who can write to the store, does not open there. `v1` values
 * (no context) from before are still read.
 *
 * `z2` is `v2` of the DEFLATE (RFC 1951) of the plaintext: for large values kept long (a session's
 * upstream tokens and claims, about a third smaller); `plainz.` its form without a key. Compressed
 * before encryption, so the ciphertext's length says no more than the stored value's did. `z3` (and
 * `plainz3.`) is `z2` with DEFLATE's preset dictionary (RFC 1950 FDICT, zlib's `dictionary`) TOKEN_DICTIONARY:
 * the text an upstream's tokens and claims have in common, which a deflate of a kilobyte cannot
 * otherwise refer back to (a session's sealed upstream state 666 -> 536 bytes, measured).
 */
export interface SealOptions {
  /**
   * DEFLATE the plaintext first: `true` (sealed form `z2`), worth it from a few hundred bytes of text;
   * `'tokens'` (form `z3`) with TOKEN_DICTIONARY, for JSON holding an upstream's JWTs and claims.
   */
  compress?: boolean | 'tokens';
}

/**
 * The preset dictionary of `z3`: JSON field names and values an upstream's tokens, claims and logout
 * state (upstream/types.ts) hold, as sessions/records.ts packs them (a JWS's parts as JSON text).
 * Fixed for good: values sealed with it open only with these very bytes (another dictionary is
 * another version).
 */
const TOKEN_DICTIONARY = Buffer.from(
  '{"logout":{"protocol":"saml","nameId":"","nameIdFormat":"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent","sessionIndex":"_"},' +
    '"refresh":{"protocol":"oidc","refreshToken":"","accessToken":"","accessTokenExpiresAt":17,"claims":{"sub":"","email":"","email_verified":true,"name":"","groups":["' +
    '{"logout":{"protocol":"oidc","idTokenHint":{"jws":["{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"",' +
    '"{\"iss\":\"https://\",\"sub\":\"\",\"aud\":\"\",\"exp\":17,\"iat\":17,\"auth_time\":17,\"nonce\":\"\",\"at_hash\":\"\",\"sid\":\"\",\"acr\":\"\",\"amr\":[\"pwd\"],' +
    '\"email\":\"\",\"email_verified\":true,\"name\":\"\",\"given_name\":\"\",\"family_name\":\"\",\"preferred_username\":\"\",\"upn\":\"\",\"groups\":[\"\"],\"roles\":[\"\"],\"tid\":\"\",\"oid\":\"\"}"]},"sid":"',
  'utf8',
);

/** The first byte of sealBytes's value: the form (`seal`'s prefix) it stands for. None is `"` (0x22), the start of a JSON string. */
const BYTE_FORMS = { v2: 0x02, z2: 0x12, z3: 0x13, plain: 0x82, plainz: 0x92, plainz3: 0x93 } as const;
type ByteForm = keyof typeof BYTE_FORMS;
const FORM_OF_BYTE = new Map<number, ByteForm>(Object.entries(BYTE_FORMS).map(([form, byte]) => [byte, form as ByteForm]));

const deflate = (plaintext: string, compress: SealOptions['compress']): Buffer =>
  compress === 'tokens' ? deflateRawSync(Buffer.from(plaintext, 'utf8'), { dictionary: TOKEN_DICTIONARY }) : deflateRawSync(Buffer.from(plaintext, 'utf8'));
const inflate = (compressed: Buffer, version: string): Buffer =>
  inflateRawSync(compressed, version === 'z3' || version === 'plainz3' ? { ...INFLATE_LIMIT, dictionary: TOKEN_DICTIONARY } : INFLATE_LIMIT);

export interface SecretBox {
  seal(plaintext: string, context: string, options?: SealOptions): string;
  /**
   * seal's value as bytes, for a store that keeps bytes (Store.setBytes): a form byte (BYTE_FORMS:
   * `v2`, `z2`, `z3`, or their forms without a key), then the IV (12 bytes), the tag (16) and the
   * ciphertext (without a key, the plaintext, DEFLATEd as asked): a third smaller than seal's base64url text.
   */
  sealBytes(plaintext: string, context: string, options?: SealOptions): Buffer;
  /** Opens what sealBytes made. Throws as open does (a form byte it does not know: `secret_unreadable`). */
  openBytes(sealed: Buffer, context: string): string;
  /** Opens every form (`v1`, `v2`, `z2`, `z3`, and `plain.`/`plainz.`/`plainz3.` without a key). */
  open(sealed: string, context: string): string;
  /** False when no CONCORD_SECRETS_KEY is set: values are then kept as plaintext (the embedded store only). */
  readonly encrypting: boolean;
}

/** Nothing Concord seals is near 1 MiB; a value that inflates past it was not written by Concord. */
const INFLATE_LIMIT = { maxOutputLength: 1 << 20 };

export function createSecretBox(base64Key: string | undefined): SecretBox {
  if (!base64Key) {
    return {
      encrypting: false,
      seal: (plaintext, _context, options) =>
        options?.compress ? `${options.compress === 'tokens' ? 'plainz3' : 'plainz'}.${deflate(plaintext, options.compress).toString('base64url')}` : `plain.${Buffer.from(plaintext).toString('base64url')}`,
      sealBytes: (plaintext, _context, options) => {
        const form: ByteForm = options?.compress === 'tokens' ? 'plainz3' : options?.compress ? 'plainz' : 'plain';
        return Buffer.concat([Buffer.of(BYTE_FORMS[form]), options?.compress ? deflate(plaintext, options.compress) : Buffer.from(plaintext, 'utf8')]);
      },
      openBytes: (sealed) => {
        const form = FORM_OF_BYTE.get(sealed[0] ?? -1);
        if (form === 'plain') return sealed.subarray(1).toString('utf8');
        if (form === 'plainz' || form === 'plainz3') return inflate(sealed.subarray(1), form).toString('utf8');
        if (form === undefined) throw new ConcordError('secret_unreadable', 'a stored secret has an unknown format');
        throw new ConcordError('secrets_key_missing', 'a secret in the store is encrypted; set CONCORD_SECRETS_KEY to read it');
      },
      open: (sealed) => {
        if (sealed.startsWith('plain.')) return Buffer.from(sealed.slice(6), 'base64url').toString();
        if (sealed.startsWith('plainz.')) return inflate(Buffer.from(sealed.slice(7), 'base64url'), 'plainz').toString('utf8');
        if (sealed.startsWith('plainz3.')) return inflate(Buffer.from(sealed.slice(8), 'base64url'), 'plainz3').toString('utf8');
        throw new ConcordError('secrets_key_missing', 'a secret in the store is encrypted; set CONCORD_SECRETS_KEY to read it');
      },
    };
  }
  const key = Buffer.from(base64Key, 'base64');
  if (key.length !== 32) {
    throw new ConcordError('invalid_secrets_key', 'CONCORD_SECRETS_KEY must be 32 bytes in base64 (openssl rand -base64 32)');
  }
  // Imported once: a cipher made with a Buffer key imports it again on every call (20 against 7.5 µs a seal).
  const keyObject = createSecretKey(key);
  return {
    encrypting: true,
    seal(plaintext, context, options) {
      const { form, iv, tag, ciphertext } = encrypt(plaintext, context, options);
      return [form, iv, tag, ciphertext].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
    },
    sealBytes(plaintext, context, options) {
      const { form, iv, tag, ciphertext } = encrypt(plaintext, context, options);
      return Buffer.concat([Buffer.of(BYTE_FORMS[form]), iv, tag, ciphertext]);
    },
    openBytes(sealed, context) {
      const form = FORM_OF_BYTE.get(sealed[0] ?? -1);
      if (form === 'plain' || form === 'plainz' || form === 'plainz3') {
        throw new ConcordError('secret_not_sealed', 'a stored secret is not encrypted although CONCORD_SECRETS_KEY is set (written before the key was set, or planted): see "Setting CONCORD_SECRETS_KEY on an existing store" in docs/operations.md');
      }
      if (form === undefined || sealed.length < 1 + 12 + 16) throw new ConcordError('secret_unreadable', 'a stored secret has an unknown format');
      return decrypt(form, sealed.subarray(1, 13), sealed.subarray(13, 29), sealed.subarray(29), context);
    },
    open(sealed, context) {
      // With a key, Concord never writes a value in the clear: one in the store was either written
      // before the key was set or put there by someone else (a planted signing key would let them
      // mint tokens). Either way it is not used; docs/operations.md says how to replace it.
      if (sealed.startsWith('plain.') || sealed.startsWith('plainz.') || sealed.startsWith('plainz3.')) {
        throw new ConcordError('secret_not_sealed', 'a stored secret is not encrypted although CONCORD_SECRETS_KEY is set (written before the key was set, or planted): see "Setting CONCORD_SECRETS_KEY on an existing store" in docs/operations.md');
      }
      const [version, iv, tag, ciphertext] = sealed.split('.');
      if ((version !== 'v1' && version !== 'v2' && version !== 'z2' && version !== 'z3') || !iv || !tag || ciphertext === undefined) {
        throw new ConcordError('secret_unreadable', 'a stored secret has an unknown format');
      }
      return decrypt(version, Buffer.from(iv, 'base64url'), Buffer.from(tag, 'base64url'), Buffer.from(ciphertext, 'base64url'), context);
    },
  };

  function encrypt(plaintext: string, context: string, options: SealOptions | undefined): { form: 'v2' | 'z2' | 'z3'; iv: Buffer; tag: Buffer; ciphertext: Buffer } {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', keyObject, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const input = options?.compress ? deflate(plaintext, options.compress) : Buffer.from(plaintext, 'utf8');
    const ciphertext = Buffer.concat([cipher.update(input), cipher.final()]);
    return { form: options?.compress === 'tokens' ? 'z3' : options?.compress ? 'z2' : 'v2', iv, tag: cipher.getAuthTag(), ciphertext };
  }

  function decrypt(version: string, iv: Buffer, authTag: Buffer, ciphertext: Buffer, context: string): string {
    // A full 128-bit tag only: a shortened one would be checked on fewer bits.
    if (authTag.length !== 16) throw new ConcordError('secret_unreadable', 'a stored secret has an unknown format');
    try {
      const decipher = createDecipheriv('aes-256-gcm', keyObject, iv, { authTagLength: 16 });
      if (version !== 'v1') decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(authTag);
      const plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      return (version === 'z2' || version === 'z3' ? inflate(plain, version) : plain).toString('utf8');
    } catch (cause) {
      throw new ConcordError('secret_unreadable', `a stored secret (${context}) cannot be decrypted with CONCORD_SECRETS_KEY, or was sealed for another record`, { cause });
    }
  }
}
