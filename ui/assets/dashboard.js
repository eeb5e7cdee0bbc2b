// The dashboard: the cluster's CPU, memory and GPUs (allocated against
// used), the queue and task rates, usage against quota (a user's own; an
// admin's, every user's) and each node's load, over the last hour or day.
// It polls /stats/history at the node's sampling interval: the history
// changes only when a sample is taken.
import {h, cpu, bytes, toast} from './util.js';
import {t, num, clock} from './i18n.js';
import {get} from './api.js';
import {LineChart, niceBytes} from './chart.js';

const short = (v) => num(v >= 100 ? Math.round(v) : +v.toFixed(2));
const cpus = (m) => short(m / 1000);
const count = short;
const PALETTE = 8;

export function dashboardPage(app) {
  const main = document.getElementById('main');
  let win = new URLSearchParams(location.search).get('window') === '1d' ? '1d' : '1h';
  let timer = null, data = null, gen = 0;
  const charts = [];
  const chart = (id, title, format) => { const c = new LineChart({id, title, format, nice: format === bytes ? niceBytes : undefined}); charts.push(c); return c; };

  const cpuC = chart('cpu', t('dash.chart.cpu'), cpus);
  const memC = chart('memory', t('dash.chart.memory'), bytes);
  const gpuC = chart('gpu', t('dash.chart.gpu'), count);
  const queueC = chart('queue', t('dash.chart.queue'), count);
  const rateC = chart('rate', t('dash.chart.rate'), count);
  const userCPU = chart('user-cpu', app.me.admin ? t('dash.chart.usercpu.admin') : t('dash.chart.usercpu'), cpus);
  const userMem = chart('user-memory', app.me.admin ? t('dash.chart.usermem.admin') : t('dash.chart.usermem'), bytes);
  const nodeCPU = chart('node-cpu', t('dash.chart.nodecpu'), cpus);
  const nodeUsed = chart('node-used', t('dash.chart.nodeused'), cpus);

  const quotaBox = h('div', {class: 'quota-table'});
  const status = h('p', {class: 'muted small', id: 'dash-status', role: 'status'});
  const switcher = h('div', {class: 'segmented', role: 'group', 'aria-label': t('dash.window')},
    ...[['1h', t('dash.window.hour')], ['1d', t('dash.window.day')]].map(([w, label]) => h('button', {type: 'button', class: 'small', dataset: {window: w},
      'aria-pressed': String(w === win), onclick: () => setWindow(w)}, label)));

  const setWindow = (w) => {
    win = w;
    history.replaceState(null, '', w === '1h' ? '/dashboard' : '/dashboard?window=1d');
    for (const b of switcher.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.window === w));
    load();
  };

  const col = (series, key) => (series && series[key]) || [];
  const render = () => {
    const d = data, c = d.cluster;
    const L = {capacity: t('dash.s.capacity'), allocated: t('dash.s.allocated'), used: t('dash.s.used'), queued: t('dash.s.queued'), running: t('dash.s.running'),
      started: t('dash.s.started'), finished: t('dash.s.finished'), held: t('dash.s.held'), quota: t('dash.s.quota')};
    cpuC.update(d.times, [
      {key: 'cpu_capacity', label: L.capacity, cls: 'k-cap', values: col(c, 'cpu_capacity')},
      {key: 'cpu_allocated', label: L.allocated, cls: 'k-alloc', area: true, values: col(c, 'cpu_allocated')},
      {key: 'cpu_used', label: L.used, cls: 'k-used', values: col(c, 'cpu_used')}]);
    memC.update(d.times, [
      {key: 'memory_capacity', label: L.capacity, cls: 'k-cap', values: col(c, 'memory_capacity')},
      {key: 'memory_allocated', label: L.allocated, cls: 'k-alloc', area: true, values: col(c, 'memory_allocated')},
      {key: 'memory_used', label: L.used, cls: 'k-used', values: col(c, 'memory_used')}]);
    gpuC.update(d.times, [
      {key: 'gpu_capacity', label: L.capacity, cls: 'k-cap', values: col(c, 'gpu_capacity')},
      {key: 'gpu_allocated', label: L.allocated, cls: 'k-alloc', area: true, values: col(c, 'gpu_allocated')}]);
    queueC.update(d.times, [
      {key: 'queue_depth', label: L.queued, cls: 'k-queue', values: col(c, 'queue_depth')},
      {key: 'running', label: L.running, cls: 'k-alloc', values: col(c, 'running')}]);
    rateC.update(d.times, [
      {key: 'started_per_min', label: L.started, cls: 'k-alloc', values: col(c, 'started_per_min')},
      {key: 'finished_per_min', label: L.finished, cls: 'k-done', values: col(c, 'finished_per_min')}]);
    const users = d.users || [];
    if (app.me.admin) {
      userCPU.update(d.times, users.map((u, i) => ({key: `user:${u.name}`, label: u.name, cls: `p${i % PALETTE}`, values: col(u.series, 'cpu')})));
      userMem.update(d.times, users.map((u, i) => ({key: `user:${u.name}`, label: u.name, cls: `p${i % PALETTE}`, values: col(u.series, 'memory')})));
    } else {
      const me = users.find((u) => u.name === app.me.name);
      userCPU.update(d.times, [{key: 'cpu', label: L.held, cls: 'k-alloc', area: true, values: col(me?.series, 'cpu')},
        {key: 'cpu_quota', label: L.quota, cls: 'k-cap', values: col(me?.series, 'cpu_quota').map((v) => v || null)}]);
      userMem.update(d.times, [{key: 'memory', label: L.held, cls: 'k-alloc', area: true, values: col(me?.series, 'memory')},
        {key: 'memory_quota', label: L.quota, cls: 'k-cap', values: col(me?.series, 'memory_quota').map((v) => v || null)}]);
    }
    const last = (xs) => { for (let i = xs.length - 1; i >= 0; i--) if (xs[i] !== null) return xs[i]; return null; };
    const hd = {user: t('users.col.user'), cpu: t('nodes.col.cpu'), memory: t('nodes.col.memory'), tasks: t('job.tasks')};
    quotaBox.replaceChildren(users.length ? h('table', {class: 'cards quotas'}, h('thead', {}, h('tr', {}, [hd.user, hd.cpu, hd.memory, hd.tasks].map((x) => h('th', {}, x)))),
      h('tbody', {}, users.map((u) => {
        const q = (k, f) => { const v = last(col(u.series, k)), qv = last(col(u.series, k + '_quota')); return t('dash.quota.of', {v: v === null ? '—' : f(v), quota: qv ? f(qv) : t('common.nolimit')}); };
        return h('tr', {dataset: {user: u.name}}, h('td', {'data-label': hd.user}, u.name), h('td', {'data-label': hd.cpu}, q('cpu', cpu)),
          h('td', {'data-label': hd.memory}, q('memory', bytes)), h('td', {'data-label': hd.tasks, class: 'num'}, count(last(col(u.series, 'tasks')) || 0)));
      }))) : h('p', {class: 'muted small'}, app.me.admin ? t('dash.quota.none.admin') : t('dash.quota.none')));
    const nodes = d.nodes || [];
    nodeCPU.update(d.times, nodes.map((n, i) => ({key: `node:${n.name}`, label: n.name, cls: `p${i % PALETTE}`, values: col(n.series, 'cpu_allocated')})));
    nodeUsed.update(d.times, nodes.map((n, i) => ({key: `node:${n.name}`, label: n.name, cls: `p${i % PALETTE}`, values: col(n.series, 'cpu_used')})));
    main.dataset.lastTime = d.times.length ? String(d.times[d.times.length - 1]) : '';
    main.dataset.window = d.window;
    status.textContent = d.times.length
      ? t('dash.status', {n: d.times.length, step: d.step_seconds >= 60 ? t('dash.step.min', {n: Math.round(d.step_seconds / 60)}) : t('dash.step.s', {n: d.step_seconds}),
        node: d.node, at: clock(d.times[d.times.length - 1], true)})
      : t('dash.status.none', {node: d.node, n: d.interval_seconds});
  };

  const load = async () => {
    const g = ++gen;
    clearTimeout(timer);
    try {
      const d = await get(`/stats/history?window=${win}`);
      if (g !== gen) return;
      data = d;
      render();
    } catch (e) { if (g === gen) toast(e.message); }
    // The live channel says when the node takes a sample ("stats"); the
    // timer is only a fallback while it is down.
    if (g === gen) timer = setTimeout(load, (app.live.connected ? 6 : 1) * Math.max(1, (data?.interval_seconds || 10)) * 1000);
  };
  const off = app.live.on((m) => { if (m.type === 'stats' || m.type === 'resync') load(); });

  const card = (title, ...kids) => h('section', {class: 'card'}, h('h2', {}, title), ...kids);
  main.append(h('div', {class: 'head'}, h('h1', {}, t('dash.title')), switcher), status,
    card(t('dash.card.cluster'), h('div', {class: 'charts'}, cpuC.el, memC.el, gpuC.el)),
    card(t('dash.card.work'), h('div', {class: 'charts'}, queueC.el, rateC.el)),
    card(app.me.admin ? t('dash.card.users.admin') : t('dash.card.users'), h('div', {class: 'charts'}, userCPU.el, userMem.el), quotaBox),
    card(t('nodes.title'), h('div', {class: 'charts'}, nodeCPU.el, nodeUsed.el)));
  load();
  return () => { gen++; off(); clearTimeout(timer); for (const c of charts) c.dispose(); };
}
