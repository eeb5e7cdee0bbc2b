// The console's entry point: session, navigation bar, routing and the pages
// that are simple forms and tables. Jobs live in jobs.js and job.js.
import {h, time, toast, refreshTimes, cpu, bytes, badge} from './util.js';
import {api, get, post, setUnauthorizedHandler, APIError} from './api.js';
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
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'There is no page here. ', h('a', {href: '/jobs'}, 'Go to your jobs'), '.'));
}

function setNav(path) {
  const links = [['/jobs', 'Jobs'], ['/submit', 'Submit'], ['/schedules', 'Schedules'], ['/queues', 'Queues'], ['/dashboard', 'Dashboard'], ['/nodes', 'Nodes'], ['/images', 'Images'], ['/catalog', 'Catalog'], ['/account', 'Account']];
  if (app.me.admin) links.push(['/admin/jobs', 'All jobs'], ['/admin/users', 'Users']);
  const nav = document.getElementById('nav');
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

function setLive(state) {
  const el = document.getElementById('live');
  el.className = 'live ' + state;
  el.textContent = {live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…'}[state] || '';
  el.title = state === 'live' ? 'Receiving updates as they happen' : 'The connection to the server was lost; retrying';
}

function signedIn(me) {
  app.me = me;
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = me.name + (me.admin ? ' (admin)' : '');
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
  toast('Your session ended. Please sign in again.');
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
  document.title = 'Sign in · Gantry';
  const user = h('input', {autocomplete: 'username', required: true, autofocus: true, autocapitalize: 'none', spellcheck: 'false'});
  const pw = h('input', {type: 'password', autocomplete: 'current-password', required: true});
  const form = h('form', {class: 'card login', novalidate: true},
    h('h1', {}, 'Sign in to Gantry'),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    field('username', 'Username', user),
    field('password', 'Password', pw),
    h('button', {type: 'submit', class: 'primary'}, 'Sign in'),
    h('p', {class: 'muted small'}, 'First time? The admin password was printed when the server first started.'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form, async () => {
      try {
        const r = await post('/login', {username: user.value.trim(), password: pw.value});
        signedIn(r.user);
        go(location.pathname === '/login' || location.pathname === '/' ? '/jobs' : location.pathname + location.search, true);
      } catch (err) {
        if (err.status === 401) err.field = 'password', err.detail = 'wrong username or password';
        showError(form, err);
      }
    });
  });
  main.replaceChildren(form);
  if (location.pathname !== '/login') history.replaceState(null, '', location.pathname === '/' ? '/login' : location.pathname);
  user.focus();
}

// ---- account ---------------------------------------------------------------

function accountPage() {
  const old = h('input', {type: 'password', autocomplete: 'current-password', required: true});
  const nw = h('input', {type: 'password', autocomplete: 'new-password', required: true, minlength: 8});
  const pwForm = h('form', {class: 'card', novalidate: true},
    h('h2', {}, 'Change password'),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    field('old', 'Current password', old),
    field('new', 'New password', nw, 'At least 8 characters.'),
    h('button', {type: 'submit', class: 'primary'}, 'Change password'));
  pwForm.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(pwForm, async () => {
      try {
        await post('/me/password', {old: old.value, new: nw.value});
        clearErrors(pwForm); pwForm.reset(); toast('Password changed.', 'ok');
      } catch (err) { showError(pwForm, err); }
    });
  });

  const list = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  const secret = h('div', {class: 'secret', hidden: true});
  const name = h('input', {required: true, placeholder: 'e.g. laptop CLI', maxlength: 100});
  const tokForm = h('form', {class: 'inline', novalidate: true},
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    field('name', 'New token name', name),
    h('button', {type: 'submit', class: 'primary'}, 'Create token'));
  const load = async () => {
    const {tokens} = await get('/tokens');
    if (!tokens.length) {
      list.replaceChildren(h('p', {class: 'empty'}, 'No API tokens yet. Create one to use the CLI or scripts: ', h('code', {}, 'gantry login')));
      return;
    }
    list.replaceChildren(h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Created'), h('th', {}, 'Last used'), h('th', {}, ''))),
      h('tbody', {}, tokens.map((t) => h('tr', {},
        h('td', {}, t.name), h('td', {}, time(t.created)), h('td', {}, time(t.last_used)),
        h('td', {class: 'right'}, h('button', {class: 'danger small', 'aria-label': `Delete token ${t.name}`, onclick: async () => {
          if (!confirm(`Delete token "${t.name}"? Programs using it stop working.`)) return;
          try { await api('DELETE', '/tokens/' + encodeURIComponent(t.id)); load(); } catch (err) { toast(err.message); }
        }}, 'Delete')))))));
  };
  tokForm.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(tokForm, async () => {
      try {
        const r = await post('/tokens', {name: name.value});
        clearErrors(tokForm); tokForm.reset();
        secret.replaceChildren(h('strong', {}, 'Copy this token now; it is not shown again:'), h('code', {class: 'copy'}, r.token), copyButton(r.token));
        secret.hidden = false;
        load();
      } catch (err) { showError(tokForm, err); }
    });
  });
  const quota = h('p', {class: 'muted quota-line'});
  get('/me').then((me) => {
    quota.replaceChildren('Your running tasks hold ', usageText(me.usage), '; your quota: ', quotaText(me.quota), '.');
  }).catch(() => {});
  main.append(h('h1', {}, 'Account'), h('p', {class: 'muted'}, `Signed in as ${app.me.name}${app.me.admin ? ', an administrator' : ''}.`), quota,
    pwForm, h('section', {class: 'card'}, h('h2', {}, 'API tokens'), secret, list, tokForm));
  load().catch((e) => list.replaceChildren(h('p', {class: 'error'}, e.message)));
}

export function copyButton(text) {
  return h('button', {type: 'button', class: 'small', onclick: async (e) => {
    try { await navigator.clipboard.writeText(text); e.target.textContent = 'Copied'; } catch { e.target.textContent = 'Select and copy'; }
  }}, 'Copy');
}

// ---- admin: users ------------------------------------------------------------

function usersPage() {
  const list = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  const uname = h('input', {required: true, autocapitalize: 'none', spellcheck: 'false', autocomplete: 'off'});
  const pw = h('input', {type: 'password', required: true, autocomplete: 'new-password'});
  const admin = h('input', {type: 'checkbox'});
  const form = h('form', {class: 'card', novalidate: true},
    h('h2', {}, 'Create a user'),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    h('div', {class: 'row'}, field('username', 'Username', uname, 'Lowercase letters, digits, - and _.'), field('password', 'Password', pw)),
    h('label', {class: 'check'}, admin, ' Administrator'),
    h('button', {type: 'submit', class: 'primary'}, 'Create user'));
  const load = async () => {
    const {users} = await get('/users');
    list.replaceChildren(h('table', {class: 'cards users'}, h('thead', {}, h('tr', {}, h('th', {}, 'User'), h('th', {}, 'Role'), h('th', {}, 'Status'), h('th', {}, 'Tasks hold now'), h('th', {}, 'Quota'), h('th', {}, 'Created'), h('th', {}, ''))),
      h('tbody', {}, users.map((u) => h('tr', {'data-user': u.name},
        h('td', {}, u.name), h('td', {'data-label': 'Role'}, u.admin ? 'admin' : 'user'),
        h('td', {'data-label': 'Status'}, u.disabled ? h('span', {class: 'badge s-cancelled'}, 'disabled') : h('span', {class: 'badge s-succeeded'}, 'active')),
        h('td', {'data-label': 'Tasks hold now'}, usageText(u.usage)),
        h('td', {'data-label': 'Quota', class: 'quota'}, quotaText(u.quota)),
        h('td', {'data-label': 'Created'}, time(u.created)),
        h('td', {class: 'right'}, u.name === app.me.name ? null : h('button', {class: u.disabled ? 'small' : 'small danger', onclick: async () => {
          try { await api('PATCH', '/users/' + encodeURIComponent(u.name), {disabled: !u.disabled}); load(); } catch (err) { toast(err.message); }
        }}, u.disabled ? 'Enable' : 'Disable')))))));
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form, async () => {
      try {
        await post('/users', {username: uname.value.trim(), password: pw.value, admin: admin.checked});
        clearErrors(form); form.reset(); toast('User created.', 'ok'); load();
      } catch (err) { showError(form, err); }
    });
  });
  const qUser = h('input', {required: true, autocapitalize: 'none', spellcheck: 'false', autocomplete: 'off'});
  const qCPU = h('input', {type: 'number', min: 0, step: 0.1, inputmode: 'decimal', placeholder: 'no limit'});
  const qMem = h('input', {type: 'number', min: 0, step: 0.5, inputmode: 'decimal', placeholder: 'no limit'});
  const qGPUs = h('input', {type: 'number', min: 0, step: 1, inputmode: 'numeric', placeholder: 'no limit'});
  const qForm = h('form', {class: 'card quota-form', novalidate: true},
    h('h2', {}, 'Set a quota'),
    h('p', {class: 'muted'}, 'What one user\'s tasks may hold at once; tasks beyond it wait in the queue. Empty or 0 is no limit; saving replaces the whole quota.'),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    h('div', {class: 'row'}, field('user', 'Username', qUser), field('cpu', 'CPUs', qCPU), field('memory', 'Memory (GiB)', qMem), field('gpus', 'GPUs', qGPUs)),
    h('button', {type: 'submit', class: 'primary'}, 'Save quota'));
  qForm.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(qForm, async () => {
      try {
        const n = (el, scale) => { const v = el.value.trim(); return v === '' ? 0 : Math.round(Number(v) * scale); };
        const quota = {cpu: n(qCPU, 1000), memory: n(qMem, 1 << 30), gpus: n(qGPUs, 1)};
        const who = qUser.value.trim();
        if (!who) throw new APIError(400, 'user: which user?');
        await api('PATCH', '/users/' + encodeURIComponent(who), {quota});
        clearErrors(qForm); qForm.reset(); toast(`Quota of ${who} saved.`, 'ok'); load();
      } catch (err) { showError(qForm, err); }
    });
  });
  main.append(h('h1', {}, 'Users'), h('section', {class: 'card'}, list), form, qForm);
  load().catch((e) => list.replaceChildren(h('p', {class: 'error'}, e.message)));
}

function usageText(u) {
  if (!u || !u.tasks) return h('span', {class: 'muted'}, 'nothing');
  return `${u.tasks} task${u.tasks === 1 ? '' : 's'}: ${cpu(u.allocated.cpu)}, ${bytes(u.allocated.memory)}`;
}

function quotaText(q) {
  if (!q) return h('span', {class: 'muted'}, 'none');
  const parts = [];
  if (q.cpu) parts.push(cpu(q.cpu));
  if (q.memory) parts.push(bytes(q.memory));
  if (q.gpus) parts.push(`${q.gpus} GPU${q.gpus === 1 ? '' : 's'}`);
  return parts.join(', ');
}

// ---- nodes -------------------------------------------------------------------

function meter(used, total, fmt) {
  const pct = total ? Math.min(100, Math.round((used / total) * 100)) : 0;
  return h('div', {class: 'meter', title: `${fmt(used)} of ${fmt(total)} (${pct}%)`},
    h('div', {class: 'bar'}, h('span', {style: `width:${pct}%`})), h('small', {}, `${fmt(used)} / ${fmt(total)}`));
}

function inUse(v, fmt) {
  return v == null ? null : h('div', {class: 'muted small', title: 'what the machine uses now, measured on the node'}, `in use: ${fmt(v)}`);
}

// gpus shows a node's GPUs: how many are held, and each device as a chip
// that says whether it is free or how many tasks hold it.
function gpus(n) {
  const ds = n.devices || [];
  if (!ds.length) return '–';
  const held = ds.filter((d) => d.in_use > 0).length;
  return h('div', {class: 'gpus'}, h('small', {}, `${held} / ${ds.length} in use`),
    h('div', {class: 'labels'}, ds.map((d, i) => h('span', {
      class: `tag gpu ${d.in_use > 0 ? 'held' : 'free'}`, 'data-device': d.id,
      title: `GPU ${i} (${d.mode}${d.shareable ? ', shareable' : ''}): ` + (d.in_use > 0 ? `held by ${d.in_use} task${d.in_use === 1 ? '' : 's'}` : 'free'),
    }, `${i}: ${d.in_use > 0 ? 'in use' : 'free'}`))));
}

function nodesPage() {
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  const nodes = new Map();
  let votes = null;
  const ROLE_TITLE = {
    leader: 'leads the cluster: takes every write and places tasks',
    voter: 'votes: the cluster counts on it to stay writable',
    promoting: 'will vote once it has caught up (the cluster keeps an odd number of voters)',
    nonvoter: 'receives the log but does not vote: the cluster has the voters it keeps',
    worker: 'runs tasks; keeps no copy of the state',
  };
  const render = () => {
    if (!nodes.size) { body.replaceChildren(h('p', {class: 'empty'}, 'No nodes have registered yet.')); return; }
    const rows = [...nodes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => h('tr', {},
      h('td', {'data-label': 'Node'}, h('strong', {}, n.name), n.leader ? h('span', {class: 'tag'}, 'leader') : null, h('div', {class: 'muted small'}, n.addr),
        n.labels ? h('div', {class: 'labels'}, Object.keys(n.labels).sort().map((k) => h('span', {class: 'tag label', title: 'node label: jobs select it with a constraint'}, `${k}=${n.labels[k]}`))) : null),
      h('td', {'data-label': 'State'}, h('span', {class: `badge n-${n.state}`, title: n.drain_deadline ? 'tasks move elsewhere at ' + new Date(n.drain_deadline).toLocaleString() : ''},
        n.state === 'draining' && !n.running ? 'drained' : n.state)),
      h('td', {'data-label': 'Vote', class: 'role', 'data-role': n.role || ''}, n.role ? h('span', {class: `tag role-${n.role}`, title: ROLE_TITLE[n.role] || ''}, n.role) : '–'),
      h('td', {'data-label': 'CPU'}, meter(n.allocated.cpu, n.capacity.cpu, cpu), inUse(n.used && n.used.cpu, cpu)),
      h('td', {'data-label': 'Memory'}, meter(n.allocated.memory, n.capacity.memory, bytes), inUse(n.used && n.used.memory, bytes)),
      h('td', {'data-label': 'GPUs'}, gpus(n)),
      h('td', {'data-label': 'Running', class: 'num'}, String(n.running)),
      h('td', {'data-label': 'Joined'}, time(n.joined)),
      app.me.admin ? h('td', {class: 'right'}, n.state === 'ready'
        ? h('button', {class: 'small', onclick: () => setState(n.name, 'drain')}, 'Drain')
        : n.state === 'draining' ? h('button', {class: 'small', onclick: () => setState(n.name, 'ready')}, 'Make ready') : null) : null));
    body.replaceChildren(h('table', {class: 'cards'}, h('thead', {}, h('tr', {},
      h('th', {}, 'Node'), h('th', {}, 'State'), h('th', {}, 'Vote'), h('th', {}, 'CPU allocated · in use'), h('th', {}, 'Memory allocated · in use'), h('th', {}, 'GPUs'), h('th', {}, 'Running'), h('th', {}, 'Joined'), app.me.admin ? h('th', {}, '') : null)),
    h('tbody', {}, rows)),
    votes ? h('p', {class: 'muted tolerance', 'data-tolerance': String(votes.failure_tolerance)},
      `${votes.voters} voter${votes.voters === 1 ? '' : 's'}, ${votes.healthy_voters} healthy: the cluster stays writable with ${votes.failure_tolerance} of them down.`) : null);
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
  const off = app.live.on((m) => {
    if (m.type === 'open' || m.type === 'resync') load().catch(() => {});
    if (m.type === 'node') { nodes.set(m.node.name, {...nodes.get(m.node.name), ...m.node}); render(); }
  });
  main.append(h('h1', {}, 'Nodes'), h('p', {class: 'muted'}, 'Machines in this cluster, what they can run, what is allocated to tasks and what is in use now.'), body);
  load().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
  // Usage is measured, not replicated: refresh it while the page is open.
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => { clearInterval(timer); if (off) off(); };
}

// ---- images --------------------------------------------------------------------

function imagesPage() {
  const host = location.host;
  const user = app.me.name;
  const cmds = [
    ['Sign in to the registry (use your password or an API token)', `docker login ${host} -u ${user}`],
    ['Tag a local image for this registry', `docker tag myimage:latest ${host}/${user}/myimage:latest`],
    ['Push it', `docker push ${host}/${user}/myimage:latest`],
    ['Then run it as a job', `gantry run ${user}/myimage:latest -- ARGS`],
  ];
  const list = h('div', {});
  main.append(h('h1', {}, 'Images'),
    h('p', {}, 'Gantry includes an image registry at ', h('code', {}, `${host}/v2/`), '. Push with the ordinary docker, skopeo or crane clients; your repositories are private to you. Every installation already has ', h('code', {}, 'gantry/toolbox:latest'), ' for smoke tests.'),
    h('section', {class: 'card'}, h('h2', {}, 'Push an image'),
      h('ol', {class: 'steps'}, cmds.map(([what, cmd]) => h('li', {}, h('div', {}, what), h('div', {class: 'cmd'}, h('code', {}, cmd), copyButton(cmd)))))),
    h('p', {class: 'muted small'}, 'If Docker refuses a plain-HTTP registry, add ', h('code', {}, host), ' to "insecure-registries" in /etc/docker/daemon.json, or serve Gantry over HTTPS.'),
    list);
  get('/images').then((r) => {
    const repos = r.repositories || [];
    if (!repos.length) { list.replaceChildren(h('p', {class: 'empty'}, 'You have no repositories yet. Push one with the commands above.')); return; }
    const tagText = (x) => (x.tags || []).map((t) => t.tag).join(', ') || '(untagged)';
    list.replaceChildren(
      h('h2', {}, 'Repositories'),
      h('p', {class: 'muted small'}, `Your storage: ${bytes(r.usage || 0)}`),
      h('table', {class: 'cards'}, h('thead', {}, h('tr', {}, h('th', {}, 'Repository'), h('th', {}, 'Tags'), h('th', {}, 'Licence'), h('th', {}, 'Size'), h('th', {}, 'Last push'), h('th', {}, ''))),
        h('tbody', {}, repos.map((x) => h('tr', {'data-repo': x.name},
          h('td', {'data-label': 'Repository'}, h('code', {}, x.name), x.genai ? [' ', genaiTag()] : null),
          h('td', {'data-label': 'Tags'}, tagText(x)),
          h('td', {'data-label': 'Licence', class: 'licence'},
            x.published ? [h('a', {href: `/catalog/${x.name}`}, x.published.licence.expression), ` (in the catalog, ${x.published.access})`] : 'private',
            (x.notices || []).map((n) => h('div', {class: 'notice small'}, 'Built on ', h('a', {href: `/catalog/${n.base}`}, n.base),
              `: ${n.licence.expression}; only ${n.base_owner} can remove this notice.`))),
          h('td', {'data-label': 'Size'}, bytes(x.size || 0)),
          h('td', {'data-label': 'Last push'}, x.last_push ? time(x.last_push) : '-'),
          h('td', {class: 'right'}, x.owner === user ? h('button', {class: 'small publish', onclick: () => {
            const box = document.getElementById('publish-box');
            box.replaceChildren(publishForm(app, x.name, (repo) => go(`/catalog/${repo}`)));
            box.scrollIntoView();
          }}, x.published ? 'Update publication…' : 'Publish…') : null))))),
      h('div', {id: 'publish-box'}));
    refreshTimes(list);
  }).catch((e) => list.replaceChildren(h('p', {class: 'error'}, e.message)));
}

// ---- start -----------------------------------------------------------------------

(async () => {
  try {
    signedIn(await get('/me'));
  } catch (e) {
    if (e.status !== 401) { main.replaceChildren(h('p', {class: 'error'}, e.message)); return; }
  }
  route();
})();
