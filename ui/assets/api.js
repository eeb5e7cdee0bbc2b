// The REST API client: JSON in and out, the CSRF header on state-changing
// requests, and errors that keep the field they name ("field: message").
import {t, tk} from './i18n.js';

// The codes whose refusals the console says in its own words; the
// server's message (English, with the specifics) stays in {message}.
const CODE_TEXT = {
  licence_not_accepted: tk('error.licence_not_accepted'),
  access_pending: tk('error.access_pending'),
  access_rejected: tk('error.access_rejected'),
  account_suspended: tk('error.account_suspended'),
  terms_not_accepted: tk('error.terms_not_accepted'),
  taken_down: tk('error.taken_down'),
  quota_exceeded: tk('error.quota_exceeded'),
  rate_limited: tk('error.rate_limited'),
  unauthorized: tk('error.unauthorized'),
  forbidden: tk('error.forbidden'),
  not_found: tk('error.not_found'),
  gone: tk('error.gone'),
  unavailable: tk('error.unavailable'),
  internal: tk('error.internal'),
};

/**
 * APIError is a failed request: status, the API's code, and the server's
 * message. field is the spec field the message names and detail the rest
 * (shown next to that field, as sent); message is what the console shows,
 * in its language for a known code.
 */
export class APIError extends Error {
  constructor(status, message, code = '') {
    super();
    this.status = status;
    this.code = code;
    this.serverMessage = message;
    const m = /^([a-z_]+): (.*)$/s.exec(message);
    this.field = m ? m[1] : '';
    this.detail = m ? m[2] : message;
  }

  // Looked up when shown, so it is in the language shown then.
  get message() { return CODE_TEXT[this.code] ? t(CODE_TEXT[this.code], {message: this.serverMessage}) : this.serverMessage; }
}

function csrf() {
  const m = /(?:^|;\s*)gantry_csrf=([^;]*)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : '';
}

/** unauthorised is called when the session has ended (401). */
export let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

/** api calls /api/v1 + path; body is sent as JSON. */
export async function api(method, path, body, {signal} = {}) {
  const headers = {'Accept': 'application/json'};
  if (method !== 'GET' && method !== 'HEAD') headers['X-Gantry-CSRF'] = csrf();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch('/api/v1' + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, t('error.network'));
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const msg = (data && data.error) || `${res.status} ${res.statusText}`;
    if (res.status === 401 && path !== '/login') onUnauthorized();
    throw new APIError(res.status, msg, (data && data.code) || '');
  }
  return data;
}

export const get = (p, o) => api('GET', p, undefined, o);
export const post = (p, b, o) => api('POST', p, b, o);

/** qs builds a query string from the non-empty values of obj. */
export function qs(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}
