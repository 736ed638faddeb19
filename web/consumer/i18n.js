// The webview's interface strings in the user's language.
//
// Every string the page shows goes through t(): its key is the English
// text, with {name} placeholders ("You need {n} more {currency} to claim
// this gift."), and each locale is a JSON catalog under
// /assets/consumer/locales/<tag>.json mapping every key to its
// translation. Static text in index.html is marked data-i18n (its English
// text is the key) and data-i18n-attr="aria-label alt" for attributes.
// TestWebviewLocalesHaveEveryKey checks that every catalog has every key
// used here, no other, and the same placeholders.
//
// To add a language: copy locales/en.json to locales/<tag>.json (a BCP 47
// language tag: "de", "pt-BR"), translate the values, and add the tag to
// LOCALES below (docs/webview.md, "Languages").

/** The catalogs shipped, in order of preference when nothing matches. */
export const LOCALES = ['en', 'fr'];

let messages = {};
let current = 'en';

/** The locale of the interface ("en", "fr"). */
export function locale() {
  return current;
}

/**
 * Chooses the interface's locale: the first of the candidates (the
 * token's locale claim, then the browser's languages) that a catalog
 * serves, exactly ("pt-BR") or by its language ("fr-CA" → "fr"); English
 * otherwise.
 */
export function pickLocale(candidates) {
  const byLower = new Map(LOCALES.map((l) => [l.toLowerCase(), l]));
  for (const c of candidates) {
    if (typeof c !== 'string' || !c) continue;
    const tag = c.replace('_', '-').toLowerCase();
    if (byLower.has(tag)) return byLower.get(tag);
    const lang = tag.split('-')[0];
    if (byLower.has(lang)) return byLower.get(lang);
  }
  return 'en';
}

/**
 * Loads the catalog of tag and makes it current; on failure the English
 * keys are shown (they are the English text). Sets <html lang>.
 */
export async function setLocale(tag) {
  current = 'en';
  messages = {};
  if (tag !== 'en') {
    try {
      const res = await fetch(`/assets/consumer/locales/${encodeURIComponent(tag)}.json`, { credentials: 'omit' });
      if (res.ok) {
        messages = await res.json();
        current = tag;
      }
    } catch {
      // Offline or not served: English.
    }
  }
  document.documentElement.lang = current;
  translatePage(document);
}

/** Translates key, filling its {name} placeholders from vars. */
export function t(key, vars) {
  const s = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
  if (!vars) return s;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/**
 * Translates the static text of root: elements marked data-i18n (their
 * English text, kept in data-i18n the first time, is the key) and the
 * attributes listed in data-i18n-attr.
 */
export function translatePage(root) {
  for (const node of root.querySelectorAll('[data-i18n]')) {
    if (!node.dataset.i18n) node.dataset.i18n = node.textContent.trim();
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of root.querySelectorAll('[data-i18n-attr]')) {
    for (const attr of node.dataset.i18nAttr.split(/\s+/).filter(Boolean)) {
      const keyAttr = 'data-i18n-' + attr;
      if (!node.hasAttribute(keyAttr)) node.setAttribute(keyAttr, node.getAttribute(attr) || '');
      node.setAttribute(attr, t(node.getAttribute(keyAttr)));
    }
  }
}
