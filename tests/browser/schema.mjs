// The wall state's contract, checked in JS: `wall-state.schema.json` is generated from the server's
// Rust types (src-tauri/crates/core/src/http/state.rs; a unit test there fails when the file is stale), and
// the fake server (fake-server.mjs) checks each state it serves against it, so the two cannot drift.
//
// A tiny JSON Schema validator for the subset schemars emits: local $ref, type (one or a list), enum,
// const, anyOf/oneOf, properties/required/additionalProperties:false, items, minimum. Anything else in the
// schema is an error here rather than silently ignored.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const WALL_STATE_SCHEMA = JSON.parse(fs.readFileSync(path.join(HERE, 'wall-state.schema.json'), 'utf8'));

// Keywords that only describe (no constraint for our purposes).
const DESCRIPTIVE = new Set(['$schema', '$defs', 'title', 'description', 'format', 'default', 'examples']);
const HANDLED = new Set(['$ref', 'type', 'enum', 'const', 'anyOf', 'oneOf', 'properties', 'required', 'additionalProperties', 'items', 'minimum']);

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v; // string, boolean, object
}

function resolve(root, ref) {
  if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(2).split('/').reduce((node, k) => node?.[k], root) ?? (() => { throw new Error(`dangling $ref ${ref}`); })();
}

function check(root, schema, value, at, errors) {
  for (const k of Object.keys(schema)) {
    if (!DESCRIPTIVE.has(k) && !HANDLED.has(k)) throw new Error(`schema keyword ${k} at ${at} is not supported by tests/browser/schema.mjs`);
  }
  if (schema.$ref) check(root, resolve(root, schema.$ref), value, at, errors);
  if (schema.type) {
    const types = [].concat(schema.type);
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) {
      errors.push(`${at}: expected ${types.join(' or ')}, got ${t} (${JSON.stringify(value)?.slice(0, 60)})`);
      return;
    }
  }
  if (schema.enum && !schema.enum.some((e) => e === value)) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && schema.const !== value) errors.push(`${at}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  if (schema.minimum !== undefined && typeof value === 'number' && value < schema.minimum) errors.push(`${at}: ${value} < ${schema.minimum}`);
  for (const [key, many] of [['anyOf', 'any'], ['oneOf', 'one']]) {
    if (!schema[key]) continue;
    const passing = schema[key].filter((s) => { const e = []; check(root, s, value, at, e); return e.length === 0; }).length;
    if (many === 'any' ? passing === 0 : passing !== 1) errors.push(`${at}: matches ${passing} of the ${key} alternatives`);
  }
  if (typeOf(value) === 'object') {
    const props = schema.properties || {};
    for (const r of schema.required || []) if (!(r in value)) errors.push(`${at}: missing field "${r}"`);
    for (const [k, v] of Object.entries(value)) {
      if (props[k]) check(root, props[k], v, `${at}.${k}`, errors);
      else if (schema.additionalProperties === false) errors.push(`${at}: unknown field "${k}"`);
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((v, i) => check(root, schema.items, v, `${at}[${i}]`, errors));
}

/**
 * The ways `value` breaks `schema` (empty when it conforms).
 * @param {object} [o.extra] fields a fake may add beyond the contract, by path without indices
 *   (e.g. `participants.nickname_color`): each one is a proposal the server does not implement yet.
 */
export function violations(value, schema = WALL_STATE_SCHEMA, { extra = [] } = {}) {
  const errors = [];
  check(schema, schema, value, '$', errors);
  const allowed = new Set(extra.map((e) => `$.${e}`));
  return errors.filter((e) => {
    const m = e.match(/^(.*): unknown field "(.+)"$/);
    return !(m && allowed.has(`${m[1].replace(/\[\d+\]/g, '')}.${m[2]}`));
  });
}
