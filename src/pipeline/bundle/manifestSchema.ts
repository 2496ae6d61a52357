import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import AjvModule, { type ErrorObject } from 'ajv';

import { BundleError } from '../errors.js';

/** schemas/stepframe-bundle.schema.json at the repository (or image) root, from src/ or dist/src/. */
export const MANIFEST_SCHEMA_FILE = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== dirname(dir) && !existsSync(join(dir, 'schemas', 'stepframe-bundle.schema.json'))) dir = dirname(dir);
  return join(dir, 'schemas', 'stepframe-bundle.schema.json');
})();

// ajv ships CommonJS with its class on `default`.
const Ajv = AjvModule.default;
// strictRequired off: the schema's if/then requires components that the then-branch does not redefine.
const validate = new Ajv({ allErrors: false, strict: true, strictRequired: false, allowUnionTypes: true }).compile(JSON.parse(readFileSync(MANIFEST_SCHEMA_FILE, 'utf8')));

/** Checks a parsed stepframe.json against the schema training/ checks too; the error names the file and the field. */
export function checkManifestSchema(raw: unknown, file: string): void {
  if (validate(raw)) return;
  throw new BundleError(`${file}: ${describe(validate.errors![0], raw)}`);
}

function describe(error: ErrorObject, raw: unknown): string {
  const path = error.instancePath.split('/').slice(1);
  const at = path.join('.');
  if (error.keyword === 'required') {
    const missing = [...path, (error.params as { missingProperty: string }).missingProperty].join('.');
    return error.schemaPath.startsWith('#/then') ? `${missing} is required: a fuser other than baseline reads the previous image` : `${missing} is required`;
  }
  // A key that propertyNames refuses: ajv reports the inner enum with the key's name beside it.
  const key = error.propertyName ?? (error.keyword === 'propertyNames' ? (error.params as { propertyName: string }).propertyName : undefined);
  if (key !== undefined) return `${[...path, key].join('.')} is not a known component (text_encoder, image_encoder, vae_encoder, vae_decoder, unet, fuser)`;
  const value = path.reduce<unknown>((o, key) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[key] : undefined), raw);
  const allowed = error.keyword === 'const' ? ` ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}` : error.keyword === 'enum' ? `: ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` : '';
  const got = JSON.stringify(value) ?? 'nothing';
  return `${at || 'the manifest'} ${error.message}${allowed}, got ${got.length > 80 ? `${got.slice(0, 77)}...` : got}`;
}
