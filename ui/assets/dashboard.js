// The dashboard: the cluster's CPU, memory and GPUs (allocated against
// used), the queue and task rates, usage against quota (a user's own; an
// admin's, every user's) and each node's load, over the last hour or day.
// It polls /stats/history at the node's sampling interval: the history
// changes only when a sample is taken.
import {h, cpu, bytes, toast} from './util.js';
import {get} from './api.js';
import {LineChart, niceBytes} from './chart.js';

const short = (v) => String(v >= 100 ? Math.round(v) : +v.toFixed(2));
const cpus = (m) => short(m / 1000);
const count = short;
const PALETTE = 8;

export function dashboardPage(app) {
  const main = document.getElementById('main');
  let win = new URLSearchParams(location.search).get('window') === '1d' ? '1d' : '1h';
  let timer = null, data = null, gen = 0;
  const charts = [];
  const chart = (id, title, format) => { const c = new LineChart({id, title, format, nice: format === bytes ? niceBytes : undefined}); charts.push(c); return c; };

  const cpuC = chart('cpu', 'CPU (cores): allocated to tasks, used by the machines, capacity', cpus);
  const memC = chart('memory', 'Memory: allocated to tasks, used by the machines, capacity', bytes);
  const gpuC = chart('gpu', 'GPUs: allocated to tasks and capacity (use is not measured)', count);
  const queueC = chart('queue', 'Tasks queued and running', count);
  const rateC = chart('rate', 'Tasks started and finished per minute', count);
  const userCPU = chart('user-cpu', app.me.admin ? 'CPU held by each user (cores)' : 'Your CPU against your quota (cores)', cpus);
  const userMem = chart('user-memory', app.me.admin ? 'Memory held by each user' : 'Your memory against your quota', bytes);
  const nodeCPU = chart('node-cpu', 'CPU allocated on each node (cores)', cpus);
  const nodeUsed = chart('node-used', 'CPU used by each node\'s machine (cores)', cpus);

  const quotaBox = h('div', {class: 'quota-table'});
  const status = h('p', {class: 'muted small', id: 'dash-status', role: 'status'});
  const switcher = h('div', {class: 'segmented', role: 'group', 'aria-label': 'Time window'},
    ...[['1h', 'Last hour'], ['1d', 'Last day']].map(([w, label]) => h('button', {type: 'button', class: 'small', dataset: {window: w},
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
    cpuC.update(d.times, [
      {key: 'cpu_capacity', label: 'capacity', cls: 'k-cap', values: col(c, 'cpu_capacity')},
      {key: 'cpu_allocated', label: 'allocated', cls: 'k-alloc', area: true, values: col(c, 'cpu_allocated')},
      {key: 'cpu_used', label: 'used', cls: 'k-used', values: col(c, 'cpu_used')}]);
    memC.update(d.times, [
      {key: 'memory_capacity', label: 'capacity', cls: 'k-cap', values: col(c, 'memory_capacity')},
      {key: 'memory_allocated', label: 'allocated', cls: 'k-alloc', area: true, values: col(c, 'memory_allocated')},
      {key: 'memory_used', label: 'used', cls: 'k-used', values: col(c, 'memory_used')}]);
    gpuC.update(d.times, [
      {key: 'gpu_capacity', label: 'capacity', cls: 'k-cap', values: col(c, 'gpu_capacity')},
      {key: 'gpu_allocated', label: 'allocated', cls: 'k-alloc', area: true, values: col(c, 'gpu_allocated')}]);
    queueC.update(d.times, [
      {key: 'queue_depth', label: 'queued', cls: 'k-queue', values: col(c, 'queue_depth')},
      {key: 'running', label: 'running', cls: 'k-alloc', values: col(c, 'running')}]);
    rateC.update(d.times, [
      {key: 'started_per_min', label: 'started', cls: 'k-alloc', values: col(c, 'started_per_min')},
      {key: 'finished_per_min', label: 'finished', cls: 'k-done', values: col(c, 'finished_per_min')}]);
    const users = d.users || [];
    if (app.me.admin) {
      userCPU.update(d.times, users.map((u, i) => ({key: `user:${u.name}`, label: u.name, cls: `p${i % PALETTE}`, values: col(u.series, 'cpu')})));
      userMem.update(d.times, users.map((u, i) => ({key: `user:${u.name}`, label: u.name, cls: `p${i % PALETTE}`, values: col(u.series, 'memory')})));
    } else {
      const me = users.find((u) => u.name === app.me.name);
      userCPU.update(d.times, [{key: 'cpu', label: 'held', cls: 'k-alloc', area: true, values: col(me?.series, 'cpu')},
        {key: 'cpu_quota', label: 'quota', cls: 'k-cap', values: col(me?.series, 'cpu_quota').map((v) => v || null)}]);
      userMem.update(d.times, [{key: 'memory', label: 'held', cls: 'k-alloc', area: true, values: col(me?.series, 'memory')},
        {key: 'memory_quota', label: 'quota', cls: 'k-cap', values: col(me?.series, 'memory_quota').map((v) => v || null)}]);
    }
    const last = (xs) => { for (let i = xs.length - 1; i >= 0; i--) if (xs[i] !== null) return xs[i]; return null; };
    quotaBox.replaceChildren(users.length ? h('table', {class: 'cards quotas'}, h('thead', {}, h('tr', {}, ['User', 'CPU', 'Memory', 'Tasks'].map((x) => h('th', {}, x)))),
      h('tbody', {}, users.map((u) => {
        const q = (k, f) => { const v = last(col(u.series, k)), qv = last(col(u.series, k + '_quota')); return `${v === null ? '—' : f(v)} of ${qv ? f(qv) : 'no limit'}`; };
        return h('tr', {dataset: {user: u.name}}, h('td', {'data-label': 'User'}, u.name), h('td', {'data-label': 'CPU'}, q('cpu', cpu)),
          h('td', {'data-label': 'Memory'}, q('memory', bytes)), h('td', {'data-label': 'Tasks', class: 'num'}, count(last(col(u.series, 'tasks')) || 0)));
      }))) : h('p', {class: 'muted small'}, app.me.admin ? 'No user holds anything or has a quota.' : 'You hold nothing and have no quota.'));
    const nodes = d.nodes || [];
    nodeCPU.update(d.times, nodes.map((n, i) => ({key: `node:${n.name}`, label: n.name, cls: `p${i % PALETTE}`, values: col(n.series, 'cpu_allocated')})));
    nodeUsed.update(d.times, nodes.map((n, i) => ({key: `node:${n.name}`, label: n.name, cls: `p${i % PALETTE}`, values: col(n.series, 'cpu_used')})));
    main.dataset.lastTime = d.times.length ? String(d.times[d.times.length - 1]) : '';
    main.dataset.window = d.window;
    status.textContent = d.times.length
      ? `${d.times.length} points, one every ${d.step_seconds >= 60 ? Math.round(d.step_seconds / 60) + ' min' : d.step_seconds + ' s'}, as node ${d.node} sampled them; updated ${new Date(d.times[d.times.length - 1]).toLocaleTimeString()}.`
      : `No samples yet: node ${d.node} takes one every ${d.interval_seconds} s.`;
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
    if (g === gen) timer = setTimeout(load, Math.max(1, (data?.interval_seconds || 10)) * 1000);
  };

  const card = (title, ...kids) => h('section', {class: 'card'}, h('h2', {}, title), ...kids);
  main.append(h('div', {class: 'head'}, h('h1', {}, 'Dashboard'), switcher), status,
    card('Cluster', h('div', {class: 'charts'}, cpuC.el, memC.el, gpuC.el)),
    card('Work', h('div', {class: 'charts'}, queueC.el, rateC.el)),
    card(app.me.admin ? 'Usage by user' : 'Your usage', h('div', {class: 'charts'}, userCPU.el, userMem.el), quotaBox),
    card('Nodes', h('div', {class: 'charts'}, nodeCPU.el, nodeUsed.el)));
  load();
  return () => { gen++; clearTimeout(timer); for (const c of charts) c.dispose(); };
}
