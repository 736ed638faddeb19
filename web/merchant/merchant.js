// The merchant redemption page (seed 004): an operator gives the
// merchant's API key and Ed25519 private key once, looks a voucher up by
// its code and redeems it with the one-time code the customer shows.
//
// Requests are signed here with WebCrypto, exactly like a merchant server
// signs them (docs/catalog.md, "Merchant authentication"): the base64
// Ed25519 signature of
//   timestamp \n METHOD \n path?query \n hex(sha256(body)) \n idempotencyKey
// sent as X-API-Key, X-Timestamp, X-Signature (and Idempotency-Key).
// The private key is imported as a non-extractable CryptoKey and the PEM
// text is dropped; nothing is stored (no localStorage, cookies or URLs).

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();

/** The credentials, in memory only. */
const creds = { apiKey: '', key: null };
/** Seconds to add to the local clock (learnt from the server's Date header). */
let clockOffset = 0;
/** The last timestamp used per request, so no signature is ever sent twice. */
const lastTimestamp = new Map();
/** The voucher on screen. */
let current = null;
/** The redemption attempt in flight or failed on the network (its key is reused). */
let attempt = null;

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

const PKCS8_ED25519_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

class KeyError extends Error {}

function b64decode(s) {
  const clean = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(clean)) throw new KeyError('The private key is not valid base64.');
  const bin = atob(clean);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function b64encode(bytes) {
  let bin = '';
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The PKCS#8 DER of the pasted key: a PEM "PRIVATE KEY" (what
 * `perks merchant create` prints), or bare base64 of that DER or of the
 * 32-byte Ed25519 seed.
 */
function pkcs8(text) {
  const t = text.trim();
  const pem = t.match(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/);
  if (pem) {
    if (pem[1] !== 'PRIVATE KEY') {
      throw new KeyError(`This is a “${pem[1]}”; paste the PKCS#8 “PRIVATE KEY” the merchant was given (convert with: openssl pkey -in key.pem).`);
    }
    return b64decode(pem[2]);
  }
  if (t.includes('-----')) throw new KeyError('Paste the whole key, from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----.');
  const raw = b64decode(t);
  if (raw.length === 32) {
    const der = new Uint8Array(48);
    der.set(PKCS8_ED25519_PREFIX);
    der.set(raw, 16);
    return der;
  }
  return raw;
}

async function importKey(text) {
  if (!window.isSecureContext || !crypto.subtle) {
    throw new KeyError('This page must be opened over HTTPS (or on localhost) to sign requests.');
  }
  const der = pkcs8(text);
  try {
    return await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
  } catch (e) {
    if (e && e.name === 'NotSupportedError') {
      throw new KeyError('This browser cannot sign with Ed25519. Use a current version of Chrome, Edge, Firefox or Safari.');
    }
    throw new KeyError('This is not an Ed25519 private key. Paste the key shown when the merchant was created.');
  }
}

function setupKeys() {
  const form = $('keys-form');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('keys-error');
    err.textContent = '';
    const apiKey = $('api-key').value.trim();
    const pem = $('private-key').value;
    if (!apiKey) {
      err.textContent = 'Enter the API key.';
      $('api-key').focus();
      return;
    }
    if (!/^[\x21-\x7e]{8,200}$/.test(apiKey)) {
      err.textContent = 'The API key looks wrong: paste it exactly as it was shown (it starts with mk_).';
      $('api-key').focus();
      return;
    }
    if (!pem.trim()) {
      err.textContent = 'Paste the private key.';
      $('private-key').focus();
      return;
    }
    $('keys-submit').disabled = true;
    try {
      creds.key = await importKey(pem);
      creds.apiKey = apiKey;
    } catch (e) {
      err.textContent = e instanceof KeyError ? e.message : 'The private key could not be read.';
      $('private-key').focus();
      return;
    } finally {
      $('keys-submit').disabled = false;
    }
    // The PEM is not kept anywhere: only the non-extractable CryptoKey.
    $('private-key').value = '';
    $('api-key').value = '';
    $('key-hint').textContent = apiKey.length > 12 ? apiKey.slice(0, 7) + '…' + apiKey.slice(-4) : apiKey;
    form.hidden = true;
    $('keys-loaded').hidden = false;
    $('lookup-step').hidden = false;
    $('code').focus();
  });
  $('forget').addEventListener('click', forget);
}

function forget() {
  creds.apiKey = '';
  creds.key = null;
  current = null;
  attempt = null;
  $('keys-form').hidden = false;
  $('keys-loaded').hidden = true;
  $('lookup-step').hidden = true;
  $('redeem-step').hidden = true;
  $('voucher').replaceChildren();
  $('code').value = '';
  $('otp').value = '';
  showResult(null);
  $('api-key').focus();
}

// ---------------------------------------------------------------------------
// Signed requests
// ---------------------------------------------------------------------------

/**
 * Sends a signed merchant request and returns { status, body }. Retries
 * once when the server says this device's clock is off (using the
 * server's Date) or that a signature was already used.
 */
async function signed(method, path, payload, idempotencyKey = '') {
  if (!creds.key) throw Object.assign(new Error('no keys'), { code: 'NO_KEYS' });
  const body = payload == null ? '' : JSON.stringify(payload);
  const bytes = enc.encode(body);
  const bodyHash = hex(await crypto.subtle.digest('SHA-256', bytes));
  const rest = [method, path, bodyHash, idempotencyKey].join('\n');
  for (let i = 0; ; i++) {
    let ts = Math.floor(Date.now() / 1000) + clockOffset;
    const last = lastTimestamp.get(rest) || 0;
    if (ts <= last) ts = last + 1;
    lastTimestamp.set(rest, ts);
    const canonical = String(ts) + '\n' + rest;
    const sig = await crypto.subtle.sign({ name: 'Ed25519' }, creds.key, enc.encode(canonical));
    const headers = { 'X-API-Key': creds.apiKey, 'X-Timestamp': String(ts), 'X-Signature': b64encode(sig) };
    if (body) headers['Content-Type'] = 'application/json';
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body || undefined, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' });
    } catch {
      throw Object.assign(new Error('network'), { code: 'NETWORK' });
    }
    let data = {};
    try {
      data = await res.json();
    } catch {
      data = {};
    }
    if (i === 0 && res.status === 401 && data.code === 'TIMESTAMP_OUT_OF_RANGE') {
      const server = Date.parse(res.headers.get('Date') || '');
      if (!Number.isNaN(server)) {
        clockOffset = Math.round((server - Date.now()) / 1000);
        continue;
      }
    }
    if (i === 0 && res.status === 401 && data.code === 'SIGNATURE_REPLAYED') continue;
    return { status: res.status, body: data };
  }
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

const STATUS = { claimed: 'Ready to redeem', redeemed: 'Already redeemed', expired: 'Expired', cancelled: 'Cancelled' };

function problemText(p, status) {
  switch (p.code) {
    case 'VOUCHER_NOT_FOUND': return 'No voucher with this code for your shop. Check the code with the customer.';
    case 'VOUCHER_NOT_ACTIVE': return 'This voucher can no longer be redeemed: it was already used, expired or was cancelled.';
    case 'OTP_INVALID': return 'Wrong one-time code. Ask the customer to read it again (after 5 wrong codes it locks).';
    case 'OTP_EXPIRED': return 'This one-time code expired. Ask the customer to get a new one in their app.';
    case 'OTP_LOCKED': return 'Too many wrong one-time codes. The customer must get a new code in their app.';
    case 'INVALID_SIGNATURE': return 'The API key or the private key is not right, or the merchant is disabled. Check your keys.';
    case 'TIMESTAMP_OUT_OF_RANGE': return 'This device’s clock is wrong. Set the correct time and try again.';
    case 'SIGNATURE_REPLAYED': return 'The request was refused as a repeat. Try again.';
    case 'RATE_LIMITED': return 'Too many requests. Wait a moment and try again.';
    case 'INVALID_FIELD':
    case 'MISSING_FIELD': return p.detail || 'Check what you entered.';
    case 'NETWORK': return 'No connection to the server. Check the network and try again.';
    default: return (p.detail || p.title || 'Something went wrong') + (status ? ` (HTTP ${status})` : '') + '.';
  }
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const fmtDate = (iso) => (iso ? dateFmt.format(new Date(iso)) : '—');

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

/** Shows the outcome box: kind 'success' or 'failure', or null to hide it. */
function showResult(kind, title, detail, requestId) {
  const box = $('result');
  box.replaceChildren();
  box.className = 'result';
  if (!kind) {
    box.hidden = true;
    return;
  }
  box.classList.add(kind);
  box.setAttribute('role', kind === 'failure' ? 'alert' : 'status');
  box.dataset.outcome = kind;
  box.append(el('p', { class: 'big', text: title }));
  if (detail) box.append(el('p', { class: 'small', text: detail }));
  if (requestId) box.append(el('p', { class: 'small muted', text: 'Request id: ' + requestId }));
  if (kind === 'success') {
    box.append(el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: nextCustomer }, 'Next customer')));
  }
  box.hidden = false;
}

function nextCustomer() {
  current = null;
  attempt = null;
  $('code').value = '';
  $('otp').value = '';
  $('voucher').replaceChildren();
  $('redeem-step').hidden = true;
  showResult(null);
  $('code').focus();
}

// ---------------------------------------------------------------------------
// Lookup and redemption
// ---------------------------------------------------------------------------

const CODE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$/;

function renderVoucher(v) {
  const box = $('voucher');
  box.replaceChildren();
  box.dataset.status = v.status;
  const dl = el('dl', {},
    el('dt', { text: 'Gift' }), el('dd', { 'data-testid': 'gift', text: v.gift.title }),
    el('dt', { text: 'Code' }), el('dd', { class: 'mono', text: v.code }),
    el('dt', { text: 'Status' }), el('dd', { 'data-testid': 'status', text: STATUS[v.status] || v.status }),
  );
  if (v.owner) dl.append(el('dt', { text: 'Customer' }), el('dd', { text: v.owner.displayName || '(no name)' }));
  dl.append(el('dt', { text: 'Claimed' }), el('dd', { text: fmtDate(v.claimedAt) }));
  if (v.expiresAt) dl.append(el('dt', { text: 'Valid until' }), el('dd', { text: fmtDate(v.expiresAt) }));
  if (v.redeemedAt) dl.append(el('dt', { text: 'Redeemed' }), el('dd', { text: fmtDate(v.redeemedAt) }));
  box.append(dl);
  if (v.redeemable) {
    box.append(el('p', { class: 'note good', text: 'Ask the customer for the 6-digit one-time code in their app.' }));
  } else {
    box.append(el('p', { class: 'note bad', text: 'This voucher cannot be redeemed (' + (STATUS[v.status] || v.status).toLowerCase() + ').' }));
  }
}

function setupLookup() {
  $('lookup-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const code = $('code').value.trim();
    showResult(null);
    if (!CODE_RE.test(code)) {
      showResult('failure', 'Check the voucher code', 'Codes are 3 to 64 letters, digits, “-”, “_” or “.”.');
      $('code').focus();
      return;
    }
    const btn = $('lookup-submit');
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    $('redeem-step').hidden = true;
    current = null;
    try {
      const { status, body } = await signed('GET', '/merchant/vouchers/' + encodeURIComponent(code), null);
      if (status !== 200) {
        $('voucher').replaceChildren();
        showResult('failure', 'Voucher not checked', problemText(body, status), body.requestId);
        return;
      }
      current = body;
      attempt = null;
      renderVoucher(body);
      if (body.redeemable) {
        $('redeem-step').hidden = false;
        $('otp').value = '';
        $('otp').focus();
      }
    } catch (e) {
      showResult('failure', 'Voucher not checked', problemText({ code: e.code }, 0));
    } finally {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
    }
  });
}

function setupRedeem() {
  $('redeem-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!current) return;
    const otp = $('otp').value.replace(/\s+/g, '');
    if (!/^[0-9]{6}$/.test(otp)) {
      showResult('failure', 'Check the one-time code', 'It is 6 digits, shown in the customer’s app.');
      $('otp').focus();
      return;
    }
    // One Idempotency-Key per attempt; a retry after a network failure
    // reuses it, so a lost answer can never redeem twice.
    if (!attempt || attempt.code !== current.code || attempt.otp !== otp) {
      attempt = { code: current.code, otp, key: newKey() };
    }
    const btn = $('redeem-submit');
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    showResult(null);
    try {
      const { status, body } = await signed('POST', '/merchant/redemptions', { code: current.code, otp }, attempt.key);
      if (status === 201 || status === 200) {
        attempt = null;
        current = Object.assign({}, current, body);
        renderVoucher(current);
        $('redeem-step').hidden = true;
        showResult('success', 'Redeemed ✓', `${body.gift.title} (${body.code}) was redeemed at ${fmtDate(body.redeemedAt)}.`);
        return;
      }
      attempt = null;
      showResult('failure', 'Not redeemed', problemText(body, status), body.requestId);
      if (body.code === 'VOUCHER_NOT_ACTIVE') $('redeem-step').hidden = true;
      else $('otp').select();
    } catch (e) {
      showResult('failure', 'Not redeemed', problemText({ code: e.code }, 0) + ' Submitting again is safe.');
    } finally {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
    }
  });
}

setupKeys();
setupLookup();
setupRedeem();
