// Small DOM and formatting helpers shared by the pages.

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
  return h('time', {datetime: iso, title: new Date(iso).toLocaleString()}, ago(iso));
}

/** ago formats an RFC 3339 time relative to now: "5s ago", "3h ago". */
export function ago(iso) {
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** dur formats milliseconds as "1h 2m", "3m 4s", "5.2s". */
export function dur(ms) {
  if (ms == null || isNaN(ms) || ms < 0) return '—';
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
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
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${u[i]}`;
}

/** cpu formats millicores as CPUs. */
export function cpu(m) {
  if (m == null) return '—';
  return `${(m / 1000).toFixed(m % 1000 === 0 ? 0 : 2)} CPU`;
}

/** badge renders a state as a coloured pill. */
export function badge(state) {
  return h('span', {class: `badge s-${state}`}, state);
}

/** Refreshes every relative time on the page (called on a timer). */
export function refreshTimes(root = document) {
  for (const t of root.querySelectorAll('time[datetime]')) t.textContent = ago(t.getAttribute('datetime'));
}

/** toast shows a short message for a few seconds. */
export function toast(msg, kind = 'error') {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = kind;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

export const terminal = (s) => s === 'succeeded' || s === 'failed' || s === 'cancelled';
export const STATES = ['queued', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled'];
