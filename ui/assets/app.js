// The console's entry point: session, navigation bar, routing and the pages
// that are simple forms and tables. Jobs live in jobs.js and job.js.
import {h, time, toast, refreshTimes, cpu, bytes} from './util.js';
import {api, get, post, setUnauthorizedHandler, APIError} from './api.js';
import {t, tp, tk, num, use, choose, preferred, lang, LANGUAGES, dateTime} from './i18n.js';
import {Live} from './live.js';
import {jobsPage} from './jobs.js';
import {jobPage} from './job.js';
import {submitPage} from './submit.js';
import {schedulesPage} from './schedules.js';
import {queuesPage} from './queues.js';
import {dashboardPage} from './dashboard.js';
import {catalogPage, catalogEntryPage, accessPage, publishForm, genaiTag} from './catalog.js';

const main = document.getElementById('main');
export const app = {me: null, live: null, cleanup: null, go: (p, r) => go(p, r)};

const routes = [
  [/^\/(?:jobs)?\/?$/, () => jobsPage(app, {mine: true})],
  [/^\/jobs\/([0-9A-Za-z]+)(?:\/tasks\/(\d+))?\/?$/, (m) => jobPage(app, m[1], m[2] === undefined ? null : Number(m[2]))],
  [/^\/submit\/?$/, () => submitPage(app)],
  [/^\/dashboard\/?$/, () => dashboardPage(app)],
  [/^\/schedules\/?$/, () => schedulesPage(app)],
  [/^\/queues\/?$/, () => queuesPage(app)],
  [/^\/nodes\/?$/, () => nodesPage()],
  [/^\/images\/?$/, () => imagesPage()],
  [/^\/catalog\/?$/, () => catalogPage(app)],
  [/^\/catalog\/(.+)\/access\/?$/, (m) => accessPage(app, m[1])],
  [/^\/catalog\/(.+?)\/?$/, (m) => catalogEntryPage(app, m[1])],
  [/^\/account\/?$/, () => accountPage()],
  [/^\/admin\/users\/?$/, () => usersPage(), true],
  [/^\/admin\/jobs\/?$/, () => jobsPage(app, {mine: false}), true],
];

/** go navigates to path without reloading the page. */
export function go(path, replace = false) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  route();
}

function route() {
  if (app.cleanup) { try { app.cleanup(); } catch (e) { console.error(e); } app.cleanup = null; }
  if (app.live) app.live.followJob(null);
  if (!app.me) { loginPage(); return; }
  const path = location.pathname;
  if (path === '/login') { go('/jobs', true); return; }
  for (const [re, page, adminOnly] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    if (adminOnly && !app.me.admin) break;
    main.replaceChildren();
    setNav(path);
    app.cleanup = page(m) || null;
    document.title = (main.querySelector('h1')?.textContent || 'Gantry') + ' · Gantry';
    return;
  }
  setNav(path);
  main.replaceChildren(h('h1', {}, t('notfound.title')), h('p', {}, ...tp('notfound.body', {link: h('a', {href: '/jobs'}, t('notfound.link'))})));
}

function setNav(path) {
  const links = [['/jobs', t('nav.jobs')], ['/submit', t('nav.submit')], ['/schedules', t('nav.schedules')], ['/queues', t('nav.queues')],
    ['/dashboard', t('nav.dashboard')], ['/nodes', t('nav.nodes')], ['/images', t('nav.images')], ['/catalog', t('nav.catalog')], ['/account', t('nav.account')]];
  if (app.me.admin) links.push(['/admin/jobs', t('nav.alljobs')], ['/admin/users', t('nav.users')]);
  const nav = document.getElementById('nav');
  nav.setAttribute('aria-label', t('nav.label'));
  nav.replaceChildren(...links.map(([href, label]) => {
    const cur = path === href || (href === '/jobs' && (path === '/' || path.startsWith('/jobs')));
    return h('a', {href, 'aria-current': cur ? 'page' : false}, label);
  }));
}

// Internal links navigate in place; modified clicks open tabs as usual.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/v2/')) return;
  e.preventDefault();
  go(url.pathname + url.search);
});
addEventListener('popstate', route);
setInterval(() => refreshTimes(main), 10000);

const LIVE_TEXT = {live: tk('live.live'), connecting: tk('live.connecting'), reconnecting: tk('live.reconnecting')};
let liveState = '';
function setLive(state) {
  liveState = state;
  const el = document.getElementById('live');
  el.className = 'live ' + state;
  el.textContent = LIVE_TEXT[state] ? t(LIVE_TEXT[state]) : '';
  el.title = state === 'live' ? t('live.title.live') : t('live.title.lost');
}

/** languagePicker is the switch between the console's languages. */
function languagePicker(id) {
  const sel = h('select', {id, class: 'lang', 'aria-label': t('lang.label'), title: t('lang.label')},
    LANGUAGES.map(([l, name]) => h('option', {value: l, lang: l, selected: l === lang()}, name)));
  sel.addEventListener('change', async () => {
    try { await choose(sel.value); } catch (e) { toast(e.message); return; }
    relabel();
    route();
  });
  return sel;
}

// relabel redraws what lives outside the pages in the language now shown.
function relabel() {
  document.getElementById('signout').textContent = t('header.signout');
  document.getElementById('lang-slot').replaceChildren(languagePicker('lang'));
  if (app.me) document.getElementById('who').textContent = app.me.admin ? t('header.who.admin', {name: app.me.name}) : app.me.name;
  setLive(liveState);
}

function signedIn(me) {
  app.me = me;
  document.getElementById('top').hidden = false;
  relabel();
  if (!app.live) app.live = new Live(setLive);
}

function signedOut() {
  app.me = null;
  if (app.live) { app.live.close(); app.live = null; }
  document.getElementById('top').hidden = true;
}

setUnauthorizedHandler(() => {
  if (!app.me) return;
  signedOut();
  toast(t('session.ended'));
  route();
});

document.getElementById('signout').addEventListener('click', async () => {
  try { await post('/logout'); } catch (e) { /* the cookies are cleared either way */ }
  signedOut();
  history.pushState(null, '', '/login');
  route();
});

// ---- forms ---------------------------------------------------------------

/** field renders a labelled input with a slot for the API's message. */
export function field(name, label, input, hint) {
  input.id = input.id || 'f-' + name;
  input.name = name;
  const err = h('div', {class: 'err', id: input.id + '-err', role: 'alert'});
  input.setAttribute('aria-describedby', err.id + (hint ? ' ' + input.id + '-hint' : ''));
  return h('div', {class: 'field', dataset: {field: name}},
    h('label', {for: input.id}, label), input,
    hint ? h('div', {class: 'hint', id: input.id + '-hint'}, hint) : null, err);
}

/** showError puts an API error next to the field it names, or on top of the form. */
export function showError(form, e) {
  clearErrors(form);
  const box = form.querySelector(`.field[data-field="${e.field}"]`);
  if (box && e.field) {
    box.classList.add('invalid');
    box.querySelector('.err').textContent = e.detail;
    const input = box.querySelector('input,select,textarea');
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else {
    const top = form.querySelector('.form-err');
    top.textContent = e.message;
    top.hidden = false;
  }
}

export function clearErrors(form) {
  for (const f of form.querySelectorAll('.field.invalid')) {
    f.classList.remove('invalid');
    f.querySelector('.err').textContent = '';
    f.querySelector('[aria-invalid]')?.removeAttribute('aria-invalid');
  }
  const top = form.querySelector('.form-err');
  if (top) { top.hidden = true; top.textContent = ''; }
}

/** busy disables a form's submit button while fn runs. */
export async function busy(form, fn) {
  const btn = form.querySelector('button[type=submit]');
  btn.disabled = true;
  try { await fn(); } finally { btn.disabled = false; }
}

function loginPage() {
  document.title = t('login.doctitle') + ' · Gantry';
  const user = h('input', {autocomplete: 'username', required: true, autofocus: true, autocapitalize: 'none', spellcheck: 'false'});
  const pw = h('input', {type: 'password', autocomplete: 'current-password', required: true});
  const form = h('form', {class: 'card login', novalidate: true},
    h('h1', {}, t('login.title')),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    field('username', t('login.username'), user),
    field('password', t('login.password'), pw),
    h('button', {type: 'submit', class: 'primary'}, t('login.submit')),
    h('p', {class: 'muted small'}, t('login.first')),
    caNote(),
    h('div', {class: 'lang-row'}, languagePicker('login-lang')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form, async () => {
      try {
        const r = await post('/login', {username: user.value.trim(), password: pw.value});
        signedIn(r.user);
        go(location.pathname === '/login' || location.pathname === '/' ? '/jobs' : location.pathname + location.search, true);
      } catch (err) {
        if (err.status === 401) err.field = 'password', err.detail = t('login.wrong');
        showError(form, err);
      }
    });
  });
  main.replaceChildren(form);
  if (location.pathname !== '/login') history.replaceState(null, '', location.pathname === '/' ? '/login' : location.pathname);
  user.focus();
}

/**
 * caNote tells a user reaching the server from another machine how to trust
 * its certificate authority: the CA (a public route) to download, the CLI
 * command that pins it by its fingerprint, and where Docker reads it.
 */
function caNote() {
  const host = location.host;
  return h('p', {class: 'muted small ca-note'}, ...tp('login.ca', {
    link: h('a', {href: '/api/v1/cluster/ca', download: 'gantry-ca.pem'}, t('login.ca.link')),
    cmd: h('code', {}, 'gantry login --addr https://' + host),
    path: h('code', {}, '/etc/docker/certs.d/' + host + '/ca.crt'),
  }));
}

// ---- account ---------------------------------------------------------------

function accountPage() {
  const old = h('input', {type: 'password', autocomplete: 'current-password', required: true});
  const nw = h('input', {type: 'password', autocomplete: 'new-password', required: true, minlength: 8});
  const pwForm = h('form', {class: 'card', novalidate: true},
    h('h2', {}, t('account.password.title')),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    field('old', t('account.password.old'), old),
    field('new', t('account.password.new'), nw, t('account.password.hint')),
    h('button', {type: 'submit', class: 'primary'}, t('account.password.submit')));
  pwForm.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(pwForm, async () => {
      try {
        await post('/me/password', {old: old.value, new: nw.value});
        clearErrors(pwForm); pwForm.reset(); toast(t('account.password.done'), 'ok');
      } catch (err) { showError(pwForm, err); }
    });
  });

  const list = h('div', {}, h('p', {class: 'muted'}, t('common.loading')));
  const secret = h('div', {class: 'secret', hidden: true});
  const name = h('input', {required: true, placeholder: t('account.token.placeholder'), maxlength: 100});
  const tokForm = h('form', {class: 'inline', novalidate: true},
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    field('name', t('account.token.name'), name),
    h('button', {type: 'submit', class: 'primary'}, t('account.token.create')));
  const load = async () => {
    const {tokens} = await get('/tokens');
    if (!tokens.length) {
      list.replaceChildren(h('p', {class: 'empty'}, ...tp('account.token.none', {cmd: h('code', {}, 'gantry login')})));
      return;
    }
    list.replaceChildren(h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, t('account.token.col.name')), h('th', {}, t('common.created')), h('th', {}, t('account.token.col.used')), h('th', {}, ''))),
      h('tbody', {}, tokens.map((tok) => h('tr', {},
        h('td', {}, tok.name), h('td', {}, time(tok.created)), h('td', {}, time(tok.last_used)),
        h('td', {class: 'right'}, h('button', {class: 'danger small', 'aria-label': t('account.token.delete.label', {name: tok.name}), onclick: async () => {
          if (!confirm(t('account.token.delete.confirm', {name: tok.name}))) return;
          try { await api('DELETE', '/tokens/' + encodeURIComponent(tok.id)); load(); } catch (err) { toast(err.message); }
        }}, t('common.delete'))))))));
  };
  tokForm.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(tokForm, async () => {
      try {
        const r = await post('/tokens', {name: name.value});
        clearErrors(tokForm); tokForm.reset();
        secret.replaceChildren(h('strong', {}, t('account.token.secret')), h('code', {class: 'copy'}, r.token), copyButton(r.token));
        secret.hidden = false;
        load();
      } catch (err) { showError(tokForm, err); }
    });
  });
  const quota = h('p', {class: 'muted quota-line'});
  const storage = h('p', {class: 'muted storage-line'});
  get('/me').then((me) => {
    quota.replaceChildren(...tp('account.quota', {usage: usageText(me.usage), quota: quotaText(me.quota)}));
    storage.replaceChildren(...tp('account.storage', {used: bytes(me.storage ? me.storage.bytes : 0), quota: storageQuotaText(me.storage_quota)}));
  }).catch(() => {});
  main.append(h('h1', {}, t('account.title')), h('p', {class: 'muted'}, (app.me.admin ? t('account.signedin.admin', {name: app.me.name}) : t('account.signedin', {name: app.me.name}))), quota, storage,
    pwForm, h('section', {class: 'card'}, h('h2', {}, t('account.token.title')), secret, list, tokForm, caNote()));
  load().catch((e) => list.replaceChildren(h('p', {class: 'error'}, e.message)));
}

export function copyButton(text) {
  return h('button', {type: 'button', class: 'small', onclick: async (e) => {
    try { await navigator.clipboard.writeText(text); e.target.textContent = t('copy.done'); } catch { e.target.textContent = t('copy.failed'); }
  }}, t('copy.button'));
}

// ---- admin: users ------------------------------------------------------------

function usersPage() {
  const list = h('div', {}, h('p', {class: 'muted'}, t('common.loading')));
  const uname = h('input', {required: true, autocapitalize: 'none', spellcheck: 'false', autocomplete: 'off'});
  const pw = h('input', {type: 'password', required: true, autocomplete: 'new-password'});
  const admin = h('input', {type: 'checkbox'});
  const form = h('form', {class: 'card', novalidate: true},
    h('h2', {}, t('users.create.title')),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    h('div', {class: 'row'}, field('username', t('login.username'), uname, t('users.create.username.hint')), field('password', t('login.password'), pw)),
    h('label', {class: 'check'}, admin, ' ', t('users.create.admin')),
    h('button', {type: 'submit', class: 'primary'}, t('users.create.submit')));
  const load = async () => {
    const {users} = await get('/users');
    const col = {user: t('users.col.user'), role: t('users.col.role'), status: t('users.col.status'), holds: t('users.col.holds'), quota: t('users.col.quota'), storage: t('users.col.storage'), created: t('common.created')};
    list.replaceChildren(h('table', {class: 'cards users'}, h('thead', {}, h('tr', {}, h('th', {}, col.user), h('th', {}, col.role), h('th', {}, col.status), h('th', {}, col.holds), h('th', {}, col.quota), h('th', {}, col.storage), h('th', {}, col.created), h('th', {}, ''))),
      h('tbody', {}, users.map((u) => h('tr', {'data-user': u.name},
        h('td', {}, u.name), h('td', {'data-label': col.role}, u.admin ? t('users.role.admin') : t('users.role.user')),
        h('td', {'data-label': col.status}, u.disabled ? h('span', {class: 'badge s-cancelled'}, t('users.status.disabled')) : h('span', {class: 'badge s-succeeded'}, t('users.status.active'))),
        h('td', {'data-label': col.holds}, usageText(u.usage)),
        h('td', {'data-label': col.quota, class: 'quota'}, quotaText(u.quota)),
        h('td', {'data-label': col.storage, class: 'storage'}, t('users.storage', {used: bytes(u.storage ? u.storage.bytes : 0), quota: storageQuotaText(u.storage_quota)})),
        h('td', {'data-label': col.created}, time(u.created)),
        h('td', {class: 'right'}, u.name === app.me.name ? null : h('button', {class: u.disabled ? 'small' : 'small danger', onclick: async () => {
          try { await api('PATCH', '/users/' + encodeURIComponent(u.name), {disabled: !u.disabled}); load(); } catch (err) { toast(err.message); }
        }}, u.disabled ? t('users.enable') : t('users.disable'))))))));
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form, async () => {
      try {
        await post('/users', {username: uname.value.trim(), password: pw.value, admin: admin.checked});
        clearErrors(form); form.reset(); toast(t('users.create.done'), 'ok'); load();
      } catch (err) { showError(form, err); }
    });
  });
  const qUser = h('input', {required: true, autocapitalize: 'none', spellcheck: 'false', autocomplete: 'off'});
  const qCPU = h('input', {type: 'number', min: 0, step: 0.1, inputmode: 'decimal', placeholder: t('common.nolimit')});
  const qMem = h('input', {type: 'number', min: 0, step: 0.5, inputmode: 'decimal', placeholder: t('common.nolimit')});
  const qGPUs = h('input', {type: 'number', min: 0, step: 1, inputmode: 'numeric', placeholder: t('common.nolimit')});
  const qStorage = h('input', {type: 'number', min: 0, step: 0.5, inputmode: 'decimal', placeholder: t('common.nolimit')});
  const qForm = h('form', {class: 'card quota-form', novalidate: true},
    h('h2', {}, t('users.quota.title')),
    h('p', {class: 'muted'}, t('users.quota.intro')),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    h('div', {class: 'row'}, field('user', t('login.username'), qUser), field('cpu', t('users.quota.cpu'), qCPU), field('memory', t('users.quota.memory'), qMem), field('gpus', t('users.quota.gpus'), qGPUs), field('storage_quota', t('users.quota.storage'), qStorage)),
    h('button', {type: 'submit', class: 'primary'}, t('users.quota.submit')));
  qForm.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(qForm, async () => {
      try {
        const n = (el, scale) => { const v = el.value.trim(); return v === '' ? 0 : Math.round(Number(v) * scale); };
        const quota = {cpu: n(qCPU, 1000), memory: n(qMem, 1 << 30), gpus: n(qGPUs, 1)};
        const who = qUser.value.trim();
        if (!who) throw new APIError(400, 'user: ' + t('users.quota.which'));
        await api('PATCH', '/users/' + encodeURIComponent(who), {quota, storage_quota: n(qStorage, 1 << 30)});
        clearErrors(qForm); qForm.reset(); toast(t('users.quota.done', {name: who}), 'ok'); load();
      } catch (err) { showError(qForm, err); }
    });
  });
  main.append(h('h1', {}, t('users.title')), h('section', {class: 'card'}, list), form, qForm);
  load().catch((e) => list.replaceChildren(h('p', {class: 'error'}, e.message)));
}

function usageText(u) {
  if (!u || !u.tasks) return h('span', {class: 'muted'}, t('usage.nothing'));
  return t('usage.tasks', {n: u.tasks, cpu: cpu(u.allocated.cpu), memory: bytes(u.allocated.memory)});
}

function storageQuotaText(limit) {
  return limit ? bytes(limit) : t('usage.noquota');
}

function quotaText(q) {
  if (!q) return h('span', {class: 'muted'}, t('usage.noquota'));
  const parts = [];
  if (q.cpu) parts.push(cpu(q.cpu));
  if (q.memory) parts.push(bytes(q.memory));
  if (q.gpus) parts.push(t('unit.gpus', {n: q.gpus}));
  return parts.join(', ');
}

// ---- nodes -------------------------------------------------------------------

function meter(used, total, fmt) {
  const pct = total ? Math.min(100, Math.round((used / total) * 100)) : 0;
  return h('div', {class: 'meter', title: t('nodes.meter.title', {used: fmt(used), total: fmt(total), pct})},
    h('div', {class: 'bar'}, h('span', {style: `width:${pct}%`})), h('small', {}, `${fmt(used)} / ${fmt(total)}`));
}

function inUse(v, fmt) {
  return v == null ? null : h('div', {class: 'muted small', title: t('nodes.inuse.title')}, t('nodes.inuse', {v: fmt(v)}));
}

// gpus shows a node's GPUs: how many are held, and each device as a chip
// that says whether it is free or how many tasks hold it.
function gpus(n) {
  const ds = n.devices || [];
  if (!ds.length) return '–';
  const held = ds.filter((d) => d.in_use > 0).length;
  return h('div', {class: 'gpus'}, h('small', {}, t('nodes.gpus.held', {held, total: ds.length})),
    h('div', {class: 'labels'}, ds.map((d, i) => h('span', {
      class: `tag gpu ${d.in_use > 0 ? 'held' : 'free'}`, 'data-device': d.id,
      title: (d.shareable ? t('nodes.gpu.title.shareable', {i: String(i), mode: d.mode}) : t('nodes.gpu.title', {i: String(i), mode: d.mode})) + ' ' +
        (d.in_use > 0 ? t('nodes.gpu.heldby', {n: d.in_use}) : t('nodes.gpu.free')),
    }, `${i}: ${d.in_use > 0 ? t('nodes.gpu.inuse') : t('nodes.gpu.free')}`))));
}

const NODE_STATE = {ready: tk('nodes.state.ready'), draining: tk('nodes.state.draining'), drained: tk('nodes.state.drained'), down: tk('nodes.state.down')};
const ROLE = {
  leader: [tk('nodes.role.leader'), tk('nodes.role.leader.title')],
  voter: [tk('nodes.role.voter'), tk('nodes.role.voter.title')],
  promoting: [tk('nodes.role.promoting'), tk('nodes.role.promoting.title')],
  nonvoter: [tk('nodes.role.nonvoter'), tk('nodes.role.nonvoter.title')],
  worker: [tk('nodes.role.worker'), tk('nodes.role.worker.title')],
};

function nodesPage() {
  const body = h('div', {}, h('p', {class: 'muted'}, t('common.loading')));
  const nodes = new Map();
  let votes = null;
  const render = () => {
    if (!nodes.size) { body.replaceChildren(h('p', {class: 'empty'}, t('nodes.none'))); return; }
    const col = {node: t('nodes.col.node'), state: t('nodes.col.state'), vote: t('nodes.col.vote'), cpu: t('nodes.col.cpu'), memory: t('nodes.col.memory'),
      gpus: t('nodes.col.gpus'), running: t('nodes.col.running'), joined: t('nodes.col.joined')};
    const rows = [...nodes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => {
      const st = n.state === 'draining' && !n.running ? 'drained' : n.state;
      const role = ROLE[n.role];
      return h('tr', {},
        h('td', {'data-label': col.node}, h('strong', {}, n.name), n.leader ? h('span', {class: 'tag'}, t('nodes.role.leader')) : null, h('div', {class: 'muted small'}, n.addr),
          n.labels ? h('div', {class: 'labels'}, Object.keys(n.labels).sort().map((k) => h('span', {class: 'tag label', title: t('nodes.label.title')}, `${k}=${n.labels[k]}`))) : null),
        h('td', {'data-label': col.state}, h('span', {class: `badge n-${n.state}`, title: n.drain_deadline ? t('nodes.drain.deadline', {at: dateTime(n.drain_deadline)}) : ''},
          NODE_STATE[st] ? t(NODE_STATE[st]) : st)),
        h('td', {'data-label': col.vote, class: 'role', 'data-role': n.role || ''}, n.role ? h('span', {class: `tag role-${n.role}`, title: role ? t(role[1]) : ''}, role ? t(role[0]) : n.role) : '–'),
        h('td', {'data-label': col.cpu}, meter(n.allocated.cpu, n.capacity.cpu, cpu), inUse(n.used && n.used.cpu, cpu)),
        h('td', {'data-label': col.memory}, meter(n.allocated.memory, n.capacity.memory, bytes), inUse(n.used && n.used.memory, bytes)),
        h('td', {'data-label': col.gpus}, gpus(n)),
        h('td', {'data-label': col.running, class: 'num'}, num(n.running)),
        h('td', {'data-label': col.joined}, time(n.joined)),
        app.me.admin ? h('td', {class: 'right'}, n.state === 'ready'
          ? h('button', {class: 'small', onclick: () => setState(n.name, 'drain')}, t('nodes.drain'))
          : n.state === 'draining' ? h('button', {class: 'small', onclick: () => setState(n.name, 'ready')}, t('nodes.ready')) : null) : null);
    });
    body.replaceChildren(h('table', {class: 'cards'}, h('thead', {}, h('tr', {},
      h('th', {}, col.node), h('th', {}, col.state), h('th', {}, col.vote), h('th', {}, t('nodes.col.cpu.head')), h('th', {}, t('nodes.col.memory.head')), h('th', {}, col.gpus), h('th', {}, col.running), h('th', {}, col.joined), app.me.admin ? h('th', {}, '') : null)),
    h('tbody', {}, rows)),
    votes ? h('p', {class: 'muted tolerance', 'data-tolerance': String(votes.failure_tolerance)},
      t('nodes.votes', {n: votes.voters, healthy: votes.healthy_voters, tolerance: votes.failure_tolerance})) : null);
  };
  const setState = async (name, s) => {
    try { const n = await post(`/nodes/${encodeURIComponent(name)}/${s}`); nodes.set(n.name, {...nodes.get(n.name), ...n}); render(); } catch (e) { toast(e.message); }
  };
  const load = async () => {
    const r = await get('/nodes');
    nodes.clear();
    for (const n of r.nodes) nodes.set(n.name, n);
    votes = {voters: r.voters, healthy_voters: r.healthy_voters, failure_tolerance: r.failure_tolerance};
    render();
  };
  // Usage is measured, not replicated: it is read again each time the node
  // takes a sample ("stats" on the live channel).
  const off = app.live.on((m) => {
    if (m.type === 'open' || m.type === 'resync' || m.type === 'stats') load().catch(() => {});
    if (m.type === 'node') { nodes.set(m.node.name, {...nodes.get(m.node.name), ...m.node}); render(); }
  });
  main.append(h('h1', {}, t('nodes.title')), h('p', {class: 'muted'}, t('nodes.intro')), body);
  load().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
  return () => { if (off) off(); };
}

// ---- images --------------------------------------------------------------------

function imagesPage() {
  const host = location.host;
  const user = app.me.name;
  const cmds = [
    [t('images.step.login'), `docker login ${host} -u ${user}`],
    [t('images.step.tag'), `docker tag myimage:latest ${host}/${user}/myimage:latest`],
    [t('images.step.push'), `docker push ${host}/${user}/myimage:latest`],
    [t('images.step.run'), `gantry run ${user}/myimage:latest -- ARGS`],
  ];
  const list = h('div', {});
  main.append(h('h1', {}, t('images.title')),
    h('p', {}, ...tp('images.intro', {registry: h('code', {}, `${host}/v2/`), toolbox: h('code', {}, 'gantry/toolbox:latest')})),
    h('section', {class: 'card'}, h('h2', {}, t('images.push.title')),
      h('ol', {class: 'steps'}, cmds.map(([what, cmd]) => h('li', {}, h('div', {}, what), h('div', {class: 'cmd'}, h('code', {}, cmd), copyButton(cmd)))))),
    h('p', {class: 'muted small'}, ...tp('images.insecure', {host: h('code', {}, host)})),
    list);
  get('/images').then((r) => {
    const repos = r.repositories || [];
    if (!repos.length) { list.replaceChildren(h('p', {class: 'empty'}, t('images.none'))); return; }
    const tagText = (x) => (x.tags || []).map((tg) => tg.tag).join(', ') || t('images.untagged');
    const col = {repo: t('images.col.repo'), tags: t('images.col.tags'), licence: t('images.col.licence'), size: t('common.size'), push: t('images.col.push')};
    list.replaceChildren(
      h('h2', {}, t('images.repos')),
      h('p', {class: 'muted small'}, t('images.storage', {size: bytes(r.usage || 0)})),
      h('table', {class: 'cards'}, h('thead', {}, h('tr', {}, h('th', {}, col.repo), h('th', {}, col.tags), h('th', {}, col.licence), h('th', {}, col.size), h('th', {}, col.push), h('th', {}, ''))),
        h('tbody', {}, repos.map((x) => h('tr', {'data-repo': x.name},
          h('td', {'data-label': col.repo}, h('code', {}, x.name), x.genai ? [' ', genaiTag()] : null),
          h('td', {'data-label': col.tags}, tagText(x)),
          h('td', {'data-label': col.licence, class: 'licence'},
            x.published ? tp('images.published', {licence: h('a', {href: `/catalog/${x.name}`}, x.published.licence.expression), access: accessText(x.published.access)}) : t('images.private'),
            (x.notices || []).map((n) => h('div', {class: 'notice small'}, ...tp('notice.builton', {base: h('a', {href: `/catalog/${n.base}`}, n.base), licence: n.licence.expression, owner: n.base_owner})))),
          h('td', {'data-label': col.size}, bytes(x.size || 0)),
          h('td', {'data-label': col.push}, x.last_push ? time(x.last_push) : '-'),
          h('td', {class: 'right'}, x.owner === user ? h('button', {class: 'small publish', onclick: () => {
            const box = document.getElementById('publish-box');
            box.replaceChildren(publishForm(app, x.name, (repo) => go(`/catalog/${repo}`)));
            box.scrollIntoView();
          }}, x.published ? t('images.publish.update') : t('images.publish')) : null))))),
      h('div', {id: 'publish-box'}));
    refreshTimes(list);
  }).catch((e) => list.replaceChildren(h('p', {class: 'error'}, e.message)));
}

const ACCESS = {open: tk('access.open'), approval: tk('access.approval')};
/** accessText names a publication's access mode. */
export const accessText = (a) => ACCESS[a] ? t(ACCESS[a]) : a;

// ---- start -----------------------------------------------------------------------

(async () => {
  const me = get('/me');
  me.catch(() => {}); // handled below, after the catalog
  try {
    await use(preferred());
  } catch (e) {
    main.replaceChildren(h('p', {class: 'error'}, String(e.message || e)));
    return;
  }
  document.getElementById('signout').textContent = t('header.signout');
  try {
    signedIn(await me);
  } catch (e) {
    if (e.status !== 401) { main.replaceChildren(h('p', {class: 'error'}, e.message)); return; }
  }
  route();
})();
