// The queues page: each queue's weight, guaranteed share, borrowing, limit,
// what it holds and what waits in it; an admin creates, changes and removes
// queues here.
import {h, cpu, bytes, toast} from './util.js';
import {t, tk, num} from './i18n.js';
import {api, get, post} from './api.js';
import {field, showError, busy} from './app.js';

const pct = (x) => num(x, {style: 'percent', maximumFractionDigits: 0});

function limitText(l) {
  if (!l || (!l.cpu && !l.memory && !l.gpus)) return '—';
  return [l.cpu ? cpu(l.cpu) : null, l.memory ? bytes(l.memory) : null, l.gpus ? t('unit.gpus', {n: l.gpus}) : null].filter(Boolean).join(', ');
}

const PLACEMENT = {spread: tk('queues.placement.spread'), pack: tk('queues.placement.pack')};
const placementText = (p) => PLACEMENT[p] ? t(PLACEMENT[p]) : p;

export function queuesPage(app) {
  const main = document.getElementById('main');
  const body = h('div', {}, h('p', {class: 'muted'}, t('common.loading')));
  let queues = [];
  const render = () => {
    const held = (q) => q.usage && q.usage.allocated ? q.usage.allocated.cpu : 0;
    const col = {queue: t('jobs.col.queue'), weight: t('queues.col.weight'), guaranteed: t('queues.col.guaranteed'), borrows: t('queues.col.borrows'), limit: t('queues.col.limit'),
      running: t('nodes.col.running'), queued: t('queues.col.queued'), placement: t('queues.col.placement'), grace: t('queues.col.grace')};
    const rows = queues.map((q) => h('tr', {'data-queue': q.name},
      h('td', {'data-label': col.queue}, h('strong', {}, q.name),
        q.users && q.users.length ? h('div', {class: 'muted small'}, t('queues.for', {users: q.users.join(', ')})) : null,
        q.constraints && Object.keys(q.constraints).length ? h('div', {class: 'muted small'}, t('queues.on', {labels: Object.entries(q.constraints).map(([k, v]) => `${k}=${v}`).join(', ')})) : null),
      h('td', {'data-label': col.weight, class: 'num weight'}, num(q.weight)),
      h('td', {'data-label': col.guaranteed, class: 'num guaranteed'},
        h('div', {class: 'progress', title: t('queues.guaranteed.title', {pct: pct(q.guaranteed)})},
          h('div', {class: 'bar', 'aria-hidden': 'true'}, h('span', {style: `width:${Math.min(100, 100 * q.guaranteed)}%`})), h('span', {class: 'count'}, pct(q.guaranteed)))),
      h('td', {'data-label': col.borrows}, q.borrow ? t('common.yes') : t('common.no')),
      h('td', {'data-label': col.limit}, limitText(q.limit)),
      h('td', {'data-label': col.running, class: 'num running'}, `${num(q.usage ? q.usage.tasks : 0)} (${cpu(held(q))})`),
      h('td', {'data-label': col.queued, class: 'num queued'}, num(q.queued)),
      h('td', {'data-label': col.placement}, placementText(q.placement)),
      h('td', {'data-label': col.grace, class: 'num'}, q.grace || '30s'),
      app.me.admin ? h('td', {class: 'right'},
        h('button', {class: 'small', onclick: () => edit(q)}, t('queues.weight.edit')), ' ',
        q.name !== 'default' ? h('button', {class: 'small danger', onclick: () => remove(q)}, t('common.remove')) : null) : null));
    body.replaceChildren(h('table', {class: 'cards queues'}, h('thead', {}, h('tr', {},
      ...[col.queue, col.weight, col.guaranteed, col.borrows, col.limit, col.running, col.queued, col.placement, col.grace].map((x) => h('th', {}, x)),
      app.me.admin ? h('th', {}, '') : null)), h('tbody', {}, rows)));
  };
  const load = async () => { queues = (await get('/queues')).queues; render(); };
  const edit = async (q) => {
    const w = prompt(t('queues.weight.prompt', {name: q.name, weight: q.weight}), String(q.weight));
    if (w == null) return;
    try { await api('PATCH', `/queues/${encodeURIComponent(q.name)}`, {weight: Number(w)}); await load(); } catch (e) { toast(e.message); }
  };
  const remove = async (q) => {
    if (!confirm(t('queues.remove.confirm', {name: q.name}))) return;
    try { await api('DELETE', `/queues/${encodeURIComponent(q.name)}`); await load(); } catch (e) { toast(e.message); }
  };
  main.append(h('h1', {}, t('queues.title')), h('p', {class: 'muted'}, t('queues.intro')), body);
  if (app.me.admin) main.append(createForm(load));
  load().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
  // A queue's usage and waiting tasks change as tasks are placed and end:
  // read them again after task and job events (at most once a second), and
  // at each sample of the node's history (queues others change send none).
  let soon = null;
  const off = app.live.on((m) => {
    if (m.type === 'open' || m.type === 'resync' || m.type === 'stats') load().catch(() => {});
    if ((m.type === 'task' || m.type === 'job') && !soon) soon = setTimeout(() => { soon = null; load().catch(() => {}); }, 1000);
  });
  return () => { off(); clearTimeout(soon); };
}

function createForm(reload) {
  const i = (attrs) => h('input', attrs);
  const name = i({required: true, placeholder: t('queues.name.placeholder'), autocapitalize: 'none', pattern: '[a-z][a-z0-9-]*'});
  const weight = i({type: 'number', min: 0.01, step: 'any', value: 1, inputmode: 'decimal'});
  const borrow = i({type: 'checkbox'});
  const limitCPU = i({type: 'number', min: 0, step: 'any', placeholder: t('common.nolimit'), inputmode: 'decimal'});
  const users = i({placeholder: t('queues.users.placeholder'), autocapitalize: 'none'});
  const priority = i({type: 'number', min: -1000, max: 1000, value: 0, inputmode: 'numeric'});
  const grace = i({placeholder: '30s', autocapitalize: 'none'});
  const placement = h('select', {}, h('option', {value: 'spread'}, placementText('spread')), h('option', {value: 'pack'}, placementText('pack')));
  borrow.id = 'f-borrow';
  const form = h('form', {class: 'card create-queue', novalidate: true},
    h('h2', {}, t('queues.create.title')),
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    h('div', {class: 'row'}, field('name', t('submit.name'), name), field('weight', t('queues.col.weight'), weight, t('queues.weight.hint')),
      field('limit', t('queues.limit'), limitCPU, t('queues.limit.hint'))),
    h('div', {class: 'row'}, field('users', t('users.title'), users, t('queues.users.hint')), field('priority', t('queues.priority'), priority),
      field('grace', t('queues.grace'), grace, t('queues.grace.hint')), field('placement', t('queues.col.placement'), placement, t('queues.placement.hint'))),
    h('label', {class: 'check', for: 'f-borrow'}, borrow, ' ', t('queues.borrow')),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, t('queues.create.submit'))));
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
