import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { ConcordSettingsSchema, ConfigError, jsonSchemas, loadConfig, type OidcUpstream } from '../../src/config/index.ts';

const run = promisify(execFile);

async function configDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'concord-config-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

const ACME = `id: acme
displayName: Acme
domains: [Acme.Example]
upstream:
  type: oidc
  issuer: https://idp.acme.example
  clientId: concord
  clientSecretEnv: ACME_SECRET
`;

describe('configuration: signing algorithms', () => {
  const issuesOfLoad = async (files: Record<string, string>) => {
    try {
      await loadConfig({ dir: await configDir(files), env: {} });
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.issues.map((i) => `${i.source}:${i.field}: ${i.message}`);
    }
  };

  it('offers RS256 and ES256 by default, access tokens in ES256', async () => {
    const { settings } = await loadConfig({ dir: await configDir({}), env: {} });
    assert.deepEqual(settings.keys.algorithms, ['RS256', 'ES256']);
    assert.equal(settings.keys.accessTokenAlgorithm, 'ES256');
  });

  it('reads the single keys.algorithm of earlier releases as the access-token algorithm, and offers it', async () => {
    const { settings } = await loadConfig({ dir: await configDir({ 'concord.yaml': 'keys:\n  algorithm: EdDSA\n' }), env: {} });
    assert.deepEqual(settings.keys.algorithms, ['RS256', 'ES256', 'EdDSA']);
    assert.equal(settings.keys.accessTokenAlgorithm, 'EdDSA');
  });

  it('refuses a list without RS256, an access-token algorithm not offered, HMAC and none', async () => {
    assert.match((await issuesOfLoad({ 'concord.yaml': 'keys:\n  algorithms: [ES256]\n' })).join('\n'), /keys\.algorithms: must include RS256/);
    assert.match((await issuesOfLoad({ 'concord.yaml': 'keys:\n  accessTokenAlgorithm: PS256\n' })).join('\n'), /keys\.accessTokenAlgorithm: PS256 is not one of keys\.algorithms \(RS256, ES256\)/);
    for (const alg of ['HS256', 'none']) assert.match((await issuesOfLoad({ 'concord.yaml': `keys:\n  algorithms: [RS256, ${alg}]\n` })).join('\n'), /keys\.algorithms\.1/);
  });

  it('refuses a client file naming an algorithm the deployment does not offer', async () => {
    const client = 'client_id: a\nclient_secret: a-secret-0123456789abc\nredirect_uris: [https://a.example/cb]\nid_token_signed_response_alg: PS256\n';
    assert.match((await issuesOfLoad({ 'clients/a.yaml': client })).join('\n'), /clients\/a\.yaml:id_token_signed_response_alg: PS256 is not offered by this deployment \(keys\.algorithms: RS256, ES256\)/);
    assert.match((await issuesOfLoad({ 'concord.yaml': 'keys:\n  algorithms: [RS256, PS256]\n' })).join('\n'), /keys\.accessTokenAlgorithm: ES256 \(the default\) is not one of keys\.algorithms \(RS256, PS256\): set keys\.accessTokenAlgorithm/);
    assert.deepEqual(await issuesOfLoad({ 'clients/a.yaml': client, 'concord.yaml': 'keys:\n  algorithms: [RS256, PS256]\n  accessTokenAlgorithm: PS256\n' }), []);
  });
});

describe('configuration', () => {
  it('applies defaults, reads participants and clients, lowercases domains', async () => {
    const dir = await configDir({ 'participants/acme.yaml': ACME, 'clients/a.yaml': 'client_id: a\nclient_secret: a-secret-0123456789abc\nredirect_uris: [https://a.example/cb]\n' });
    const config = await loadConfig({ dir, env: {} });
    assert.equal(config.settings.issuer, 'http://localhost:3000');
    assert.equal(config.settings.tokens.accessTokenTtl, 300);
    assert.equal(config.settings.admin.host, '127.0.0.1');
    assert.deepEqual(config.participants[0]!.domains, ['acme.example']);
    assert.deepEqual((config.participants[0]!.upstream as OidcUpstream).scopes, ['openid', 'email', 'profile']);
    assert.equal(config.clients[0]!.token_endpoint_auth_method, 'client_secret_basic');
    await rm(dir, { recursive: true });
  });

  it('lets CONCORD_* variables win over concord.yaml', async () => {
    const dir = await configDir({ 'concord.yaml': 'issuer: https://from-file.example\nport: 3100\ntokens: { accessTokenTtl: 10m }\n' });
    const config = await loadConfig({ dir, env: { CONCORD_ISSUER: 'https://from-env.example', CONCORD_ADMIN_PORT: '9999', CONCORD_STORE: 'redis://127.0.0.1:6379' } });
    assert.equal(config.settings.issuer, 'https://from-env.example');
    assert.equal(config.settings.port, 3100);
    assert.equal(config.settings.admin.port, 9999);
    assert.equal(config.settings.store, 'redis://127.0.0.1:6379');
    assert.equal(config.settings.tokens.accessTokenTtl, 600);
  });

  it('names the file, the field and the problem for every bad value', async () => {
    const dir = await configDir({
      'concord.yaml': 'port: seventy\n',
      'participants/acme.yaml': ACME.replace('https://idp.acme.example', 'not a url'),
      'clients/b.yaml': 'client_id: b\nredirect_uris: [https://b.example/cb]\n',
    });
    const error = await loadConfig({ dir, env: {} }).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof ConfigError);
    const byField = new Map(error.issues.map((i) => [`${path.basename(i.source)}:${i.field}`, i.message]));
    assert.ok(byField.has('concord.yaml:port'), [...byField.keys()].join(', '));
    assert.ok(byField.has('acme.yaml:upstream.issuer'));
    assert.match(byField.get('b.yaml:client_secret') ?? '', /required/);
    assert.doesNotMatch(error.message, /\n\s+at /, 'no stack trace in the message');
  });

  it('takes every store URL form: memory, redis, rediss, redis-cluster, redis-sentinel', async () => {
    const dir = await configDir({});
    for (const store of ['memory', 'redis://127.0.0.1:6379/2', 'rediss://u:p@redis.example:6380', 'redis-cluster://10.0.0.1:7000,10.0.0.2:7000', 'redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/concord']) {
      assert.equal((await loadConfig({ dir, env: { CONCORD_STORE: store } })).settings.store, store);
    }
    await rm(dir, { recursive: true });
  });

  it('names the environment variable when it is the bad value', async () => {
    const dir = await configDir({});
    const error = await loadConfig({ dir, env: { CONCORD_STORE: 'mysql://x' } }).catch((e: ConfigError) => e);
    assert.ok(error instanceof ConfigError);
    assert.equal(error.issues[0]!.source, 'environment CONCORD_STORE');
  });

  it('refuses a domain owned by two participants and a file that is not YAML', async () => {
    const dir = await configDir({
      'participants/acme.yaml': ACME,
      'participants/evil.yaml': ACME.replace('id: acme', 'id: evil'),
      'participants/broken.yaml': 'id: [unclosed\n',
    });
    const error = await loadConfig({ dir, env: {} }).catch((e: ConfigError) => e);
    assert.ok(error instanceof ConfigError);
    assert.ok(error.issues.some((i) => i.source.endsWith('evil.yaml') && i.field === 'domains.0' && /already owned by participant "acme"/.test(i.message)));
    assert.ok(error.issues.some((i) => i.source.endsWith('broken.yaml') && /^not valid YAML: line 2, column 1: .*[^:]$/.test(i.message)), 'where, and no dangling colon');
    assert.ok(error.issues.some((i) => i.field === 'upstream.issuer' && /already serves participant "acme"/.test(i.message)), 'one upstream serves one participant');
  });

  it('refuses a plain-http upstream unless it is marked for development', async () => {
    const dir = await configDir({ 'participants/acme.yaml': ACME.replace('https://', 'http://') });
    const error = await loadConfig({ dir, env: {} }).catch((e: ConfigError) => e);
    assert.ok(error instanceof ConfigError);
    assert.equal(error.issues[0]!.field, 'upstream.issuer');
  });

  it('reads SAML participants with their defaults, and names what is wrong with one', async () => {
    const uni = `id: uni
displayName: University
domains: [uni.example]
upstream:
  type: saml
  idpMetadataUrl: https://idp.uni.example/metadata
  attributeAliases: { 'urn:oid:2.5.4.42': first_name }
`;
    const dir = await configDir({ 'participants/uni.yaml': uni });
    const config = await loadConfig({ dir, env: {} });
    const upstream = config.participants[0]!.upstream;
    assert.equal(upstream.type, 'saml');
    if (upstream.type !== 'saml') return;
    assert.equal(upstream.nameIdFormat, 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
    assert.equal(upstream.wantAssertionsEncrypted, false);
    assert.equal(upstream.allowSha1, false);
    assert.equal(upstream.allowIdpInitiated, false);
    assert.deepEqual(upstream.attributeAliases, { 'urn:oid:2.5.4.42': 'first_name' });
    const bad = await configDir({
      'participants/both.yaml': uni.replace('id: uni', 'id: both').replace('uni.example', 'both.example').replace('  attributeAliases', '  idpMetadataXml: "<x/>"\n  attributeAliases'),
      'participants/plain.yaml': uni.replace('id: uni', 'id: plain').replace('uni.example', 'plain.example').replace('https://', 'http://'),
      'participants/transient.yaml': uni.replace('id: uni', 'id: transient').replace('uni.example', 'transient.example').replace('  attributeAliases', '  nameIdFormat: urn:oasis:names:tc:SAML:2.0:nameid-format:transient\n  attributeAliases'),
      'participants/typo.yaml': uni.replace('id: uni', 'id: typo').replace('uni.example', 'typo.example').replace('  attributeAliases', '  clientId: nope\n  attributeAliases'),
    });
    const error = await loadConfig({ dir: bad, env: {} }).catch((e: ConfigError) => e);
    assert.ok(error instanceof ConfigError);
    const issue = (file: string) => error.issues.find((i) => i.source.endsWith(file));
    assert.match(issue('both.yaml')!.message, /exactly one of idpMetadataUrl and idpMetadataXml/);
    assert.match(issue('plain.yaml')!.message, /must be https/);
    assert.match(issue('transient.yaml')!.message, /transient NameID/);
    assert.match(issue('typo.yaml')!.message, /clientId/);
  });

  it('stops `npm start` on a bad file with a readable message and a non-zero exit', async () => {
    const dir = await configDir({ 'concord.yaml': 'logLevel: loud\n' });
    const result = await run(process.execPath, ['src/main.ts'], { env: { ...process.env, CONCORD_CONFIG_DIR: dir }, cwd: path.resolve(import.meta.dirname, '../..') }).then(
      () => assert.fail('should exit non-zero'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(result.code, 78);
    assert.match(result.stderr, /concord\.yaml \(logLevel\)/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  it('exports the schemas as JSON Schema (npm run schema)', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'concord-schema-'));
    await run(process.execPath, ['src/config/write-schema.ts', out], { cwd: path.resolve(import.meta.dirname, '../..') });
    const participant = JSON.parse(await readFile(path.join(out, 'participant.schema.json'), 'utf8'));
    assert.deepEqual(participant.required.sort(), ['displayName', 'domains', 'id', 'upstream']);
    assert.ok(participant.properties.mapping, 'mapping rules are in the participant schema');
    const concord = JSON.parse(await readFile(path.join(out, 'concord.schema.json'), 'utf8'));
    assert.equal(concord.properties.port.default, 3000);
  });

  it('documents every setting in the JSON Schemas: a description each, and the defaults Concord applies', async () => {
    const schemas = jsonSchemas() as Record<string, JsonSchema>;
    const undocumented: string[] = [];
    let settings = 0;
    for (const [name, schema] of Object.entries(schemas)) {
      eachProperty(schema, name, (at, property) => {
        settings++;
        if (typeof property.description !== 'string' || property.description.trim().length < 8) undocumented.push(at);
      });
    }
    assert.ok(settings > 100, `${settings} settings`);
    assert.deepEqual(undocumented, [], 'settings without a description (add .describe() in the zod schema)');

    // Each default in the JSON Schema is what Concord applies when the setting is left out.
    const applied = ConcordSettingsSchema.parse({}) as Record<string, unknown>;
    let defaults = 0;
    eachProperty(schemas.concord!, '', (at, property) => {
      // Settings of the file itself (not inside list items), with a default that is a value rather than "each field's own".
      if (!('default' in property) || /[[#{]/.test(at) || (typeof property.default === 'object' && property.default !== null && !Array.isArray(property.default))) return;
      const value = at.split('.').filter(Boolean).reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], applied);
      assert.deepEqual(property.default, value, `default of ${at}`);
      defaults++;
    });
    assert.ok(defaults >= 25, `${defaults} defaults checked`);
  });

  it('writes the JSON Schemas where the README says, which git ignores (they are generated)', async () => {
    const root = path.resolve(import.meta.dirname, '../..');
    const readme = await readFile(path.join(root, 'README.md'), 'utf8');
    assert.match(readme, /`npm run schema` writes JSON Schemas[^.]*to `schema\/`/);
    const { stdout } = await run('git', ['check-ignore', 'schema/concord.schema.json', 'schema/participant.schema.json', 'schema/client.schema.json'], { cwd: root });
    assert.equal(stdout.trim().split('\n').length, 3, 'git ignores schema/*.schema.json');
    const source = await readFile(path.join(root, 'src/config/write-schema.ts'), 'utf8');
    assert.match(source, /'\.\.\/\.\.\/schema'/, 'npm run schema writes to the repository\'s schema/, wherever it is run from');
  });
});

interface JsonSchema {
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  additionalProperties?: JsonSchema | boolean;
  $defs?: Record<string, JsonSchema>;
}

/** Calls `visit` with every property of `schema` (nested objects, array items, unions and $defs too), and its dotted path. */
function eachProperty(schema: JsonSchema, at: string, visit: (at: string, property: JsonSchema) => void): void {
  for (const branch of [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])]) eachProperty(branch, at, visit);
  if (schema.items) eachProperty(schema.items, `${at}[]`, visit);
  if (typeof schema.additionalProperties === 'object') eachProperty(schema.additionalProperties, `${at}{}`, visit);
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    const path = at ? `${at}.${key}` : key;
    visit(path, property);
    eachProperty(property, path, visit);
  }
  for (const [name, definition] of Object.entries(schema.$defs ?? {})) eachProperty(definition, `${at}#${name}`, visit);
}
