import { createHmac } from 'node:crypto';

/**
 * A 32-byte key for one purpose (`label`), derived from CONCORD_SECRETS_KEY when set (required with
 * Redis: the same on every instance, and not in the store a reader could see); else from the
 * embedded store's own secret, which lives and dies with the process.
 */
export function derivedKey(secretsKey: string | undefined, fallbackSecret: string, label: string): Buffer {
  const base = secretsKey ? Buffer.from(secretsKey, 'base64') : Buffer.from(fallbackSecret, 'utf8');
  return createHmac('sha256', base).update(label).digest();
}
