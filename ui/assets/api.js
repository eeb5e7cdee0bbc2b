// The REST API client: JSON in and out, the CSRF header on state-changing
// requests, and errors that keep the field they name ("field: message").

/** APIError is a failed request; field is the spec field the message names. */
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
    const m = /^([a-z_]+): (.*)$/s.exec(message);
    this.field = m ? m[1] : '';
    this.detail = m ? m[2] : message;
  }
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
    throw new APIError(0, 'cannot reach the server; retrying when it is back');
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const msg = (data && data.error) || `${res.status} ${res.statusText}`;
    if (res.status === 401 && path !== '/login') onUnauthorized();
    throw new APIError(res.status, msg);
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
