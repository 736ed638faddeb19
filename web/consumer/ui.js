import { t } from './i18n.js';

// Small DOM helpers. Everything is built with createElement and
// textContent: no HTML strings (the page's CSP turns innerHTML off with
// Trusted Types), no inline styles (the CSP refuses them too).

/**
 * Creates an element. props: class, text, on<event> handlers, and
 * attributes (null, undefined and false are left out; true is an empty
 * attribute).
 */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

/** Removes every child. */
export function clear(node) {
  node.replaceChildren();
}

/**
 * Shows the state line of a list: 'loading', 'empty', 'error' (with a
 * retry button when retry is given), 'end', or '' to hide it.
 */
export function setState(box, kind, text = '', retry = null) {
  clear(box);
  box.dataset.state = kind;
  box.hidden = kind === '';
  if (kind === '') {
    box.removeAttribute('aria-busy');
    return;
  }
  if (kind === 'loading') {
    box.setAttribute('aria-busy', 'true');
    box.append(el('span', { class: 'spinner small-spinner', 'aria-hidden': 'true' }));
  } else {
    box.removeAttribute('aria-busy');
  }
  box.append(el('span', { text }));
  if (kind === 'error') {
    box.setAttribute('role', 'alert');
    if (retry) box.append(el('button', { type: 'button', class: 'secondary', onclick: retry }, t('Try again')));
  } else {
    box.removeAttribute('role');
  }
}

let toastTimer = 0;

/** Says msg in the live region (screen readers) and shows it as a toast. */
export function announce(msg, error = false) {
  const box = document.getElementById('status');
  box.textContent = msg;
  box.classList.toggle('error', error);
  box.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove('show'), 6000);
}

let numberFmt = new Intl.NumberFormat();
let dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
let timeFmt = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
let dayFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
let dayYearFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });

/**
 * Formats numbers and dates in tag (a BCP 47 locale; undefined: the
 * browser's own), in the browser's time zone.
 */
export function setFormatLocale(tag) {
  let loc = tag;
  try {
    Intl.getCanonicalLocales(loc || []);
  } catch {
    loc = undefined;
  }
  numberFmt = new Intl.NumberFormat(loc);
  dateFmt = new Intl.DateTimeFormat(loc, { dateStyle: 'medium', timeStyle: 'short' });
  timeFmt = new Intl.DateTimeFormat(loc, { timeStyle: 'short' });
  dayFmt = new Intl.DateTimeFormat(loc, { day: 'numeric', month: 'short' });
  dayYearFmt = new Intl.DateTimeFormat(loc, { day: 'numeric', month: 'short', year: 'numeric' });
}

export function fmtNumber(n) {
  return numberFmt.format(n);
}

export function fmtDate(iso) {
  return iso ? dateFmt.format(new Date(iso)) : '';
}


/**
 * The last day before an exclusive end such as an expiry (points that
 * expire at midnight on 1 Jan "expire on 31 Dec"), in the user's locale and
 * time zone, with the year only when it is not this year.
 */
export function fmtLastDay(iso) {
  if (!iso) return '';
  const d = new Date(new Date(iso).getTime() - 1);
  return (d.getFullYear() === new Date().getFullYear() ? dayFmt : dayYearFmt).format(d);
}

export function fmtTime(iso) {
  return iso ? timeFmt.format(new Date(iso)) : '';
}
