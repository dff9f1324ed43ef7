import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jsonSchemas } from './json-schema.ts';

/**
 * `npm run schema`: writes the JSON Schemas of every configuration file (each setting with its
 * description and default, from schema.ts) to the repository's schema/, or to the directory given.
 * They are generated, so git ignores schema/ (.gitignore).
 */
const outDir = process.argv[2] ? path.resolve(process.argv[2]) : path.resolve(import.meta.dirname, '../../schema');
await mkdir(outDir, { recursive: true });
for (const [name, schema] of Object.entries(jsonSchemas())) {
  const file = path.join(outDir, `${name}.schema.json`);
  await writeFile(file, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
}
