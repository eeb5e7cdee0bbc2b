// The console's languages. Every user-visible string is looked up by key in
// one catalog per language (i18n/en.json, i18n/zh-CN.json) with t(); the
// language follows the browser (navigator.languages) unless the switch in
// the header chose one, which is remembered in localStorage. Numbers, dates
// and relative times are formatted with Intl for the language shown.
//
// A key must appear literally in a call, t('jobs.title'), tp('…') or, where
// the key is picked at run time, tk('state.queued') in the table it is
// picked from: ui/i18n_test.go reads the modules for these calls and fails
// on a key a catalog lacks, a catalog key nobody uses, or placeholders that
// differ between the languages.

/** LANGUAGES are the console's languages, each named in itself. */
export const LANGUAGES = [['en', 'English'], ['zh-CN', '简体中文']];
const STORE = 'gantry.lang';

let current = 'en';
let catalog = {};
let english = {};
const loaded = new Map();

/** lang is the language the console shows (a BCP 47 tag). */
export const lang = () => current;

/** tk marks a key chosen at run time; it returns the key. */
export const tk = (key) => key;

// match maps a browser language tag to one of ours, or null: zh, zh-CN,
// zh-SG and zh-Hans-* are Simplified Chinese; Traditional (zh-TW, zh-HK,
// zh-Hant) is not offered, so the next preference decides.
function match(tag) {
  const x = String(tag || '').toLowerCase();
  if (x === 'zh' || x.startsWith('zh-cn') || x.startsWith('zh-sg') || x.startsWith('zh-hans')) return 'zh-CN';
  if (x === 'en' || x.startsWith('en-')) return 'en';
  return null;
}

/** preferred is the remembered choice, else the browser's first language we have, else English. */
export function preferred() {
  let saved = null;
  try { saved = localStorage.getItem(STORE); } catch { /* storage disabled */ }
  if (LANGUAGES.some(([l]) => l === saved)) return saved;
  for (const tag of navigator.languages || [navigator.language]) {
    const m = match(tag);
    if (m) return m;
  }
  return 'en';
}

async function fetchCatalog(l) {
  if (!loaded.has(l)) {
    loaded.set(l, fetch(`/assets/i18n/${l}.json`, {credentials: 'same-origin'}).then((r) => {
      if (!r.ok) throw new Error(`catalog ${l}: ${r.status}`);
      return r.json();
    }).catch((e) => { loaded.delete(l); throw e; }));
  }
  return loaded.get(l);
}

/** use loads language l's catalog (and English, the fallback) and shows it. */
export async function use(l) {
  if (!LANGUAGES.some(([x]) => x === l)) l = 'en';
  const [en, cat] = await Promise.all([fetchCatalog('en'), fetchCatalog(l)]);
  english = en; catalog = cat; current = l;
  numbers.clear();
  document.documentElement.lang = l;
}

/** choose switches to l and remembers it for the next visit. */
export async function choose(l) {
  await use(l);
  try { localStorage.setItem(STORE, l); } catch { /* not remembered, still shown */ }
}

// Keys looked up but missing (the Go test should have caught them): kept
// for the browser tests, and English or the key is shown instead.
const missing = new Set();
window.__i18nMissing = missing;

function entry(key) {
  let v = catalog[key];
  if (v === undefined) {
    if (!missing.has(key)) { missing.add(key); console.warn(`i18n: no ${current} text for ${key}`); }
    v = english[key];
  }
  return v === undefined ? key : v;
}

const plurals = new Map();
function pluralOf(n) {
  if (!plurals.has(current)) plurals.set(current, new Intl.PluralRules(current));
  return plurals.get(current).select(n);
}

// The text of key for params, a plural form chosen by params.n.
function text(key, params) {
  const v = entry(key);
  if (typeof v === 'string') return v;
  const n = params && typeof params.n === 'number' ? params.n : 0;
  return v[pluralOf(n)] ?? v.other;
}

const numbers = new Map();
/** num formats a number for the language (grouping, decimals). */
export function num(n, opts) {
  const k = opts ? JSON.stringify(opts) : '';
  if (!numbers.has(k)) numbers.set(k, new Intl.NumberFormat(current, opts));
  return numbers.get(k).format(n);
}

const show = (v) => typeof v === 'number' ? num(v) : String(v);

/**
 * t is the text of key with {name} placeholders filled from params; numbers
 * are formatted for the language, and params.n picks the plural form.
 */
export function t(key, params) {
  const s = text(key, params);
  if (!params) return s;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? show(params[name]) : m));
}

/**
 * tp is t for text with elements in it: a param that is a DOM node is
 * placed as it is, so a link or a <code> sits where the language puts it.
 * It returns children for h().
 */
export function tp(key, params) {
  const out = [];
  const s = text(key, params);
  let last = 0;
  for (const m of s.matchAll(/\{(\w+)\}/g)) {
    if (!(m[1] in params)) continue;
    if (m.index > last) out.push(s.slice(last, m.index));
    const v = params[m[1]];
    out.push(v instanceof Node || Array.isArray(v) ? v : show(v));
    last = m.index + m[0].length;
  }
  if (last < s.length) out.push(s.slice(last));
  return out;
}

/** dateTime formats a time (RFC 3339 or Unix ms) as date and time. */
export function dateTime(x) {
  return new Date(x).toLocaleString(current);
}

/** clock formats a time of day; seconds when asked. */
export function clock(x, seconds = false) {
  return new Date(x).toLocaleTimeString(current, seconds ? {hour: '2-digit', minute: '2-digit', second: '2-digit'} : {hour: '2-digit', minute: '2-digit'});
}

const rels = new Map();
/** ago formats an RFC 3339 time relative to now: "5s ago", "5秒前". */
export function ago(iso) {
  if (!rels.has(current)) rels.set(current, new Intl.RelativeTimeFormat(current, {style: 'narrow', numeric: 'auto'}));
  const r = rels.get(current);
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s <= 0) return r.format(0, 'second');
  if (s < 60) return r.format(-s, 'second');
  if (s < 3600) return r.format(-Math.floor(s / 60), 'minute');
  if (s < 86400) return r.format(-Math.floor(s / 3600), 'hour');
  return r.format(-Math.floor(s / 86400), 'day');
}
