#!/usr/bin/env node
// Prisma's query engine for prisma-client-py, without the native binary.
//
// prisma-client-py (0.11, as pinned by LiteLLM) spawns a native `query-engine` binary and talks
// to it over HTTP: GraphQL documents POSTed to `/`, `GET /status`, `/transaction/*`. The binary
// is a download these machines cannot make, so this program stands in for it: it runs the REAL
// Prisma query engine compiled to WebAssembly (npm @prisma/query-engine-wasm, the same engine)
// on the pg driver adapter, and translates between the two protocols:
//
//   request:  GraphQL document -> Prisma's JSON protocol (same arguments and selection; Json
//             field values wrapped as {$type: 'Json'}, as the JSON protocol requires)
//   response: JSON protocol -> the binary engine's shape (typed values {$type, value} unwrapped;
//             raw query rows in the pre-5.x format prisma-client-py 0.11 parses)
//
// Environment (set by prisma-client-py): PRISMA_DML_PATH (the schema), DATABASE_URL or
// OVERWRITE_DATASOURCES. Arguments: `-p PORT` (others ignored), `--version`.
// Debug: DEVENV_QE_DEBUG=1 logs every request and response to stderr.
// Owned by devenv.litellm, which installs the npm packages of package.json beside this file.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// The engine commit prisma-client-py 0.11.0 (Prisma CLI 5.4.2) checks for at start.
const REPORTED_COMMIT = 'ac9d7041ed77bcc8a8dbd2ab6616b39013829574';
const DEBUG = Boolean(process.env.DEVENV_QE_DEBUG);
const debug = (...args) => { if (DEBUG) console.error('[query-engine]', ...args); };

// ------------------------------------------------------------------------------ arguments

const argv = process.argv.slice(2);
if (argv.some((a) => a === '--version' || a === '-V' || a === 'version')) {
  console.log(`query-engine ${REPORTED_COMMIT}`);
  process.exit(0);
}
function option(names, fallback) {
  const i = argv.findIndex((a) => names.includes(a));
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
}
const PORT = Number(option(['-p', '--port'], '4466'));

function fail(message) {
  console.error(`query-engine: ${message}`);
  process.exit(1);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'package.json'));
const { parse, Kind } = require('graphql');
const pg = require('pg');
const { PrismaPg } = require('@prisma/adapter-pg');
const { bindAdapter } = require('@prisma/driver-adapter-utils');

// ------------------------------------------------------------------------------- database

/** The datasource URL: OVERWRITE_DATASOURCES (what prisma-client-py passes) or DATABASE_URL. */
function datasourceUrl() {
  let url = process.env.DATABASE_URL;
  try {
    const overrides = JSON.parse(process.env.OVERWRITE_DATASOURCES || 'null');
    if (Array.isArray(overrides) && overrides[0]?.url) url = overrides[0].url;
  } catch { /* malformed: keep DATABASE_URL */ }
  return url;
}

// Query parameters only Prisma understands; node-postgres must not see them.
const PRISMA_ONLY_PARAMS = ['schema', 'connection_limit', 'pool_timeout', 'pgbouncer',
  'statement_cache_size', 'connect_timeout', 'socket_timeout', 'max_connection_lifetime',
  'max_idle_connection_lifetime'];

/** node-postgres pool settings from a Prisma URL: {connectionString, max, schema}. */
function poolSettings(url) {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? undefined;
  const max = Number(parsed.searchParams.get('connection_limit')) || 10;
  for (const name of PRISMA_ONLY_PARAMS) parsed.searchParams.delete(name);
  return { connectionString: parsed.toString(), max, schema };
}

// The pg adapter (5.17) rejects some catalog column types that the native engine reads as text
// (LiteLLM's startup queries pg_views, whose columns are `name`): report them as text/text[].
const AS_TEXT = new Set([18 /* char */, 19 /* name */, 24 /* regproc */, 2205 /* regclass */,
  2206 /* regtype */]);
const AS_TEXT_ARRAY = new Set([1002 /* char[] */, 1003 /* name[] */]);
const TEXT = 25;
const TEXT_ARRAY = 1009;
const parseTextArray = pg.types.getTypeParser(TEXT_ARRAY, 'text');

function retypeCatalogColumns(result) {
  if (!result || !Array.isArray(result.fields)) return result;
  result.fields.forEach((field, index) => {
    if (AS_TEXT.has(field.dataTypeID)) {
      field.dataTypeID = TEXT;
    } else if (AS_TEXT_ARRAY.has(field.dataTypeID)) {
      field.dataTypeID = TEXT_ARRAY;
      for (const row of result.rows ?? []) {
        const key = Array.isArray(row) ? index : field.name;
        if (typeof row[key] === 'string') row[key] = parseTextArray(row[key]);
      }
    }
  });
  return result;
}

function patchClientQuery() {
  const original = pg.Client.prototype.query;
  const wrap = (callback) => (error, result) => callback(error, error ? result : retypeCatalogColumns(result));
  pg.Client.prototype.query = function query(config, values, callback) {
    if (typeof values === 'function') values = wrap(values);
    else if (typeof callback === 'function') callback = wrap(callback);
    else if (config && typeof config.callback === 'function') config.callback = wrap(config.callback);
    const returned = original.call(this, config, values, callback);
    return returned && typeof returned.then === 'function' ? returned.then(retypeCatalogColumns) : returned;
  };
}

// --------------------------------------------------------------------------------- schema

/** Each model's fields from the Prisma schema: {Model: {field: {type, list}}}. */
function readModels(datamodel) {
  const models = {};
  let current = null;
  for (const raw of datamodel.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    const opening = !current && line.match(/^model\s+(\w+)\s*\{/);
    if (opening) { current = models[opening[1]] = {}; continue; }
    if (current && line.startsWith('}')) { current = null; continue; }
    const fieldLine = current && !line.startsWith('@@') && line.match(/^(\w+)\s+(\w+)(\[\])?\??/);
    if (fieldLine) current[fieldLine[1]] = { type: fieldLine[2], list: Boolean(fieldLine[3]) };
  }
  return models;
}

// ----------------------------------------------------------------- GraphQL -> JSON protocol

const ACTIONS = ['findUniqueOrThrow', 'findFirstOrThrow', 'findUnique', 'findFirst', 'findMany',
  'createManyAndReturn', 'createMany', 'createOne', 'updateMany', 'updateOne', 'deleteMany',
  'deleteOne', 'upsertOne', 'aggregate', 'groupBy'];
const RAW_ACTIONS = ['executeRaw', 'queryRaw', 'runCommandRaw'];

function graphqlValue(node) {
  switch (node.kind) {
    case Kind.STRING: case Kind.BOOLEAN: case Kind.ENUM: return node.value;
    case Kind.NULL: return null;
    case Kind.FLOAT: return Number(node.value);
    case Kind.INT: {
      const n = Number(node.value);
      return Number.isSafeInteger(n) ? n : { $type: 'BigInt', value: node.value };
    }
    case Kind.LIST: return node.values.map(graphqlValue);
    case Kind.OBJECT: return Object.fromEntries(node.fields.map((f) => [f.name.value, graphqlValue(f.value)]));
    default: throw new Error(`unsupported GraphQL value kind ${node.kind}`);
  }
}
const graphqlArguments = (nodes) => Object.fromEntries((nodes ?? []).map((a) => [a.name.value, graphqlValue(a.value)]));

function selectionOf(selectionSet) {
  const selection = {};
  for (const field of selectionSet?.selections ?? []) {
    const hasArgs = field.arguments?.length > 0;
    if (!field.selectionSet && !hasArgs) { selection[field.name.value] = true; continue; }
    const nested = { selection: field.selectionSet ? selectionOf(field.selectionSet) : { $scalars: true } };
    if (hasArgs) nested.arguments = graphqlArguments(field.arguments);
    selection[field.name.value] = nested;
  }
  return selection;
}

/** Rewrites input arguments so every value of a Json field is tagged {$type: 'Json'}. */
class JsonInputs {
  constructor(models) { this.models = models; }

  tag(value) { return typeof value === 'string' ? { $type: 'Json', value } : value; }

  /** A Json field's value: a plain value, or an operation/filter object ({set|equals|not}). */
  field(value, list) {
    if (list && Array.isArray(value)) return value.map((v) => this.tag(v));
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const out = { ...value };
      for (const op of ['set', 'equals', 'not']) {
        if (op in out) out[op] = list && Array.isArray(out[op]) ? out[op].map((v) => this.tag(v)) : this.tag(out[op]);
      }
      return out;
    }
    return this.tag(value);
  }

  /** `data`-like input of `model` (create/update payloads), recursing into relations. */
  data(model, data) {
    if (Array.isArray(data)) return data.map((d) => this.data(model, d));
    const fields = this.models[model];
    if (!fields || !data || typeof data !== 'object') return data;
    const out = {};
    for (const [name, value] of Object.entries(data)) {
      const field = fields[name];
      if (field?.type === 'Json') out[name] = this.field(value, field.list);
      else if (field && this.models[field.type] && value && typeof value === 'object') out[name] = this.nested(field.type, value);
      else out[name] = value;
    }
    return out;
  }

  /** Nested relation operations ({create, update, upsert, connectOrCreate, ...}). */
  nested(model, ops) {
    if (Array.isArray(ops)) return ops.map((o) => this.nested(model, o));
    const out = { ...ops };
    for (const key of ['create', 'data']) if (key in out) out[key] = this.data(model, out[key]);
    if ('update' in out) {
      const update = out.update;
      if (Array.isArray(update)) out.update = update.map((u) => this.nested(model, u));
      else if (update && 'where' in update && 'data' in update) out.update = this.nested(model, update);
      else out.update = this.data(model, update);
    }
    for (const key of ['upsert', 'connectOrCreate', 'createMany', 'updateMany']) {
      if (key in out) out[key] = this.nested(model, out[key]);
    }
    return out;
  }

  /** A `where` filter of `model`, through AND/OR/NOT and relation filters. */
  where(model, where) {
    if (Array.isArray(where)) return where.map((w) => this.where(model, w));
    const fields = this.models[model];
    if (!fields || !where || typeof where !== 'object') return where;
    const out = {};
    for (const [name, value] of Object.entries(where)) {
      const field = fields[name];
      if (['AND', 'OR', 'NOT'].includes(name)) out[name] = this.where(model, value);
      else if (field?.type === 'Json' && value && typeof value === 'object') out[name] = this.field(value, field.list);
      else if (field && this.models[field.type] && value && typeof value === 'object') {
        const relationOps = ['is', 'isNot', 'some', 'every', 'none'].filter((op) => op in value);
        if (relationOps.length) {
          out[name] = { ...value };
          for (const op of relationOps) out[name][op] = this.where(field.type, value[op]);
        } else {
          out[name] = this.where(field.type, value);
        }
      } else out[name] = value;
    }
    return out;
  }

  arguments(model, args) {
    if (!this.models[model]) return args;
    const out = { ...args };
    for (const key of ['data', 'create', 'update']) if (key in out) out[key] = this.data(model, out[key]);
    if ('where' in out) out.where = this.where(model, out.where);
    return out;
  }
}

/** One GraphQL operation -> {request (JSON protocol), alias (the result key expected back)}. */
function translate(document, jsonInputs) {
  const field = parse(document).definitions[0].selectionSet.selections[0];
  const name = field.name.value;
  const request = {
    query: {
      arguments: graphqlArguments(field.arguments),
      selection: field.selectionSet ? selectionOf(field.selectionSet) : { $scalars: true },
    },
  };
  if (RAW_ACTIONS.includes(name)) {
    request.action = name;
  } else {
    const action = ACTIONS.find((a) => name.startsWith(a));
    if (!action) throw new Error(`unknown root field ${name}`);
    request.action = action;
    request.modelName = name.slice(action.length);
    request.query.arguments = jsonInputs.arguments(request.modelName, request.query.arguments);
  }
  return { request, alias: field.alias ? field.alias.value : name };
}

// ----------------------------------------------------------------- JSON protocol -> binary

const TYPED_VALUES = new Set(['DateTime', 'BigInt', 'Decimal', 'Bytes', 'Json']);

/** {$type: 'DateTime', value: '...'} -> '...', recursively: the binary engine's plain values. */
function untype(value) {
  if (Array.isArray(value)) return value.map(untype);
  if (value && typeof value === 'object') {
    if (TYPED_VALUES.has(value.$type) && 'value' in value) return value.value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, untype(v)]));
  }
  return value;
}

/** A raw query result {columns, types, rows} as [{column: {prisma__type, prisma__value}}]. */
function legacyRawRows(result) {
  if (typeof result === 'string') {
    try { result = JSON.parse(result); } catch { return result; }
  }
  if (!result || !Array.isArray(result.columns) || !Array.isArray(result.rows)) return result;
  const cell = (type, value) => {
    if (value === null || value === undefined) return { prisma__type: 'null', prisma__value: null };
    if (type.endsWith('-array')) {
      const element = type.slice(0, -'-array'.length);
      return { prisma__type: 'array', prisma__value: value.map((v) => cell(element, v)) };
    }
    return { prisma__type: type, prisma__value: value };
  };
  return result.rows.map((row) => Object.fromEntries(result.columns.map((c, i) => [c, cell(result.types[i], row[i])])));
}

function toBinaryShape(response, alias, action) {
  if (!response?.data || typeof response.data !== 'object') return response; // errors pass through
  let data = untype(Object.values(response.data)[0]);
  if (action === 'queryRaw') data = legacyRawRows(data);
  return { ...response, data: { [alias]: data } };
}

// ---------------------------------------------------------------------------------- engine

async function loadEngine(datamodel, adapter) {
  const dir = path.join(here, 'node_modules/@prisma/query-engine-wasm/postgresql');
  const bindings = await import(path.join(dir, 'query_engine_bg.js'));
  const bytes = fs.readFileSync(path.join(dir, 'query_engine_bg.wasm'));
  const { instance } = await WebAssembly.instantiate(bytes, { './query_engine_bg.js': bindings });
  bindings.__wbg_set_wasm(instance.exports);
  const engine = new bindings.QueryEngine(
    { datamodel, logLevel: DEBUG ? 'info' : 'error', logQueries: false },
    (message) => debug(message),
    adapter,
  );
  return engine;
}

const TRACE = JSON.stringify({ traceparent: '00-10-10-00' });

async function query(engine, jsonInputs, body, txId) {
  if (body.batch) {
    const parts = body.batch.map((item) => translate(item.query, jsonInputs));
    const request = { batch: parts.map((p) => p.request), ...(body.transaction ? { transaction: {} } : {}) };
    debug('batch ->', JSON.stringify(request));
    const response = JSON.parse(await engine.query(JSON.stringify(request), TRACE, txId));
    if (response.batchResult) {
      response.batchResult = response.batchResult.map((r, i) => toBinaryShape(r, parts[i].alias, parts[i].request.action));
    }
    return response;
  }
  const { request, alias } = translate(body.query, jsonInputs);
  debug('query ->', JSON.stringify(request));
  const raw = await engine.query(JSON.stringify(request), TRACE, txId);
  debug('<-', raw.slice(0, 2000));
  return toBinaryShape(JSON.parse(raw), alias, request.action);
}

// ------------------------------------------------------------------------------------ main

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

function engineError(error) {
  const message = String(error?.message ?? error);
  return { errors: [{ error: message, user_facing_error: { is_panic: false, message, meta: {}, error_code: null } }] };
}

async function main() {
  const dmlPath = process.env.PRISMA_DML_PATH;
  if (!dmlPath) fail('PRISMA_DML_PATH is not set');
  const url = datasourceUrl();
  if (!url) fail('no database URL (DATABASE_URL or OVERWRITE_DATASOURCES)');
  const datamodel = fs.readFileSync(dmlPath, 'utf8');
  const jsonInputs = new JsonInputs(readModels(datamodel));

  patchClientQuery();
  const { connectionString, max, schema } = poolSettings(url);
  const pool = new pg.Pool({ connectionString, max });
  const adapter = bindAdapter(new PrismaPg(pool, schema ? { schema } : undefined));
  const engine = await loadEngine(datamodel, adapter);
  await engine.connect(TRACE);

  const routes = async (method, route, body, headers) => {
    if (method === 'GET' && route === '/status') return { status: 'ok' };
    if (route === '/metrics') return headers.accept?.includes('json') ? { counters: [], gauges: [], histograms: [] } : '';
    if (method === 'POST' && route === '/transaction/start') return engine.startTransaction(body || '{}', TRACE);
    const tx = route.match(/^\/transaction\/([^/]+)\/(commit|rollback)$/);
    if (method === 'POST' && tx) {
      return tx[2] === 'commit' ? engine.commitTransaction(tx[1], TRACE) : engine.rollbackTransaction(tx[1], TRACE);
    }
    if (method === 'POST' && (route === '/' || route === '')) {
      return query(engine, jsonInputs, JSON.parse(body), headers['x-transaction-id']);
    }
    return null;
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const route = req.url.split('?')[0];
      try {
        const result = await routes(req.method, route, Buffer.concat(chunks).toString('utf8'), req.headers);
        if (result === null) reply(res, 404, { errors: [{ error: `unsupported ${req.method} ${route}` }] });
        else reply(res, 200, result);
      } catch (error) {
        console.error('[query-engine] error:', error?.stack ?? error);
        reply(res, 200, engineError(error)); // the binary engine reports errors in the body
      }
    });
  });
  server.listen(PORT, '127.0.0.1', () => debug(`listening on 127.0.0.1:${PORT}`));

  const shutdown = async () => {
    server.close();
    try { await engine.disconnect(TRACE); } catch { /* already gone */ }
    await pool.end().catch(() => {});
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((error) => fail(error?.stack ?? String(error)));
