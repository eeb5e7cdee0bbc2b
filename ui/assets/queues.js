// The queues page: each queue's weight, guaranteed share, borrowing, limit,
// what it holds and what waits in it; an admin creates, changes and removes
// queues here.
import {h, cpu, bytes, toast} from './util.js';
import {api, get, post} from './api.js';
import {field, showError, busy} from './app.js';

const pct = (x) => `${Math.round(100 * x)}%`;

function limitText(l) {
  if (!l || (!l.cpu && !l.memory && !l.gpus)) return '—';
  return [l.cpu ? cpu(l.cpu) : null, l.memory ? bytes(l.memory) : null, l.gpus ? `${l.gpus} GPU` : null].filter(Boolean).join(', ');
}

export function queuesPage(app) {
  const main = document.getElementById('main');
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  let queues = [];
  const render = () => {
    const held = (q) => q.usage && q.usage.allocated ? q.usage.allocated.cpu : 0;
    const rows = queues.map((q) => h('tr', {'data-queue': q.name},
      h('td', {'data-label': 'Queue'}, h('strong', {}, q.name),
        q.users && q.users.length ? h('div', {class: 'muted small'}, 'for ' + q.users.join(', ')) : null,
        q.constraints && Object.keys(q.constraints).length ? h('div', {class: 'muted small'}, 'on ' + Object.entries(q.constraints).map(([k, v]) => `${k}=${v}`).join(', ')) : null),
      h('td', {'data-label': 'Weight', class: 'num weight'}, String(q.weight)),
      h('td', {'data-label': 'Guaranteed', class: 'num guaranteed'},
        h('div', {class: 'progress', title: `guaranteed ${pct(q.guaranteed)} of the cluster`},
          h('div', {class: 'bar', 'aria-hidden': 'true'}, h('span', {style: `width:${Math.min(100, 100 * q.guaranteed)}%`})), h('span', {class: 'count'}, pct(q.guaranteed)))),
      h('td', {'data-label': 'Borrows'}, q.borrow ? 'yes' : 'no'),
      h('td', {'data-label': 'Limit'}, limitText(q.limit)),
      h('td', {'data-label': 'Running', class: 'num running'}, `${q.usage ? q.usage.tasks : 0} (${cpu(held(q))})`),
      h('td', {'data-label': 'Queued', class: 'num queued'}, String(q.queued)),
      h('td', {'data-label': 'Placement'}, q.placement),
      h('td', {'data-label': 'Grace', class: 'num'}, q.grace || '30s'),
      app.me.admin ? h('td', {class: 'right'},
        h('button', {class: 'small', onclick: () => edit(q)}, 'Weight…'), ' ',
        q.name !== 'default' ? h('button', {class: 'small danger', onclick: () => remove(q)}, 'Remove') : null) : null));
    body.replaceChildren(h('table', {class: 'cards queues'}, h('thead', {}, h('tr', {},
      ...['Queue', 'Weight', 'Guaranteed', 'Borrows', 'Limit', 'Running', 'Queued', 'Placement', 'Grace'].map((x) => h('th', {}, x)),
      app.me.admin ? h('th', {}, '') : null)), h('tbody', {}, rows)));
  };
  const load = async () => { queues = (await get('/queues')).queues; render(); };
  const edit = async (q) => {
    const w = prompt(`New weight of queue ${q.name} (now ${q.weight}):`, String(q.weight));
    if (w == null) return;
    try { await api('PATCH', `/queues/${encodeURIComponent(q.name)}`, {weight: Number(w)}); await load(); } catch (e) { toast(e.message); }
  };
  const remove = async (q) => {
    if (!confirm(`Remove the queue "${q.name}"? Only a queue with no queued or running task can be removed.`)) return;
    try { await api('DELETE', `/queues/${encodeURIComponent(q.name)}`); await load(); } catch (e) { toast(e.message); }
  };
  main.append(h('h1', {}, 'Queues'), h('p', {class: 'muted'},
    'A queue is guaranteed its weight over the sum of all weights. A queue that borrows uses idle capacity beyond that; ' +
    'what it borrowed is taken back, by preemption, when a queue under its guarantee needs it.'), body);
  if (app.me.admin) main.append(createForm(load));
  load().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => clearInterval(timer);
}

function createForm(reload) {
  const i = (attrs) => h('input', attrs);
  const name = i({required: true, placeholder: 'e.g. gpu', autocapitalize: 'none', pattern: '[a-z][a-z0-9-]*'});
  const weight = i({type: 'number', min: 0.01, step: 'any', value: 1, inputmode: 'decimal'});
  const borrow = i({type: 'checkbox'});
  const limitCPU = i({type: 'number', min: 0, step: 'any', placeholder: 'no limit', inputmode: 'decimal'});
  const users = i({placeholder: 'everyone', autocapitalize: 'none'});
  const priority = i({type: 'number', min: -1000, max: 1000, value: 0, inputmode: 'numeric'});
  const grace = i({placeholder: '30s', autocapitalize: 'none'});
  const placement = h('select', {}, h('option', {value: 'spread'}, 'spread'), h('option', {value: 'pack'}, 'pack'));
  borrow.id = 'f-borrow';
  const form = h('form', {class: 'card create-queue', novalidate: true},
    h('h2', {}, 'New queue'),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    h('div', {class: 'row'}, field('name', 'Name', name), field('weight', 'Weight', weight, 'Its share when queues compete.'),
      field('limit', 'CPU limit', limitCPU, 'CPUs its tasks may hold at once.')),
    h('div', {class: 'row'}, field('users', 'Users', users, 'Comma-separated; empty: everyone.'), field('priority', 'Default priority', priority),
      field('grace', 'Preemption grace', grace, 'SIGTERM, then SIGKILL after this.'), field('placement', 'Placement', placement, 'Pack fills nodes, keeping whole ones free.')),
    h('label', {class: 'check', for: 'f-borrow'}, borrow, ' Borrow idle capacity beyond its guarantee'),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Create queue')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const req = {name: name.value.trim(), weight: Number(weight.value), borrow: borrow.checked, priority: Number(priority.value) || 0, placement: placement.value};
    if (limitCPU.value.trim()) req.limit = {cpu: Math.round(Number(limitCPU.value) * 1000), memory: 0};
    if (users.value.trim()) req.users = users.value.split(',').map((u) => u.trim()).filter(Boolean);
    if (grace.value.trim()) req.grace = grace.value.trim();
    await busy(form, async () => {
      try { await post('/queues', req); form.reset(); await reload(); } catch (err) { showError(form, err); }
    });
  });
  return form;
}
