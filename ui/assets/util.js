// Small DOM and formatting helpers shared by the pages.
import {t, tk, num, ago, dateTime} from './i18n.js';

/** h builds an element: h('a', {href: '/x', class: 'y'}, 'text', child). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    // Through the CSSOM: the Content-Security-Policy forbids style attributes.
    else if (k === 'style') el.style.cssText = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** time renders a <time> showing a relative time with the absolute one on hover. */
export function time(iso) {
  if (!iso) return h('span', {class: 'muted'}, '—');
  return h('time', {datetime: iso, title: dateTime(iso)}, ago(iso));
}

/** dur formats milliseconds as "1h 2m", "3m 4s", "5.2s". */
export function dur(ms) {
  if (ms == null || isNaN(ms) || ms < 0) return '—';
  const s = ms / 1000;
  if (s < 10) return t('dur.s', {s: num(s, {minimumFractionDigits: 1, maximumFractionDigits: 1})});
  if (s < 60) return t('dur.s', {s: Math.round(s)});
  if (s < 3600) return t('dur.ms', {m: Math.floor(s / 60), s: Math.round(s % 60)});
  return t('dur.hm', {h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60)});
}

/** jobDuration is how long a job ran (so far, while it runs). */
export function jobDuration(j) {
  if (!j.started) return null;
  const end = j.ended ? Date.parse(j.ended) : Date.now();
  return end - Date.parse(j.started);
}

/** bytes formats a byte count. */
export function bytes(n) {
  if (n == null) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n >= 10 || i === 0 ? num(Math.round(n)) : num(n, {minimumFractionDigits: 1, maximumFractionDigits: 1})} ${u[i]}`;
}

/** cpu formats millicores as CPUs. */
export function cpu(m) {
  if (m == null) return '—';
  const d = m % 1000 === 0 ? 0 : 2;
  return t('unit.cpu', {n: num(m / 1000, {minimumFractionDigits: d, maximumFractionDigits: d})});
}

const STATE_TEXT = {
  queued: tk('state.queued'), scheduled: tk('state.scheduled'), running: tk('state.running'),
  succeeded: tk('state.succeeded'), failed: tk('state.failed'), cancelled: tk('state.cancelled'),
};

/** stateText names a job or task state in the console's language. */
export const stateText = (s) => STATE_TEXT[s] ? t(STATE_TEXT[s]) : s;

const REASON_TEXT = {
  exited: tk('reason.exited'), oom_killed: tk('reason.oom_killed'), timed_out: tk('reason.timed_out'),
  node_lost: tk('reason.node_lost'), cancelled: tk('reason.cancelled'), image_pull_failed: tk('reason.image_pull_failed'),
  preempted: tk('reason.preempted'), dependency_failed: tk('reason.dependency_failed'),
};

/** reasonText names why an attempt ended (INTERFACE.md's reasons); an unknown one shows as sent. */
export const reasonText = (r) => REASON_TEXT[r] ? t(REASON_TEXT[r]) : r;

/** badge renders a state as a coloured pill. */
export function badge(state) {
  return h('span', {class: `badge s-${state}`, 'data-state': state}, stateText(state));
}

/** Refreshes every relative time on the page (called on a timer). */
export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll('time[datetime]')) el.textContent = ago(el.getAttribute('datetime'));
}

/** toast shows a short message for a few seconds. */
export function toast(msg, kind = 'error') {
  const box = document.getElementById('toast');
  box.textContent = msg;
  box.className = kind;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

export const terminal = (s) => s === 'succeeded' || s === 'failed' || s === 'cancelled';
export const STATES = ['queued', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled'];
