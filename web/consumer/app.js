// The consumer webview (seed 000 step 4): the partner's app opens
// /consumer#token=<JWT>; this module reads the token, then shows the
// program, the ads, the catalog, the user's vouchers, their history and
// the leaderboard, using only the public GraphQL API (see api.js).
import { ApiError, gql, newKey, onSessionEnd, setPartnerHint, takeTokenFromURL, tokenClaim } from './api.js';
import { LOCALES, pickLocale, setLocale, t } from './i18n.js';
import { announce, clear, el, fmtDate, fmtLastDay, fmtNumber, fmtTime, setFormatLocale, setState } from './ui.js';

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

const VOUCHER_FIELDS = `fragment V on Voucher {
  id code status costPoints claimedAt expiresAt redeemedAt expiredAt cancelledAt
  gift { id sku title imageUrl redemption merchants { name } }
}`;

// The points lifecycle shown under the balance: held points and the next
// expiry. Every query that refreshes the balance asks for it too.
const ME_POINTS = 'balance pendingPoints expiringPoints { points expiresAt }' +
  // The tier block under it (setTier): an earn may lift the user a tier.
  ' tier { code name benefits threshold } nextTier { code name pointsToGo threshold }';

const Q_BOOT = `query Boot {
  me { id displayName ${ME_POINTS} partner { slug displayName logoPath } }
  program { name currencyName }
}`;

const Q_ADS = `query Ads {
  me { ${ME_POINTS} }
  ads { id kind title body imageUrl link action { code name points remainingToday remainingLifetime availableAt } }
}`;

const Q_CATALOG = `query Catalog($after: String) {
  me { ${ME_POINTS} }
  catalog(first: 20, after: $after) {
    edges { node { id sku title description imageUrl costPoints stock perUserLimit redemption claimedByMe canClaim reason minTier { name } merchants { name } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const Q_VOUCHERS = `query Vouchers($after: String) {
  vouchers(first: 20, after: $after) { edges { node { ...V } } pageInfo { hasNextPage endCursor } }
}
${VOUCHER_FIELDS}`;

const Q_VOUCHER = `query Voucher($id: ID!) { voucher(id: $id) { ...V } }
${VOUCHER_FIELDS}`;

const Q_HISTORY = `query History($kind: HistoryKind!, $after: String) {
  history(kind: $kind, first: 20, after: $after) {
    edges { node { id kind points balanceAfter reason reference occurredAt voucher { gift { title } }
      origin { reason reference occurredAt } lot { availableAt expiresAt } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

// The "Invite friends" panel (docs/referrals.md).
const Q_INVITE = `query Invite {
  me { referralCode referralLink referralStats { invited qualified pointsEarned } }
}`;

const Q_RANKING = `query Ranking {
  ranking(around: 3) {
    rank lifetimePoints refreshedAt
    above { rank displayName lifetimePoints isMe }
    below { rank displayName lifetimePoints isMe }
  }
}`;

const M_CLAIM = `mutation Claim($gift: ID!, $key: String!) {
  claimGift(giftId: $gift, idempotencyKey: $key) { balance voucher { ...V } }
}
${VOUCHER_FIELDS}`;

const M_REDEEM = `mutation Redeem($id: ID!) { redeemVoucher(id: $id) { ...V } }
${VOUCHER_FIELDS}`;

const M_OTP = `mutation Otp($id: ID!) {
  requestRedemptionCode(voucherId: $id) { code expiresAt voucher { ...V } }
}
${VOUCHER_FIELDS}`;

const M_TRIGGER = `mutation Earn($code: String!, $key: String!) {
  triggerAction(code: $code, idempotencyKey: $key) { balance entry { points } }
}`;

const M_LOGOUT = `mutation Logout { logout }`;

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/** What a session-ending code means for the user. */
const SESSION_MESSAGES = {
  TOKEN_EXPIRED: () => [t('Your session has expired'), t('For your security, sessions last a limited time. Close this page and open Rewards again from the app.')],
  TOKEN_REVOKED: () => [t('You were signed out'), t('Your session was ended. Open Rewards again from the app to continue.')],
  SIGNED_OUT: () => [t('You are signed out'), t('You are signed out on every device. Open Rewards again from the app to continue.')],
  TOKEN_INVALID: () => [t('We could not open your rewards'), t('This link is not valid. Close this page and open Rewards again from the app.')],
  UNAUTHENTICATED: () => [t('We could not open your rewards'), t('This page must be opened from the app. Close it and open Rewards again from the app.')],
  USER_ANONYMISED: () => [t('This account is closed'), t('Your rewards account was closed. Contact the program if you think this is a mistake.')],
  PARTNER_DISABLED: () => [t('Rewards are unavailable'), t('The rewards program is not available right now. Please try again later.')],
  PARTNER_MISMATCH: () => [t('We could not open your rewards'), t('This page was opened for another program. Close it and open Rewards again from the app.')],
};

/** Why a gift cannot be claimed (Gift.reason), in the user's words. */
function reasonText(gift) {
  switch (gift.reason) {
    case 'INSUFFICIENT_POINTS': {
      const missing = Math.max(gift.costPoints - state.balance, 1);
      return t('You need {n} more {currency} to claim this gift.', { n: fmtNumber(missing), currency: state.currency });
    }
    case 'OUT_OF_STOCK': return t('Out of stock.');
    case 'LIMIT_REACHED':
      return gift.perUserLimit === 1 ? t('You already claimed this gift.') : t('You claimed this gift the maximum number of times ({n}).', { n: gift.perUserLimit });
    case 'NOT_IN_COUNTRY': return t('Not available in your country.');
    case 'TIER_TOO_LOW': return gift.minTier ? t('{tier} members only.', { tier: gift.minTier.name }) : t('For members of a higher tier only.');
    case 'CODES_EXHAUSTED': return t('Temporarily unavailable: no codes are left right now. Check back soon.');
    case 'GIFT_UNAVAILABLE': return t('Not available to claim right now.');
    default: return t('Not available right now.');
  }
}

/** An error of a user action, in the user's words. */
function errorText(e) {
  const ext = (e && e.extensions) || {};
  switch (e && e.code) {
    case 'INSUFFICIENT_POINTS': return t('You do not have enough {currency} for this gift.', { currency: state.currency });
    case 'OUT_OF_STOCK': return t('Sorry, this gift just ran out of stock.');
    case 'LIMIT_REACHED': return t('You already claimed this gift as many times as allowed.');
    case 'NOT_IN_COUNTRY': return t('This gift is not available in your country.');
    case 'TIER_TOO_LOW': return t('This gift is for members of a higher tier.');
    case 'CODES_EXHAUSTED': return t('No codes are left for this gift right now. Check back soon.');
    case 'GIFT_UNAVAILABLE':
    case 'GIFT_NOT_FOUND': return t('This gift is not available any more.');
    case 'VOUCHER_NOT_FOUND': return t('This voucher was not found.');
    case 'VOUCHER_NOT_ACTIVE': return t('This voucher can no longer be used.');
    case 'REDEMPTION_CHANNEL_MISMATCH': return t('This voucher is redeemed another way.');
    case 'COOLDOWN': return t('Not yet: try again in {wait}.', { wait: fmtWait(ext.retryAfterSeconds || 60) });
    case 'DAILY_CAP_REACHED': return t('You reached today’s limit for this. Come back tomorrow.');
    case 'LIFETIME_CAP_REACHED': return t('You already earned this as many times as allowed.');
    case 'ACTION_INACTIVE':
    case 'ACTION_NOT_ALLOWED':
    case 'ACTION_NOT_FOUND': return t('This offer is not available any more.');
    case 'RATE_LIMITED': return t('Too many requests. Wait a moment and try again.');
    case 'IDEMPOTENCY_IN_PROGRESS': return t('Still working on your previous request. Try again in a moment.');
    case 'NETWORK': return t('You seem to be offline. Check your connection and try again.');
    default: return t('Something went wrong. Please try again.');
  }
}

function fmtWait(seconds) {
  if (seconds < 60) return t('{n} seconds', { n: seconds });
  const m = Math.ceil(seconds / 60);
  return m === 1 ? t('a minute') : t('{n} minutes', { n: m });
}

const STATUS_LABELS = { CLAIMED: () => t('Ready to use'), REDEEMED: () => t('Redeemed'), EXPIRED: () => t('Expired'), CANCELLED: () => t('Cancelled') };

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

const state = {
  balance: 0,
  currency: 'points',
  partnerSlug: '',
  catalog: { items: [], cursor: null, hasNext: false, gen: 0 },
  vouchers: { items: [], cursor: null, hasNext: false, gen: 0, loaded: false, stale: true },
  history: { kind: 'ALL', items: [], cursor: null, hasNext: false, gen: 0, loading: false, stale: true },
  ranking: { stale: true },
  /** Voucher id -> { code, expiresAt } of the one-time codes on screen. */
  otps: new Map(),
  /** Voucher id -> card mode ('confirm-redeem'). */
  voucherModes: new Map(),
  /** Gift id -> { mode: 'confirm' | 'busy' | 'done', key, message, voucherId }. */
  claims: new Map(),
};

const $ = (id) => document.getElementById(id);

function setBalance(n) {
  state.balance = n;
  const b = $('balance');
  b.textContent = fmtNumber(n);
  b.dataset.value = String(n);
}

/** Shows the held points and the next expiry ("120 points expire on 31 Dec") of me. */
function setLifecycle(me) {
  const pending = $('pending');
  const next = $('next-expiry');
  const p = me.pendingPoints || 0;
  pending.hidden = p === 0;
  pending.textContent = p ? t('{n} {currency} pending', { n: fmtNumber(p), currency: state.currency }) : '';
  pending.dataset.value = String(p);
  const x = (me.expiringPoints || [])[0];
  next.hidden = !x;
  next.textContent = x ? t('{n} {currency} expire on {day}', { n: fmtNumber(x.points), currency: state.currency, day: fmtLastDay(x.expiresAt) }) : '';
  if (x) next.dataset.expiresAt = x.expiresAt;
  $('points-lifecycle').hidden = pending.hidden && next.hidden;
}

/**
 * Loads the "Invite friends" panel: the user's referral code with a copy
 * button, the share link when the program has one, and how many friends
 * joined and qualified. The panel stays hidden if it cannot be loaded: it
 * is an extra, not a reason to fail the page.
 */
async function loadInvite() {
  let data;
  try {
    data = await gql(Q_INVITE);
  } catch {
    return;
  }
  const me = data.me;
  const box = $('invite');
  box.dataset.code = me.referralCode;
  $('invite-value').value = me.referralCode;
  const row = $('invite-link-row');
  const link = $('invite-link');
  row.hidden = !me.referralLink;
  if (me.referralLink) {
    link.href = me.referralLink;
    link.textContent = me.referralLink;
  }
  const st = me.referralStats;
  $('invite-stats').textContent = st.invited === 0
    ? t('No friends have joined with your code yet.')
    : t('{invited} joined, {qualified} qualified, {n} {currency} earned.', {
      invited: fmtNumber(st.invited), qualified: fmtNumber(st.qualified), n: fmtNumber(st.pointsEarned), currency: state.currency,
    });
  box.hidden = false;
}

/**
 * Copies the share link (or the code, without a link) to the clipboard;
 * where the Clipboard API is refused, selects the code so the user can
 * copy it themselves.
 */
async function copyInvite() {
  const link = $('invite-link-row').hidden ? '' : $('invite-link').href;
  const text = link || $('invite-value').value;
  try {
    await navigator.clipboard.writeText(text);
    $('invite').dataset.copied = text;
    announce(link ? t('Link copied') : t('Code copied'));
  } catch {
    const input = $('invite-value');
    input.focus();
    input.select();
    announce(t('Copy it from the selected code'));
  }
}

/**
 * Shows the user's tier, its benefits and the progress to the next tier
 * ("250 points to Gold" over a <progress> bar running from the current
 * tier's threshold to the next one's), or the top-tier line. Hidden when
 * the partner has no tiers (me.tier is null).
 */
function setTier(me) {
  const box = $('tier');
  const cur = me.tier;
  box.hidden = !cur;
  if (!cur) {
    delete box.dataset.tier;
    return;
  }
  box.dataset.tier = cur.code;
  $('tier-name').textContent = cur.name;
  const benefits = $('tier-benefits');
  benefits.textContent = cur.benefits || '';
  benefits.hidden = !cur.benefits;
  const n = me.nextTier;
  $('tier-progress').hidden = !n;
  $('tier-top').hidden = !!n;
  if (!n) return;
  // Qualifying points may sit below the current tier's threshold (a tier
  // kept through a grace period) or reach the next one before the change
  // is applied (pointsToGo 0): the bar is clamped to its ends.
  const span = Math.max(n.threshold - cur.threshold, 1);
  const done = Math.min(Math.max(n.threshold - n.pointsToGo - cur.threshold, 0), span);
  const bar = $('tier-bar');
  bar.max = span;
  bar.value = done;
  bar.dataset.qualifying = String(n.threshold - n.pointsToGo);
  $('tier-to-go').textContent = n.pointsToGo > 0
    ? t('{n} {currency} to {tier}', { n: fmtNumber(n.pointsToGo), currency: state.currency, tier: n.name })
    : t('{tier} reached: it applies with your next {currency}', { tier: n.name, currency: state.currency });
}

// ---------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------

/** The interval ticking one-time codes (0 when none is on screen). */
let otpTimer = 0;
let pollTick = 0;

function stopTimers() {
  clearInterval(otpTimer);
  otpTimer = 0;
}

function showSession(code) {
  stopTimers();
  const [title, text] = (SESSION_MESSAGES[code] || SESSION_MESSAGES.TOKEN_INVALID)();
  $('session-title').textContent = title;
  $('session-text').textContent = text;
  $('app').hidden = true;
  $('boot').hidden = true;
  $('session').hidden = false;
  document.body.dataset.session = code;
  document.title = title;
  // A native shell watching the URL can react (mint a new token and
  // reopen the page) without parsing the page.
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search + '#error=' + code);
}

onSessionEnd(showSession);

// ---------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------

async function boot() {
  const bootEl = $('boot');
  clear(bootEl);
  bootEl.append(el('div', { class: 'spinner', 'aria-hidden': 'true' }), el('p', { text: t('Loading your rewards…') }));
  bootEl.hidden = false;
  let data;
  try {
    data = await gql(Q_BOOT);
  } catch (e) {
    if (e instanceof ApiError && document.body.dataset.session) return;
    clear(bootEl);
    bootEl.append(
      el('p', { class: 'error-text', text: t('We could not load your rewards.') + ' ' + errorText(e) }),
      el('button', { type: 'button', class: 'primary', onclick: () => boot() }, t('Try again')),
    );
    return;
  }
  const { me, program } = data;
  const wanted = new URLSearchParams(window.location.search).get('partner');
  if (wanted && wanted !== me.partner.slug) {
    showSession('PARTNER_MISMATCH');
    return;
  }
  state.partnerSlug = me.partner.slug;
  // A new session (a fresh token handed over in the fragment) reloads every list.
  state.vouchers.stale = true;
  state.history.stale = true;
  state.ranking.stale = true;
  state.otps.clear();
  state.claims.clear();
  state.currency = program.currencyName || 'points';
  document.title = program.name || me.partner.displayName;
  $('program-name').textContent = me.partner.displayName || program.name;
  $('greeting').textContent = me.displayName ? t('Hi, {name}', { name: me.displayName }) : t('Welcome');
  $('currency').textContent = state.currency;
  setBalance(me.balance);
  setLifecycle(me);
  setTier(me);
  const logo = $('logo');
  const src = logoURL(me.partner.logoPath);
  if (src) {
    logo.src = src;
    logo.alt = t('{name} logo', { name: me.partner.displayName });
    logo.hidden = false;
    logo.addEventListener('error', () => { logo.hidden = true; }, { once: true });
  }
  // The invite panel sits above the offers and the gifts: shown after the
  // app, it pushed down what the user was about to tap (a test's click on
  // an offer landed beside it). It is one short read, and it never fails
  // the page.
  await loadInvite();
  bootEl.hidden = true;
  $('app').hidden = false;
  delete document.body.dataset.session;
  document.body.dataset.ready = 'true';
  loadAds();
  loadCatalog(false);
  if (currentTab() !== 'rewards') showPanel(currentTab());
}


/** The logo's URL: partner paths are relative to this origin. */
function logoURL(p) {
  if (!p) return '';
  if (/^https:\/\//i.test(p)) return p;
  if (/^[a-z][a-z0-9+.-]*:/i.test(p) || p.startsWith('//')) return '';
  return '/' + p.replace(/^\/+/, '');
}

// ---------------------------------------------------------------------------
// Tabs
// ---------------------------------------------------------------------------

const TABS = ['rewards', 'vouchers', 'history', 'ranking'];

function currentTab() {
  return TABS.find((name) => $('tab-' + name).getAttribute('aria-selected') === 'true') || 'rewards';
}

function selectTab(name, focus) {
  for (const tn of TABS) {
    const tab = $('tab-' + tn);
    const on = tn === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $('panel-' + tn).hidden = !on;
  }
  if (focus) $('tab-' + name).focus();
  showPanel(name);
}

function showPanel(name) {
  if (name === 'vouchers' && state.vouchers.stale) loadVouchers(false);
  if (name === 'history' && state.history.stale) loadHistory(false);
  if (name === 'ranking' && state.ranking.stale) loadRanking();
  if (name === 'history') watchHistory();
}

function setupTabs() {
  for (const tn of TABS) {
    $('tab-' + tn).addEventListener('click', () => selectTab(tn, false));
  }
  document.querySelector('[role="tablist"]').addEventListener('keydown', (ev) => {
    const i = TABS.indexOf(currentTab());
    let next = -1;
    if (ev.key === 'ArrowRight') next = (i + 1) % TABS.length;
    else if (ev.key === 'ArrowLeft') next = (i - 1 + TABS.length) % TABS.length;
    else if (ev.key === 'Home') next = 0;
    else if (ev.key === 'End') next = TABS.length - 1;
    if (next < 0) return;
    ev.preventDefault();
    selectTab(TABS[next], true);
  });
}

/** Marks the lists that depend on the balance or on claims as out of date. */
function invalidate({ catalog = false, vouchers = false } = {}) {
  state.history.stale = true;
  state.ranking.stale = true;
  if (vouchers) state.vouchers.stale = true;
  if (catalog) loadCatalog(false);
  const tab = currentTab();
  if (tab !== 'rewards') showPanel(tab);
}

// ---------------------------------------------------------------------------
// Ads
// ---------------------------------------------------------------------------

const AD_KINDS = { BONUS: () => t('Bonus'), SPECIAL: () => t('Special'), NEWS: () => t('News') };

async function loadAds() {
  const box = $('ads-state');
  setState(box, 'loading', t('Loading offers…'));
  let data;
  try {
    data = await gql(Q_ADS);
  } catch (e) {
    setState(box, 'error', t('Offers could not be loaded.') + ' ' + errorText(e), loadAds);
    return;
  }
  setBalance(data.me.balance);
  setLifecycle(data.me);
  setTier(data.me);
  const list = $('ads');
  clear(list);
  if (data.ads.length === 0) {
    setState(box, 'empty', t('No offers right now. Check back soon.'));
    return;
  }
  setState(box, '');
  for (const ad of data.ads) list.append(adCard(ad));
}

function adCard(ad) {
  const li = el('li', { class: 'card ad ad-' + ad.kind.toLowerCase(), 'data-ad': ad.id });
  if (ad.imageUrl) li.append(picture(ad.imageUrl));
  li.append(
    el('p', { class: 'tag', text: AD_KINDS[ad.kind] ? AD_KINDS[ad.kind]() : ad.kind }),
    el('h3', { text: ad.title }),
  );
  if (ad.body) li.append(el('p', { text: ad.body }));
  if (ad.link && /^https?:\/\//i.test(ad.link)) {
    li.append(el('p', {}, el('a', { href: ad.link, target: '_blank', rel: 'noopener noreferrer' }, t('Learn more'))));
  }
  const a = ad.action;
  if (a) {
    const actions = el('div', { class: 'actions' });
    const note = el('p', { class: 'muted small' });
    const now = Date.now();
    let blocked = '';
    if (a.remainingLifetime === 0) blocked = t('You already earned this as many times as allowed.');
    else if (a.remainingToday === 0) blocked = t('Done for today. Come back tomorrow.');
    else if (a.availableAt && new Date(a.availableAt).getTime() > now) blocked = t('Available again at {time}.', { time: fmtTime(a.availableAt) });
    const btn = el('button', { type: 'button', class: 'primary', disabled: blocked !== '' }, t('Earn {n} {currency}', { n: fmtNumber(a.points), currency: state.currency }));
    btn.addEventListener('click', () => earn(a, btn, note));
    if (blocked) note.textContent = blocked;
    else if (a.remainingToday != null) note.textContent = t('{n} left today.', { n: a.remainingToday });
    actions.append(btn);
    li.append(actions, note);
  }
  return li;
}

async function earn(action, btn, note) {
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    const d = await gql(M_TRIGGER, { code: action.code, key: newKey() });
    setBalance(d.triggerAction.balance);
    announce(t('You earned {n} {currency}.', { n: fmtNumber(d.triggerAction.entry.points), currency: state.currency }));
    loadAds();
    invalidate({ catalog: true });
  } catch (e) {
    if (e.code && document.body.dataset.session) return;
    note.textContent = errorText(e);
    announce(errorText(e), true);
    btn.disabled = false;
  } finally {
    btn.removeAttribute('aria-busy');
  }
}

function picture(src) {
  const img = el('img', { class: 'picture', src, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer', decoding: 'async' });
  img.addEventListener('error', () => img.remove(), { once: true });
  return img;
}

// ---------------------------------------------------------------------------
// Catalog
// ---------------------------------------------------------------------------

async function loadCatalog(more) {
  const c = state.catalog;
  const gen = ++c.gen;
  const box = $('catalog-state');
  const moreBtn = $('catalog-more');
  if (!more) setState(box, 'loading', t('Loading gifts…'));
  moreBtn.disabled = true;
  let data;
  try {
    data = await gql(Q_CATALOG, { after: more ? c.cursor : null });
  } catch (e) {
    if (gen !== c.gen) return;
    moreBtn.disabled = false;
    setState(box, 'error', t('Gifts could not be loaded.') + ' ' + errorText(e), () => loadCatalog(more));
    return;
  }
  if (gen !== c.gen) return;
  setBalance(data.me.balance);
  setLifecycle(data.me);
  setTier(data.me);
  const page = data.catalog.edges.map((e) => e.node);
  c.items = more ? c.items.concat(page) : page;
  c.cursor = data.catalog.pageInfo.endCursor;
  c.hasNext = data.catalog.pageInfo.hasNextPage;
  renderCatalog();
  moreBtn.disabled = false;
}

function renderCatalog() {
  const c = state.catalog;
  const list = $('catalog');
  const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : '';
  clear(list);
  if (c.items.length === 0) {
    setState($('catalog-state'), 'empty', t('No gifts are available yet. Check back soon.'));
  } else {
    setState($('catalog-state'), '');
    for (const g of c.items) list.append(giftCard(g));
  }
  $('catalog-more').hidden = !c.hasNext;
  if (focused) {
    const target = list.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
    if (target) target.focus();
  }
}

function giftCard(g) {
  const claim = state.claims.get(g.id) || {};
  const li = el('li', { class: 'card gift', 'data-gift': g.sku, 'data-gift-id': g.id });
  if (g.imageUrl) li.append(picture(g.imageUrl));
  const titleId = 'gift-title-' + g.id;
  li.setAttribute('aria-labelledby', titleId);
  li.append(el('h3', { id: titleId, text: g.title }));
  if (g.description) li.append(el('p', { class: 'desc', text: g.description }));
  const facts = el('ul', { class: 'facts' },
    el('li', { class: 'cost' }, el('strong', { text: fmtNumber(g.costPoints) }), ' ' + state.currency),
  );
  if (g.stock != null) facts.append(el('li', { text: g.stock === 0 ? t('Sold out') : t('{n} left', { n: fmtNumber(g.stock) }) }));
  facts.append(el('li', { text: g.redemption === 'ONLINE' ? t('Use it online') : inStoreText(g.merchants) }));
  li.append(facts);

  const actions = el('div', { class: 'actions' });
  const msg = el('p', { class: 'card-msg', role: 'status' });
  if (claim.mode === 'confirm' || claim.mode === 'busy') {
    const busy = claim.mode === 'busy';
    msg.textContent = busy ? t('Claiming…') : t('Spend {n} {currency} on “{gift}”?', { n: fmtNumber(g.costPoints), currency: state.currency, gift: g.title });
    actions.append(
      el('button', {
        type: 'button', class: 'primary', 'data-action': 'confirm-claim', 'data-focus-key': 'confirm-' + g.id,
        disabled: busy, 'aria-busy': busy ? 'true' : null, onclick: () => confirmClaim(g),
      }, busy ? t('Claiming…') : t('Confirm')),
      el('button', {
        type: 'button', class: 'secondary', 'data-action': 'cancel-claim', 'data-focus-key': 'cancel-' + g.id, disabled: busy,
        onclick: () => { state.claims.delete(g.id); renderCatalog(); focusKey('claim-' + g.id); },
      }, t('Cancel')),
    );
  } else if (g.canClaim) {
    actions.append(el('button', {
      type: 'button', class: 'primary', 'data-action': 'claim', 'data-focus-key': 'claim-' + g.id,
      'aria-describedby': titleId,
      onclick: () => { state.claims.set(g.id, { mode: 'confirm', key: newKey() }); renderCatalog(); focusKey('confirm-' + g.id); },
    }, t('Claim for {n} {currency}', { n: fmtNumber(g.costPoints), currency: state.currency })));
  } else {
    li.append(el('p', { class: 'reason', 'data-reason': g.reason || '' }, reasonText(g)));
  }
  if (claim.mode === 'done') {
    msg.textContent = claim.message;
    msg.classList.add('ok');
    actions.append(el('button', {
      type: 'button', class: 'secondary', 'data-action': 'see-voucher', 'data-focus-key': 'see-' + g.id,
      onclick: () => { state.claims.delete(g.id); renderCatalog(); openVoucher(claim.voucherId); },
    }, t('See my voucher')));
  } else if (claim.mode === 'error') {
    msg.textContent = claim.message;
    msg.classList.add('bad');
  }
  if (actions.childElementCount > 0) li.append(actions);
  if (msg.textContent) li.append(msg);
  return li;
}

/** "Use it in store", with the merchants' names when the gift has any. */
function inStoreText(ms) {
  if (!ms || ms.length === 0) return t('Use it in store');
  return t('Use it in store at {merchants}', { merchants: ms.map((m) => m.name).join(', ') });
}

function focusKey(key) {
  const target = document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
  if (target) target.focus();
}

async function confirmClaim(g) {
  const claim = state.claims.get(g.id);
  if (!claim || claim.mode === 'busy') return;
  claim.mode = 'busy';
  renderCatalog();
  try {
    // The key was drawn when the claim was started: retrying after a
    // network failure reuses it, so a lost answer never claims twice.
    const d = await gql(M_CLAIM, { gift: g.id, key: claim.key });
    const v = d.claimGift.voucher;
    setBalance(d.claimGift.balance);
    state.claims.set(g.id, {
      mode: 'done', voucherId: v.id,
      message: v.code ? t('Claimed! Your code is {code}.', { code: v.code }) : t('Claimed! Find it in My vouchers.'),
    });
    state.vouchers.items = [v].concat(state.vouchers.items.filter((x) => x.id !== v.id));
    if (state.vouchers.loaded) renderVouchers();
    announce(t('You claimed {gift}. Your balance is {n} {currency}.', { gift: g.title, n: fmtNumber(d.claimGift.balance), currency: state.currency }));
    await loadCatalog(false);
    focusKey('see-' + g.id);
    invalidate();
  } catch (e) {
    if (document.body.dataset.session) return;
    const retryable = e.code === 'NETWORK' || e.code === 'IDEMPOTENCY_IN_PROGRESS' || e.code === 'RATE_LIMITED';
    state.claims.set(g.id, retryable ? { mode: 'confirm', key: claim.key } : { mode: 'error', message: errorText(e) });
    announce(errorText(e), true);
    if (retryable) {
      renderCatalog();
    } else {
      await loadCatalog(false);
      state.claims.set(g.id, { mode: 'error', message: errorText(e) });
      renderCatalog();
    }
  }
}

// ---------------------------------------------------------------------------
// Vouchers
// ---------------------------------------------------------------------------

async function loadVouchers(more) {
  const vs = state.vouchers;
  const gen = ++vs.gen;
  vs.stale = false;
  const box = $('vouchers-state');
  const moreBtn = $('vouchers-more');
  if (!more && !vs.loaded) setState(box, 'loading', t('Loading your vouchers…'));
  moreBtn.disabled = true;
  let data;
  try {
    data = await gql(Q_VOUCHERS, { after: more ? vs.cursor : null });
  } catch (e) {
    if (gen !== vs.gen) return;
    vs.stale = true;
    moreBtn.disabled = false;
    setState(box, 'error', t('Your vouchers could not be loaded.') + ' ' + errorText(e), () => loadVouchers(more));
    return;
  }
  if (gen !== vs.gen) return;
  const page = data.vouchers.edges.map((e) => e.node);
  vs.items = more ? vs.items.concat(page) : page;
  vs.cursor = data.vouchers.pageInfo.endCursor;
  vs.hasNext = data.vouchers.pageInfo.hasNextPage;
  vs.loaded = true;
  moreBtn.disabled = false;
  renderVouchers();
}

function renderVouchers() {
  const vs = state.vouchers;
  const list = $('vouchers');
  const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : '';
  clear(list);
  if (vs.items.length === 0) {
    setState($('vouchers-state'), 'empty', t('No vouchers yet. Claim a gift in Rewards and it will appear here.'));
  } else {
    setState($('vouchers-state'), '');
    for (const v of vs.items) list.append(voucherCard(v));
  }
  $('vouchers-more').hidden = !vs.hasNext;
  if (focused) focusKey(focused);
}

function replaceVoucher(v) {
  const vs = state.vouchers;
  const i = vs.items.findIndex((x) => x.id === v.id);
  if (i >= 0) vs.items[i] = v;
  else vs.items.unshift(v);
  renderVouchers();
}

function voucherCard(v) {
  const li = el('li', { class: 'card voucher status-' + v.status.toLowerCase(), 'data-voucher-id': v.id, 'data-status': v.status, tabindex: '-1' });
  const titleId = 'voucher-title-' + v.id;
  li.setAttribute('aria-labelledby', titleId);
  li.append(
    el('div', { class: 'voucher-head' },
      el('h3', { id: titleId, text: v.gift.title }),
      el('span', { class: 'badge', 'data-testid': 'voucher-status' }, STATUS_LABELS[v.status] ? STATUS_LABELS[v.status]() : v.status),
    ),
  );
  if (v.code) {
    li.append(el('p', { class: 'code-line' },
      el('span', { class: 'label', text: t('Voucher code') }),
      el('strong', { class: 'code', 'data-testid': 'voucher-code', text: v.code }),
    ));
  }
  const facts = el('ul', { class: 'facts' });
  facts.append(el('li', { text: t('Claimed {date}', { date: fmtDate(v.claimedAt) }) }));
  if (v.status === 'CLAIMED' && v.expiresAt) facts.append(el('li', { text: t('Valid until {date}', { date: fmtDate(v.expiresAt) }) }));
  if (v.status === 'REDEEMED' && v.redeemedAt) facts.append(el('li', { text: t('Redeemed {date}', { date: fmtDate(v.redeemedAt) }) }));
  if (v.status === 'EXPIRED') facts.append(el('li', { text: t('Expired {date}', { date: fmtDate(v.expiredAt || v.expiresAt) }) }));
  if (v.status === 'CANCELLED' && v.cancelledAt) facts.append(el('li', { text: t('Cancelled {date}', { date: fmtDate(v.cancelledAt) }) }));
  if (v.gift.redemption === 'MERCHANT') facts.append(el('li', { text: inStoreText(v.gift.merchants) }));
  li.append(facts);

  if (v.status !== 'CLAIMED') {
    state.otps.delete(v.id);
    return li;
  }
  const actions = el('div', { class: 'actions' });
  const msg = el('p', { class: 'card-msg', role: 'status' });
  if (v.gift.redemption === 'ONLINE') {
    if (state.voucherModes.get(v.id) === 'confirm-redeem') {
      msg.textContent = t('Mark this voucher as used? This cannot be undone.');
      actions.append(
        el('button', { type: 'button', class: 'primary', 'data-action': 'confirm-redeem', 'data-focus-key': 'confirm-redeem-' + v.id, onclick: () => redeemOnline(v) }, t('Yes, redeem')),
        el('button', {
          type: 'button', class: 'secondary', 'data-focus-key': 'cancel-redeem-' + v.id,
          onclick: () => { state.voucherModes.delete(v.id); renderVouchers(); focusKey('redeem-' + v.id); },
        }, t('Cancel')),
      );
    } else {
      actions.append(el('button', {
        type: 'button', class: 'primary', 'data-action': 'redeem-online', 'data-focus-key': 'redeem-' + v.id,
        onclick: () => { state.voucherModes.set(v.id, 'confirm-redeem'); renderVouchers(); focusKey('confirm-redeem-' + v.id); },
      }, t('Redeem online')));
    }
  } else {
    const otp = state.otps.get(v.id);
    if (otp) {
      li.append(otpPanel(v, otp));
    } else {
      actions.append(el('button', {
        type: 'button', class: 'primary', 'data-action': 'show-otp', 'data-focus-key': 'otp-' + v.id,
        onclick: (ev) => requestOTP(v, ev.currentTarget),
      }, t('Show code for the shop')));
    }
  }
  if (actions.childElementCount > 0) li.append(actions);
  if (msg.textContent) li.append(msg);
  return li;
}

/** The one-time code to read out at the till, with its countdown. */
function otpPanel(v, otp) {
  const remaining = Math.max(0, Math.round((new Date(otp.expiresAt).getTime() - Date.now()) / 1000));
  const panel = el('div', { class: 'otp', 'data-testid': 'otp-panel' });
  if (remaining === 0) {
    panel.append(
      el('p', { class: 'muted', text: t('This one-time code expired.') }),
      el('button', { type: 'button', class: 'primary', 'data-focus-key': 'otp-' + v.id, onclick: (ev) => requestOTP(v, ev.currentTarget) }, t('Get a new code')),
    );
    return panel;
  }
  const digits = otp.code.slice(0, 3) + ' ' + otp.code.slice(3);
  const countdown = el('span', { class: 'countdown', 'data-expires': otp.expiresAt, text: fmtCountdown(remaining) });
  // The countdown ticks inside the sentence: split the translation at its
  // {time} placeholder.
  const [before, after] = t('Show this and your voucher code to the cashier. Expires in {time}.').split('{time}');
  panel.append(
    el('p', { class: 'label', text: t('One-time code') }),
    el('p', { class: 'otp-code', 'data-testid': 'otp-code', 'data-code': otp.code, 'aria-label': t('One-time code {digits}', { digits: otp.code.split('').join(' ') }) }, digits),
    el('p', { class: 'small' }, before, countdown, after || ''),
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', 'data-focus-key': 'otp-' + v.id, onclick: (ev) => requestOTP(v, ev.currentTarget) }, t('Get a new code')),
      el('button', { type: 'button', class: 'link', 'data-focus-key': 'hide-otp-' + v.id, onclick: () => { state.otps.delete(v.id); renderVouchers(); focusKey('otp-' + v.id); } }, t('Hide')),
    ),
  );
  return panel;
}

function fmtCountdown(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

async function requestOTP(v, btn) {
  if (btn) {
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
  }
  try {
    const d = await gql(M_OTP, { id: v.id });
    const r = d.requestRedemptionCode;
    state.otps.set(v.id, { code: r.code, expiresAt: r.expiresAt });
    replaceVoucher(r.voucher);
    announce(t('Your one-time code is {digits}. It expires at {time}.', { digits: r.code.split('').join(' '), time: fmtTime(r.expiresAt) }));
    focusKey('otp-' + v.id);
    watchOTPs();
  } catch (e) {
    if (document.body.dataset.session) return;
    announce(errorText(e), true);
    if (e.code === 'VOUCHER_NOT_ACTIVE') refreshVoucher(v.id);
    if (btn) {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
    }
  }
}

/**
 * While a one-time code is on screen: tick its countdown every second and
 * ask for the voucher's status every 3 seconds, so the card turns
 * "Redeemed" as soon as the shop redeemed it.
 */
function watchOTPs() {
  if (otpTimer) return;
  otpTimer = setInterval(() => {
    if (state.otps.size === 0) {
      stopTimers();
      return;
    }
    let expired = false;
    for (const c of document.querySelectorAll('.otp .countdown')) {
      const s = Math.max(0, Math.round((new Date(c.dataset.expires).getTime() - Date.now()) / 1000));
      c.textContent = fmtCountdown(s);
      if (s === 0) expired = true;
    }
    if (expired) renderVouchers();
    pollTick = (pollTick + 1) % 3;
    if (pollTick === 0 && !document.hidden) {
      const now = Date.now();
      for (const [id, otp] of state.otps) {
        if (new Date(otp.expiresAt).getTime() > now) refreshVoucher(id);
      }
    }
  }, 1000);
}

async function refreshVoucher(id) {
  try {
    const d = await gql(Q_VOUCHER, { id });
    const v = d.voucher;
    const before = state.vouchers.items.find((x) => x.id === id);
    if (v.status !== 'CLAIMED') state.otps.delete(id);
    if (before && before.status === v.status) return;
    replaceVoucher(v);
    if (v.status === 'REDEEMED') {
      announce(t('{gift}: redeemed. Enjoy!', { gift: v.gift.title }));
      invalidate();
    }
  } catch {
    // A failed poll is retried at the next tick.
  }
}

async function redeemOnline(v) {
  state.voucherModes.delete(v.id);
  try {
    const d = await gql(M_REDEEM, { id: v.id });
    replaceVoucher(d.redeemVoucher);
    announce(t('{gift}: redeemed.', { gift: v.gift.title }));
    invalidate();
  } catch (e) {
    if (document.body.dataset.session) return;
    announce(errorText(e), true);
    renderVouchers();
  }
}

/** Shows the vouchers tab with one voucher in view and focused. */
function openVoucher(id) {
  selectTab('vouchers', false);
  const focus = () => {
    const card = document.querySelector(`[data-voucher-id="${CSS.escape(id)}"]`);
    if (card) {
      card.scrollIntoView({ block: 'nearest' });
      card.focus();
    }
  };
  if (state.vouchers.loaded) focus();
  else setTimeout(focus, 600);
}

// ---------------------------------------------------------------------------
// History (infinite scroll)
// ---------------------------------------------------------------------------

const KIND_LABELS = {
  earn: () => t('Earned'), burn: () => t('Spent'), refund: () => t('Refund'), expire: () => t('Expired'), adjust: () => t('Adjustment'),
  pending: () => t('Pending'), activate: () => t('Now available'), reverse: () => t('Reversed'), cancel: () => t('Cancelled'),
};

/** The label of an entry's kind; an unknown kind shows as itself. */
function kindLabel(kind) {
  return KIND_LABELS[kind] ? KIND_LABELS[kind]() : kind;
}

/**
 * Why an entry happened, from what it acts on (origin: the earn a reversal
 * undid, whose points expired or became available) and its lot (when held
 * points become available, when earned points expire). Unknown kinds get
 * no detail: the row still shows their points and reason.
 */
function entryDetail(e) {
  const from = e.origin ? e.origin.reason + (e.origin.reference ? ` (${e.origin.reference})` : '') : '';
  const lot = e.lot || {};
  switch (e.kind) {
    case 'pending': return lot.availableAt ? t('Available from {date}', { date: fmtDate(lot.availableAt) }) : '';
    case 'activate': return from ? t('From: {what}', { what: from }) : '';
    case 'expire': return from ? t('Unspent points of: {what}, {date}', { what: from, date: fmtDate(e.origin.occurredAt) }) : '';
    case 'reverse': return from ? t('Taken back: {what}', { what: from }) : '';
    case 'cancel': return from ? t('Withdrawn: {what}', { what: from }) : '';
    case 'earn': case 'refund': case 'adjust':
      return lot.expiresAt ? t('Expire on {day}', { day: fmtLastDay(lot.expiresAt) }) : '';
    default: return '';
  }
}

let historyObserver = null;

async function loadHistory(more) {
  const hs = state.history;
  if (more && (hs.loading || !hs.hasNext)) return;
  const gen = ++hs.gen;
  hs.loading = true;
  hs.stale = false;
  const box = $('history-state');
  $('history-more').hidden = true;
  if (!more) {
    clear($('history'));
    hs.items = [];
  }
  setState(box, 'loading', more ? t('Loading more…') : t('Loading your history…'));
  let data;
  try {
    data = await gql(Q_HISTORY, { kind: hs.kind, after: more ? hs.cursor : null });
  } catch (e) {
    if (gen !== hs.gen) return;
    hs.loading = false;
    hs.stale = !more;
    setState(box, 'error', t('Your history could not be loaded.') + ' ' + errorText(e), () => loadHistory(more));
    return;
  }
  if (gen !== hs.gen) return;
  hs.loading = false;
  const page = data.history.edges.map((e) => e.node);
  hs.items = hs.items.concat(page);
  hs.cursor = data.history.pageInfo.endCursor;
  hs.hasNext = data.history.pageInfo.hasNextPage;
  const list = $('history');
  for (const entry of page) list.append(historyRow(entry));
  if (hs.items.length === 0) {
    const none = hs.kind === 'EARN' ? t('Nothing earned yet.') : hs.kind === 'BURN' ? t('Nothing spent yet.') : t('Nothing earned or spent yet.');
    setState(box, 'empty', none);
  } else if (!hs.hasNext) {
    setState(box, 'end', t('That’s everything.'));
  } else {
    setState(box, '');
  }
  $('history-more').hidden = !hs.hasNext;
  list.dataset.count = String(hs.items.length);
  // The sentinel may still be in view (a short page): observing it again
  // reports its current visibility and loads the next page if needed.
  watchHistory();
}

function historyRow(e) {
  const plus = e.points > 0;
  const about = e.voucher && e.voucher.gift ? e.voucher.gift.title : '';
  let title = e.reason || kindLabel(e.kind);
  if (about && e.kind === 'burn') title = t('Claimed: {gift}', { gift: about });
  else if (about && e.kind === 'refund') title = t('Refunded: {gift}', { gift: about });
  const detail = entryDetail(e);
  // Held points (and their withdrawal) are outside the balance: shown apart.
  const held = e.kind === 'pending' || e.kind === 'cancel';
  return el('li', { class: 'entry' + (held ? ' held' : ''), 'data-entry': e.id, 'data-kind': e.kind },
    el('div', { class: 'entry-main' },
      el('span', { class: 'entry-title', text: title }),
      el('time', { class: 'muted small', datetime: e.occurredAt, text: `${kindLabel(e.kind)} · ${fmtDate(e.occurredAt)}` }),
      detail ? el('span', { class: 'entry-detail muted small', text: detail }) : null,
    ),
    el('div', { class: 'entry-points' },
      el('strong', { class: held ? 'held' : plus ? 'plus' : 'minus', text: (plus ? '+' : '−') + fmtNumber(Math.abs(e.points)) }),
      el('span', { class: 'muted small', text: t('Balance {n}', { n: fmtNumber(e.balanceAfter) }) }),
    ),
  );
}

function watchHistory() {
  const sentinel = $('history-sentinel');
  if (!('IntersectionObserver' in window)) return;
  if (!historyObserver) {
    historyObserver = new IntersectionObserver((entries) => {
      if (entries.some((en) => en.isIntersecting) && !$('panel-history').hidden) loadHistory(true);
    }, { rootMargin: '0px 0px 300px 0px' });
  }
  historyObserver.unobserve(sentinel);
  historyObserver.observe(sentinel);
}

function setupHistory() {
  for (const chip of document.querySelectorAll('.filter .chip')) {
    chip.addEventListener('click', () => {
      if (state.history.kind === chip.dataset.kind && !state.history.stale) return;
      for (const c of document.querySelectorAll('.filter .chip')) c.setAttribute('aria-pressed', String(c === chip));
      state.history.kind = chip.dataset.kind;
      loadHistory(false);
    });
  }
  $('history-more').addEventListener('click', () => loadHistory(true));
}

// ---------------------------------------------------------------------------
// Ranking
// ---------------------------------------------------------------------------

async function loadRanking() {
  state.ranking.stale = false;
  const box = $('ranking-state');
  const list = $('ranking');
  setState(box, 'loading', t('Loading the leaderboard…'));
  let data;
  try {
    data = await gql(Q_RANKING);
  } catch (e) {
    state.ranking.stale = true;
    setState(box, 'error', t('The leaderboard could not be loaded.') + ' ' + errorText(e), loadRanking);
    return;
  }
  const r = data.ranking;
  clear(list);
  $('ranking-updated').textContent = r.refreshedAt ? t('Updated {time}.', { time: fmtTime(r.refreshedAt) }) : '';
  if (r.rank == null) {
    setState(box, 'empty', t('You are not on the leaderboard yet. Earn {currency} to join: ranks are updated about every minute.', { currency: state.currency }));
    return;
  }
  setState(box, '');
  const rows = r.above.concat([{ rank: r.rank, displayName: null, lifetimePoints: r.lifetimePoints, isMe: true }], r.below);
  for (const row of rows) {
    list.append(el('li', { class: 'rank-row' + (row.isMe ? ' me' : ''), 'aria-current': row.isMe ? 'true' : null, 'data-rank': String(row.rank) },
      el('span', { class: 'rank', text: '#' + fmtNumber(row.rank) }),
      el('span', { class: 'who', text: row.isMe ? t('You') : row.displayName || t('A member') }),
      el('span', { class: 'pts', text: `${fmtNumber(row.lifetimePoints)} ${state.currency}` }),
    ));
  }
}

// ---------------------------------------------------------------------------
// Logout and start
// ---------------------------------------------------------------------------

function setupLogout() {
  const btn = $('logout');
  let armed = false;
  btn.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      btn.textContent = t('Tap again to sign out on every device');
      setTimeout(() => { armed = false; btn.textContent = t('Sign out on every device'); }, 5000);
      return;
    }
    btn.disabled = true;
    try {
      await gql(M_LOGOUT);
      showSession('SIGNED_OUT');
    } catch (e) {
      if (!document.body.dataset.session) announce(errorText(e), true);
      btn.disabled = false;
    }
  });
}

/**
 * The interface's language: the token's locale claim (the partner knows
 * the user's language), else the browser's languages, else English.
 */
async function chooseLocale() {
  const tag = pickLocale([tokenClaim('locale')].concat(navigator.languages || [navigator.language]));
  await setLocale(tag);
  // Dates and numbers follow the token's locale when it gives one (a
  // French user in an English browser reads French dates); otherwise the
  // browser's own.
  setFormatLocale(tokenClaim('locale') && LOCALES.includes(tag) ? tokenClaim('locale') : undefined);
}

async function start() {
  setPartnerHint(new URLSearchParams(window.location.search).get('partner'));
  setupTabs();
  setupHistory();
  $('invite-copy').addEventListener('click', copyInvite);
  setupLogout();
  $('catalog-more').addEventListener('click', () => loadCatalog(true));
  $('vouchers-more').addEventListener('click', () => loadVouchers(true));
  $('vouchers-refresh').addEventListener('click', () => loadVouchers(false));
  $('ranking-refresh').addEventListener('click', loadRanking);
  // The app may hand over a fresh token later by changing the fragment.
  window.addEventListener('hashchange', async () => {
    if (takeTokenFromURL()) {
      $('session').hidden = true;
      await chooseLocale();
      boot();
    }
  });
  const found = takeTokenFromURL();
  await chooseLocale();
  if (!found) {
    showSession('UNAUTHENTICATED');
    return;
  }
  boot();
}

start();
