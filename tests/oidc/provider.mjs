// A real OpenID provider (node-oidc-provider, OpenID-certified) for Ostwerk's
// end-to-end OIDC tests (tests/api/oidc.rs). It serves on a loopback port only.
//
//   node tests/oidc/provider.mjs --port 4455 [--audience https://ostwerk.test/api] [--keys keys.json]
//
// (or OIDC_PORT, OIDC_AUDIENCE, OIDC_KEYS_FILE). The issuer is
// http://127.0.0.1:<port>. Tokens come from `client_credentials` at /token
// as JWT access tokens (RFC 9068, RS256) whose `aud` is the requested
// `resource` (default: the audience) and which carry the claims registered
// for the client (`roles`, `realm_access.roles`, `org`, …).
//
// Test-only admin endpoints (no authentication: loopback, a test fixture):
//   POST /_admin/clients {"client_id", "client_secret", "claims": {...}}  add or replace a client
//   POST /_admin/rotate  {"keep_previous": false}                          new signing key; the old one is
//                                                                          withdrawn from the JWKS unless kept
// Each change builds a new Provider from the state and swaps it in, so the
// process (and its port) stays the same; node-oidc-provider has no API to
// change its key set at run time.
//
// --keys FILE: the signing keys are read from FILE when it exists, else made
// and written there, so two providers (two issuers) can share one key (the
// "token of another issuer" test: a valid signature, the wrong `iss`).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PORT },
    audience: { type: 'string', default: process.env.OIDC_AUDIENCE || 'https://ostwerk.test/api' },
    keys: { type: 'string', default: process.env.OIDC_KEYS_FILE },
  },
});
const port = Number.parseInt(args.port ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.mjs --port PORT [--audience AUD] [--keys FILE]');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function initialKeys() {
  if (args.keys && existsSync(args.keys)) {
    return JSON.parse(readFileSync(args.keys, 'utf8')).keys;
  }
  const keys = [newKey()];
  if (args.keys) writeFileSync(args.keys, JSON.stringify({ keys }));
  return keys;
}

// What the provider is built from; the admin endpoints change it.
const state = {
  keys: initialKeys(), // the first one signs
  clients: new Map(), // client_id -> { client_secret, claims }
};

function buildProvider() {
  const provider = new Provider(issuer, {
    clients: [...state.clients].map(([clientId, c]) => ({
      client_id: clientId,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys: state.keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => args.audience,
        useGrantedResource: () => true,
        // Any resource is served (the "other audience" test asks for one);
        // its indicator becomes the token's `aud`.
        getResourceServerInfo: (_ctx, resourceIndicator) => ({
          audience: resourceIndicator,
          scope: 'api',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'RS256', kid: state.keys[0].kid } },
        }),
      },
    },
    extraTokenClaims: (_ctx, token) => state.clients.get(token.clientId)?.claims,
  });
  return provider.callback();
}

let handle = buildProvider();

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try { resolve(body ? JSON.parse(body) : {}); } catch (e) { reject(e); }
    });
    req.on('error', reject);
  });
}

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function admin(req, res) {
  const body = await readJson(req);
  if (req.method === 'POST' && req.url === '/_admin/clients') {
    if (typeof body.client_id !== 'string' || typeof body.client_secret !== 'string') {
      return answer(res, 400, { error: 'client_id and client_secret are required strings' });
    }
    state.clients.set(body.client_id, { client_secret: body.client_secret, claims: body.claims ?? {} });
  } else if (req.method === 'POST' && req.url === '/_admin/rotate') {
    const fresh = newKey();
    state.keys = body.keep_previous ? [fresh, ...state.keys] : [fresh];
  } else {
    return answer(res, 404, { error: 'unknown admin endpoint' });
  }
  handle = buildProvider();
  return answer(res, 200, { kid: state.keys[0].kid, kids: state.keys.map((k) => k.kid) });
}

const server = createServer((req, res) => {
  if (req.url.startsWith('/_admin/')) {
    admin(req, res).catch((e) => answer(res, 500, { error: String(e) }));
  } else {
    handle(req, res);
  }
});
// Idle keep-alive connections outlive reqwest's pool (90 s): with node's
// default of 5 s, a pooled connection closed by the server just as the
// client reuses it fails the request (a flaky test, or a JWKS fetch error).
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening, issuer ${issuer}, audience ${args.audience}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
