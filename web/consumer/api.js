// The webview's only link to Perks: the public GraphQL API, authenticated
// with the consumer token the partner's app put in the URL fragment.
//
// The token lives in this module's memory and nowhere else: it is never
// written to localStorage, sessionStorage, cookies or a URL, and it leaves
// the page only as the Authorization header of POST /graphql (same origin).

let token = '';
let ended = false;
/** The partner named by /consumer?partner=<slug>, sent as X-Partner-Slug. */
let partnerHint = '';

/**
 * Names the partner for tokens that carry neither an iss nor a kid Perks
 * can resolve (docs/auth.md, partner resolution).
 */
export function setPartnerHint(slug) {
  partnerHint = /^[a-z0-9][a-z0-9_-]{0,62}$/.test(slug || '') ? slug : '';
}

/** Error codes that end the session: only the partner's app can start a new one. */
export const SESSION_CODES = new Set([
  'UNAUTHENTICATED', 'TOKEN_EXPIRED', 'TOKEN_INVALID', 'TOKEN_REVOKED', 'USER_ANONYMISED', 'PARTNER_DISABLED',
]);

/**
 * Takes the token out of the URL fragment (#token=...) and removes the
 * fragment from the address bar and the session history, so it is not
 * kept in the history, shown, copied or shared.
 * @returns {boolean} whether a token was found
 */
export function takeTokenFromURL() {
  const hash = window.location.hash.replace(/^#/, '');
  if (!hash) return false;
  const params = new URLSearchParams(hash);
  const t = params.get('token') || params.get('access_token') || '';
  if (!t) return false;
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
  token = t.trim();
  ended = false;
  return token !== '';
}

/**
 * A claim of the token's payload (the page does not verify the token: the
 * server does; this only reads hints such as the user's locale), or
 * undefined.
 */
export function tokenClaim(name) {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
    return claims && typeof claims === 'object' ? claims[name] : undefined;
  } catch {
    return undefined;
  }
}

/** Forgets the token (after logout or when the session ended). */
export function forgetToken() {
  token = '';
}

/** An error of the API (extensions.code) or of the network (code NETWORK). */
export class ApiError extends Error {
  constructor(code, message, extensions = {}) {
    super(message || code);
    this.code = code;
    this.extensions = extensions;
  }
}

const listeners = new Set();

/** Calls fn(code) once when a request fails with a session-ending code. */
export function onSessionEnd(fn) {
  listeners.add(fn);
}


function sessionEnded(code) {
  if (ended) return;
  ended = true;
  forgetToken();
  for (const fn of listeners) fn(code);
}

/**
 * Runs one GraphQL operation and returns its data, or throws ApiError with
 * the first error's extensions.code.
 */
export async function gql(query, variables = {}) {
  if (!token) {
    sessionEnded('UNAUTHENTICATED');
    throw new ApiError('UNAUTHENTICATED', 'no session');
  }
  const headers = { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token };
  if (partnerHint) headers['X-Partner-Slug'] = partnerHint;
  let res;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    throw new ApiError('NETWORK', 'You seem to be offline. Check your connection and try again.');
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(res.status >= 500 ? 'UNAVAILABLE' : 'BAD_RESPONSE', 'The server answered unexpectedly (HTTP ' + res.status + ').');
  }
  if (body.errors && body.errors.length > 0) {
    const err = body.errors[0];
    const ext = err.extensions || {};
    const code = ext.code || 'INTERNAL';
    if (SESSION_CODES.has(code)) sessionEnded(code);
    throw new ApiError(code, err.message, ext);
  }
  if (!res.ok || !body.data) {
    throw new ApiError('BAD_RESPONSE', 'The server answered unexpectedly (HTTP ' + res.status + ').');
  }
  return body.data;
}

/** A fresh idempotency key for one attempt of a write. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
