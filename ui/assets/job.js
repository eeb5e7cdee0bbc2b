// Job detail: summary, spec, the task grid, a task's attempts and its live log.
import {h, time, badge, dur, jobDuration, terminal, toast, cpu, bytes, stateText, reasonText, STATES} from './util.js';
import {t, tp, tk} from './i18n.js';
import {get, post} from './api.js';
import {Synced} from './live.js';
import {LogView} from './logview.js';
import {genaiTag} from './catalog.js';
import {Timeline} from './chart.js';

const COLORS = {queued: '--c-queued', scheduled: '--c-scheduled', running: '--c-running', succeeded: '--c-succeeded', failed: '--c-failed', cancelled: '--c-cancelled'};
const KIND_TITLES = {
  afterok: tk('deps.kind.afterok'),
  afternotok: tk('deps.kind.afternotok'),
  afterany: tk('deps.kind.afterany'),
  'n-to-n': tk('deps.kind.n-to-n'),
};
const RANK = {queued: 0, scheduled: 1, running: 2, succeeded: 3, failed: 3, cancelled: 3};

/** jobPage shows job id; task selects a task (null: none, or the only one). */
export function jobPage(app, id, task) {
  const main = document.getElementById('main');
  let job = null;
  let tasks = []; // index -> Task
  let selected = task;
  let waiting = ''; // why queued tasks wait: computed by the server on GET, refreshed while any wait
  const header = h('div', {class: 'head'});
  const summary = h('div', {class: 'summary'});
  const spec = h('details', {class: 'card spec'});
  const gridBox = h('section', {class: 'card'});
  const depsBox = h('section', {class: 'card deps', id: 'deps', hidden: true});
  const taskBox = h('section', {class: 'card task', hidden: true});
  // An array's timeline of attempts, reloaded at most every 2 s while
  // task events arrive.
  const timelineBox = h('section', {class: 'card', id: 'timeline', hidden: true});
  // What the tasks left in their --output directory: a row per task with
  // its download (one tar), reloaded at most every 2 s while tasks end.
  const outputsBox = h('section', {class: 'card outputs', id: 'outputs', hidden: true});
  let outTimer = null, outGen = 0;
  const OUTPUT_ROWS = 200;
  const loadOutputs = async () => {
    if (!job || !job.spec.output) return;
    const gen = ++outGen;
    const all = [];
    let cursor = '';
    try {
      do {
        const r = await get(`/jobs/${id}/outputs` + (cursor ? `?cursor=${cursor}` : ''));
        all.push(...r.outputs);
        cursor = r.next;
      } while (cursor && all.length < OUTPUT_ROWS);
    } catch { return; /* the page goes on without it */ }
    if (gen !== outGen) return;
    outputsBox.hidden = false;
    const o = job.spec.output;
    const col = {task: t('outputs.col.task'), files: t('outputs.col.files'), size: t('common.size'), digest: t('outputs.col.digest')};
    const rows = all.slice(0, OUTPUT_ROWS).map((x) => h('tr', {},
      h('td', {'data-label': col.task, class: 'num'}, h('a', {href: `/jobs/${id}/tasks/${x.task}`, onclick: (e) => { e.preventDefault(); selectTask(x.task); }}, String(x.task))),
      h('td', {'data-label': col.files, class: 'num'}, String(x.files)),
      h('td', {'data-label': col.size, class: 'num'}, bytes(x.bytes)),
      h('td', {'data-label': col.digest, class: 'mono small', title: x.ref}, x.digest.replace('sha256:', '').slice(0, 12)),
      h('td', {}, h('a', {class: 'button small', href: `/api/v1/jobs/${id}/tasks/${x.task}/output`, download: `${id.toLowerCase()}-task-${String(x.task).padStart(4, '0')}-output.tar`}, t('outputs.download')))));
    outputsBox.replaceChildren(
      h('div', {class: 'head'}, h('h2', {}, t('outputs.title')), h('span', {class: 'muted small'}, t('outputs.hint', {path: o.path, limit: bytes(o.limit)}))),
      all.length ? h('table', {class: 'cards outputs-list'}, h('thead', {}, h('tr', {}, [col.task, col.files, col.size, col.digest, ''].map((x) => h('th', {}, x)))), h('tbody', {}, rows))
        : h('p', {class: 'muted'}, terminal(job.state) ? t('outputs.none') : t('outputs.none.yet')),
      h('p', {class: 'muted small'}, t('outputs.cli'), ' ', h('code', {}, `gantry job output ${id}`)));
  };
  const outputsSoon = () => { if (!outTimer) outTimer = setTimeout(() => { outTimer = null; loadOutputs(); }, 2000); };
  const timeline = new Timeline();
  let tlTimer = null, tlGen = 0;
  const loadTimeline = async () => {
    if (!job || job.total < 2) return;
    const gen = ++tlGen;
    const all = [];
    let cursor = '';
    try {
      do {
        const r = await get(`/jobs/${id}/timeline` + (cursor ? `?cursor=${cursor}` : ''));
        all.push(...r.attempts);
        cursor = r.next;
      } while (cursor);
    } catch { return; /* the page goes on without it */ }
    if (gen !== tlGen) return;
    timelineBox.hidden = false;
    timeline.update(job.total, all);
  };
  const timelineSoon = () => { if (!tlTimer) tlTimer = setTimeout(() => { tlTimer = null; loadTimeline(); }, 2000); };
  const grid = new TaskGrid((i) => selectTask(i));
  const log = new LogView();
  let taskGen = 0;

  const renderHeader = () => {
    const owner = job.owner === app.me.name;
    header.replaceChildren(
      h('div', {}, h('h1', {}, job.spec.name || job.spec.image, ' ', badge(job.state), job.genai ? genaiTag() : null,
        job.trial ? h('span', {class: 'tag trial', title: t('job.trial.title')}, t('job.trial')) : null), h('div', {class: 'muted small mono'}, job.id)),
      h('div', {class: 'actions'},
        !terminal(job.state) ? h('button', {class: 'danger', id: 'cancel', disabled: job.cancel_requested, onclick: cancel}, job.cancel_requested ? t('job.cancelling') : t('job.cancel')) : null,
        terminal(job.state) && owner && (job.counts || {}).failed ? h('button', {id: 'rerun-failed', onclick: rerunFailed, title: t('job.rerun.title')}, t('job.rerun', {n: job.counts.failed})) : null,
        terminal(job.state) && owner ? h('button', {id: 'retry', onclick: retry, title: t('job.retry.title')}, t('job.retry')) : null));
    const c = job.counts || {};
    summary.replaceChildren(...[
      kv(t('job.progress'), t('job.progress.succeeded', {done: c.succeeded || 0, total: job.total}) +
        (c.failed ? t('job.progress.failed', {n: c.failed}) : '') + (c.cancelled ? t('job.progress.cancelled', {n: c.cancelled}) : '')),
      kv(t('jobs.col.owner'), job.owner), kv(t('jobs.col.queue'), job.spec.queue || 'default'),
      kv(t('job.priority'), String(job.spec.priority || 0) + (job.spec.no_preempt ? t('job.priority.nopreempt') : '')),
      job.preemptions ? h('div', {class: 'kv preemptions'}, h('span', {class: 'k'}, t('job.preempted')), h('span', {class: 'v'}, t('job.preempted.times', {n: job.preemptions}))) : null,
      kv(t('jobs.col.submitted'), time(job.submitted)), kv(t('job.started'), time(job.started)), kv(t('job.ended'), time(job.ended)),
      kv(t('jobs.col.duration'), dur(jobDuration(job))),
      kv(t('job.resources'), `${cpu(job.spec.cpu)}, ${bytes(job.spec.memory)}` + (job.spec.gpus ? ', ' + t('unit.gpus', {n: job.spec.gpus}) : '')),
      job.message ? kv(t('job.message'), job.message) : null,
      waiting && (job.counts || {}).queued ? h('div', {class: 'kv waiting'}, h('span', {class: 'k'}, t('job.waiting')), h('span', {class: 'v'}, waiting)) : null].filter(Boolean));
    spec.replaceChildren(h('summary', {}, t('job.spec')), h('pre', {}, JSON.stringify(job.spec, null, 2)));
    grid.setCounts(job.counts || {}, job.total);
  };
  const kv = (k, v) => h('div', {class: 'kv'}, h('span', {class: 'k'}, k), h('span', {class: 'v'}, v));

  const cancel = async () => {
    if (!confirm(t('job.cancel.confirm'))) return;
    try { job = await post(`/jobs/${id}/cancel`); renderHeader(); } catch (e) { toast(e.message); }
  };
  const rerunFailed = async () => {
    try {
      const r = await post(`/jobs/${id}/rerun`, {failed: true});
      job = r.job;
      renderHeader();
      await loadTasks();
      toast(t('job.rerun.done', {n: r.tasks.length}));
    } catch (e) { toast(e.message); }
  };
  const retry = async () => {
    try { const j = await post(`/jobs/${id}/retry`); app.go(`/jobs/${j.id}`); } catch (e) { toast(e.message); }
  };

  // The graph around the job: what it depends on and what depends on it,
  // each a link with its kind and state.
  let edgeJobs = new Set(); // the jobs at the other end of each edge
  let depsTimer = null, waitTimer = null;
  const depsSoon = () => { if (!depsTimer) depsTimer = setTimeout(() => { depsTimer = null; loadDeps(); }, 500); };
  // Why queued tasks wait changes with the whole cluster (nodes, other
  // users' tasks, quotas): asked again at each of the node's samples and
  // when a node changes, while some wait.
  const waitingSoon = () => {
    if (waitTimer || !job || terminal(job.state) || !(job.counts || {}).queued) return;
    waitTimer = setTimeout(async () => {
      waitTimer = null;
      try { const j = await get(`/jobs/${id}`); waiting = j.waiting || ''; renderHeader(); } catch { /* the live view goes on */ }
    }, 500);
  };
  const loadDeps = async () => {
    let g;
    try { g = await get(`/jobs/${id}/deps`); } catch { return; /* the page goes on without it */ }
    const edge = (e) => h('li', {class: 'dep'},
      h('a', {href: `/jobs/${e.job}`, class: 'mono'}, e.name || e.job), ' ',
      h('span', {class: 'tag kind', title: KIND_TITLES[e.kind] ? t(KIND_TITLES[e.kind]) : ''}, e.kind), ' ',
      e.state ? badge(e.state) : h('span', {class: 'muted small'}, t('deps.purged')));
    const list = (title, es, none) => h('div', {},
      h('h3', {}, title), es.length ? h('ul', {class: 'deps-list'}, ...es.map(edge)) : h('p', {class: 'muted small'}, none));
    const deps = g.dependencies || [], dependents = g.dependents || [];
    edgeJobs = new Set([...deps, ...dependents].map((e) => e.job));
    depsBox.hidden = !deps.length && !dependents.length && !g.sequential;
    depsBox.replaceChildren(h('div', {class: 'head'}, h('h2', {}, t('deps.title'))),
      g.sequential ? h('p', {class: 'small'}, t('deps.sequential')) : null,
      list(t('deps.on'), deps, t('deps.on.none')), list(t('deps.dependents'), dependents, t('deps.dependents.none')));
  };

  const loadTasks = async () => {
    const all = [];
    let cursor = '';
    do {
      const r = await get(`/jobs/${id}/tasks?limit=10000` + (cursor ? `&cursor=${cursor}` : ''));
      all.push(...r.tasks);
      cursor = r.next;
    } while (cursor);
    tasks = [];
    for (const x of all) tasks[x.index] = x;
    grid.setTasks(tasks, job.total);
  };

  const load = async () => {
    job = await get(`/jobs/${id}`);
    waiting = job.waiting || '';
    renderHeader();
    await Promise.all([loadTasks(), loadDeps(), loadTimeline(), loadOutputs()]);
    if (selected == null && job.total === 1) selected = 0;
    if (selected != null) await showTask(selected, true);
  };

  const apply = (m) => {
    if (m.type === 'job' && m.job.id === id) {
      const changed = !job || job.state !== m.job.state;
      job = m.job;
      renderHeader();
      if (changed) loadDeps();
    }
    // A job at the other end of an edge changed: its state on the page too.
    if (m.type === 'job' && m.job.id !== id && edgeJobs.has(m.job.id)) depsSoon();
    if (m.type === 'stats' || m.type === 'node') waitingSoon();
    if (m.type === 'task' && m.task.job === id) {
      const x = m.task, old = tasks[x.index];
      // Never go backwards: a state of a lower rank from the same attempt is stale.
      if (old && (x.attempts < old.attempts || (x.attempts === old.attempts && RANK[x.state] < RANK[old.state]))) return;
      tasks[x.index] = x;
      grid.update(x);
      timelineSoon();
      if (x.output && (!old || !old.output || old.output.digest !== x.output.digest)) outputsSoon();
      if (x.index === selected) showTask(selected, !old || x.attempts !== old.attempts);
    }
  };

  const preemptor = (a) => h('a', {href: `/jobs/${a.preempted_by.split('/')[0]}`}, t('task.ref', {task: a.preempted_by}));
  // The attempts table of the selected task; restart the log when a new attempt begins.
  const showTask = async (i, restartLog) => {
    const gen = ++taskGen;
    taskBox.hidden = false;
    let cur;
    try { cur = await get(`/jobs/${id}/tasks/${i}`); } catch (e) { taskBox.replaceChildren(h('p', {class: 'error'}, e.message)); return; }
    if (gen !== taskGen) return;
    const atts = cur.attempt_list || [];
    const col = {attempt: t('task.col.attempt'), state: t('jobs.col.state'), node: t('task.col.node'), exit: t('task.col.exit'), reason: t('task.col.reason'), started: t('job.started'), duration: t('jobs.col.duration')};
    const rows = atts.slice().reverse().map((a) => h('tr', {},
      h('td', {'data-label': col.attempt, class: 'num'}, `#${a.attempt}`), h('td', {'data-label': col.state}, badge(a.state)),
      h('td', {'data-label': col.node}, a.node || '—'),
      h('td', {'data-label': col.exit, class: 'num'}, a.exit_code == null ? '—' : String(a.exit_code)),
      h('td', {'data-label': col.reason}, a.reason ? reasonText(a.reason) : (a.preempt ? t('task.stopping') : '—'), a.message ? h('div', {class: 'muted small'}, a.message) : null,
        a.preempted_by ? h('div', {class: 'muted small preempted-by'}, ...(a.grace ? tp('task.preemptedby.grace', {task: preemptor(a), grace: a.grace}) : tp('task.preemptedby', {task: preemptor(a)}))) : null),
      h('td', {'data-label': col.started}, time(a.started)),
      h('td', {'data-label': col.duration, class: 'num'}, a.started ? dur((a.ended ? Date.parse(a.ended) : Date.now()) - Date.parse(a.started)) : '—')));
    const head = h('div', {class: 'head'}, h('h2', {}, t('task.title', {i: String(i)}), ' ', badge(cur.state)),
      job.total > 1 ? h('button', {class: 'small', onclick: () => selectTask(null)}, t('common.close')) : null);
    const attTable = atts.length ? h('table', {class: 'cards attempts'}, h('thead', {}, h('tr', {}, [col.attempt, col.state, col.node, col.exit, col.reason, col.started, col.duration].map((x) => h('th', {}, x)))), h('tbody', {}, rows))
      : h('p', {class: 'muted'}, t('task.noattempt'));
    taskBox.replaceChildren(head, attTable, log.el);
    if (restartLog || log.key !== `${id}/${i}`) log.open(id, i, cur.attempts || 0);
  };

  const selectTask = (i) => {
    selected = i;
    history.replaceState(null, '', i == null ? `/jobs/${id}` : `/jobs/${id}/tasks/${i}`);
    grid.select(i);
    if (i == null) { taskBox.hidden = true; log.close(); return; }
    showTask(i, true);
    taskBox.scrollIntoView({block: 'nearest'});
  };

  const sync = new Synced(load, apply);
  const resync = () => sync.resync().catch((e) => {
    if (e.status === 404) main.replaceChildren(h('h1', {}, t('job.notfound')), h('p', {}, ...tp('job.notfound.body', {link: h('a', {href: '/jobs'}, t('job.notfound.link'))})));
    else if (e.status) toast(e.message);
  });
  // Task events flow once the server acknowledges the follow; load after that.
  const off = app.live.on((m) => {
    if (m.type === 'following' && m.job_id === id) resync();
    else if (m.type === 'resync') resync();
    else sync.event(m);
  });
  app.live.followJob(id);
  if (!app.live.connected) resync(); // show what we can; the acknowledgement resyncs again
  grid.select(selected);

  const gotoTask = h('form', {class: 'inline goto', onsubmit: (e) => {
    e.preventDefault();
    const n = Number(e.target.elements.task.value);
    if (Number.isInteger(n) && n >= 0 && job && n < job.total) selectTask(n); else toast(t('task.goto.range', {last: job ? String(job.total - 1) : '?'}));
  }}, h('label', {for: 'goto-task'}, t('task.goto')), h('input', {id: 'goto-task', name: 'task', type: 'number', min: 0, inputmode: 'numeric'}), h('button', {type: 'submit', class: 'small'}, t('task.goto.open')));
  gridBox.append(h('div', {class: 'head'}, h('h2', {}, t('job.tasks')), gotoTask), grid.legend, grid.el);
  timelineBox.append(h('div', {class: 'head'}, h('h2', {}, t('timeline.title')), h('span', {class: 'muted small'}, t('timeline.hint'))), timeline.el);
  main.append(header, summary, depsBox, gridBox, taskBox, outputsBox, timelineBox, spec);
  // The running duration is the browser's clock: redrawn each second.
  const timer = setInterval(() => { if (job && job.state === 'running') renderHeader(); }, 1000);
  return () => { off(); log.close(); grid.close(); clearInterval(timer); clearTimeout(tlTimer); clearTimeout(outTimer); clearTimeout(depsTimer); clearTimeout(waitTimer); timeline.dispose(); };
}

/**
 * TaskGrid draws one cell per task on a canvas, coloured by state; with
 * 10,000 tasks a cell is still a few pixels. Hover names the task, click
 * (or Enter on the focused grid) opens it.
 */
class TaskGrid {
  constructor(onSelect) {
    this.onSelect = onSelect;
    this.canvas = h('canvas', {tabindex: 0, role: 'img', 'aria-label': t('grid.label')});
    this.tip = h('div', {class: 'tip', hidden: true});
    this.el = h('div', {class: 'grid'}, this.canvas, this.tip);
    this.legend = h('div', {class: 'legend'});
    this.loading = h('p', {class: 'muted small'}, t('grid.loading'));
    this.el.append(this.loading);
    this.tasks = []; this.total = 0; this.sel = null; this.dirty = new Set(); this.full = true;
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    this.canvas.addEventListener('click', (e) => { const i = this.at(e); if (i != null) this.onSelect(i); });
    this.canvas.addEventListener('keydown', (e) => {
      const moves = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: this.cols, ArrowUp: -this.cols};
      if (e.key in moves) {
        e.preventDefault();
        const n = Math.max(0, Math.min(this.total - 1, (this.sel ?? -1) + moves[e.key]));
        this.onSelect(n);
      }
    });
    this.ro = new ResizeObserver(() => { this.full = true; this.draw(); });
    this.ro.observe(this.el);
    this.colors = {};
    this.mq = matchMedia('(prefers-color-scheme: dark)');
    this.onScheme = () => { this.colors = {}; this.full = true; this.draw(); };
    this.mq.addEventListener('change', this.onScheme);
  }
  close() { this.ro.disconnect(); this.mq.removeEventListener('change', this.onScheme); }
  color(state) {
    if (!this.colors[state]) this.colors[state] = getComputedStyle(document.documentElement).getPropertyValue(COLORS[state] || '--c-queued').trim() || '#888';
    return this.colors[state];
  }
  setCounts(counts, total) {
    this.total = total;
    // The count as it is, not grouped: the legend is read with the grid.
    this.legend.replaceChildren(...STATES.map((s) => h('span', {class: 'lg'}, h('i', {class: `sw s-${s}`}), `${stateText(s)} ${counts[s] || 0}`)));
  }
  setTasks(tasks, total) { this.tasks = tasks; this.total = total; this.full = true; this.loading.hidden = true; this.draw(); }
  update(x) { this.dirty.add(x.index); this.draw(); }
  select(i) { const old = this.sel; this.sel = i; if (old != null) this.dirty.add(old); if (i != null) this.dirty.add(i); this.draw(); }
  layout() {
    const w = Math.max(200, this.el.clientWidth);
    const n = Math.max(1, this.total);
    // Largest cell such that the grid stays under ~360px tall, between 3 and 28px.
    let cell = 28;
    while (cell > 3 && Math.ceil(n / Math.floor(w / cell)) * cell > 360) cell--;
    this.cell = cell; this.gap = cell >= 8 ? 2 : cell >= 5 ? 1 : 0;
    this.cols = Math.max(1, Math.floor(w / cell));
    this.rows = Math.ceil(n / this.cols);
  }
  draw() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      const ctx = this.canvas.getContext('2d');
      if (this.full) {
        this.layout();
        const dpr = window.devicePixelRatio || 1;
        this.canvas.width = this.cols * this.cell * dpr;
        this.canvas.height = this.rows * this.cell * dpr;
        this.canvas.style.width = this.cols * this.cell + 'px';
        this.canvas.style.height = this.rows * this.cell + 'px';
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.clearRect(0, 0, this.cols * this.cell, this.rows * this.cell);
        for (let i = 0; i < this.total; i++) this.cellAt(ctx, i);
        this.full = false;
        this.canvas.dataset.drawn = String(this.total);
        this.canvas.setAttribute('aria-label', t('grid.label.full', {n: this.total}));
      } else {
        for (const i of this.dirty) this.cellAt(ctx, i);
      }
      this.dirty.clear();
    });
  }
  cellAt(ctx, i) {
    const x = (i % this.cols) * this.cell, y = Math.floor(i / this.cols) * this.cell;
    const s = this.cell - this.gap;
    ctx.clearRect(x, y, this.cell, this.cell);
    ctx.fillStyle = this.color(this.tasks[i] ? this.tasks[i].state : 'queued');
    ctx.fillRect(x, y, s, s);
    if (i === this.sel) {
      ctx.strokeStyle = this.color('selected') === '#888' ? '#000' : this.color('selected');
      ctx.lineWidth = Math.max(1, Math.min(2, s / 4));
      ctx.strokeRect(x + 0.5, y + 0.5, s - 1, s - 1);
    }
  }
  at(e) {
    const r = this.canvas.getBoundingClientRect();
    const c = Math.floor((e.clientX - r.left) / this.cell), row = Math.floor((e.clientY - r.top) / this.cell);
    if (c < 0 || c >= this.cols) return null;
    const i = row * this.cols + c;
    return i >= 0 && i < this.total ? i : null;
  }
  hover(e) {
    const i = this.at(e);
    if (i == null) { this.tip.hidden = true; return; }
    const x = this.tasks[i];
    this.tip.textContent = t('grid.tip', {i: String(i), state: stateText(x ? x.state : 'queued')}) + (x && x.node ? t('grid.tip.node', {node: x.node}) : '') +
      (x && x.exit_code != null ? t('grid.tip.exit', {code: String(x.exit_code)}) : '') + (x && x.reason ? t('grid.tip.reason', {reason: reasonText(x.reason)}) : '');
    this.tip.hidden = false;
    const r = this.el.getBoundingClientRect();
    this.tip.style.left = Math.min(e.clientX - r.left + 12, r.width - 200) + 'px';
    this.tip.style.top = (e.clientY - r.top + 16) + 'px';
  }
}
