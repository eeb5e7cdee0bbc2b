// Charts drawn as SVG by our own code: line and area charts over time with
// axes, a legend with the latest values, a tooltip with the values under
// the pointer and an accessible label; and the task timeline of an array
// job (one path per outcome, so 10,000 tasks are a handful of elements).
// Colours come from classes (style.css), so the dark scheme applies.
import {h, stateText, reasonText} from './util.js';
import {t, tk, num, clock as clockOf, dateTime} from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';

/** s builds an SVG element. */
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v);
  for (const k of kids) if (k !== null && k !== undefined) el.append(k instanceof Node ? k : String(k));
  return el;
}

/** niceMax rounds a maximum up to 1, 2 or 5 times a power of ten. */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  // Multiples that split into four even ticks.
  for (const m of [1, 2, 4, 5, 8, 10]) if (m * p >= v - 1e-9 * p) return m * p;
  return 10 * p;
}

// Seconds on the axis when the window is shorter than ten minutes.
/** niceBytes is niceMax in the largest binary unit (KiB, MiB, GiB...) under v. */
export function niceBytes(v) {
  let u = 1;
  while (v / u >= 1024) u *= 1024;
  return niceMax(v / u) * u;
}

const clock = (ms, span) => clockOf(ms, span < 600e3);

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
}

/**
 * LineChart is one chart: update() gives it times (Unix ms) and series
 * ({key, label, cls, values, area}); it redraws at its width.
 */
export class LineChart {
  constructor({id, title, format, nice = niceMax, height = 170}) {
    this.id = id; this.title = title; this.format = format || ((v) => String(Math.round(v))); this.nice = nice;
    this.height = height; this.times = []; this.series = [];
    this.svg = s('svg', {role: 'img', 'aria-labelledby': `${id}-t ${id}-d`, class: 'chart-svg'});
    this.legend = h('div', {class: 'chart-legend'});
    this.tip = h('div', {class: 'tip', hidden: true});
    this.el = h('figure', {class: 'chart', dataset: {chart: id}},
      h('figcaption', {id: `${id}-c`}, title), h('div', {class: 'chart-box'}, this.svg, this.tip), this.legend);
    this.svg.addEventListener('pointermove', (e) => this.hover(e));
    this.svg.addEventListener('pointerleave', () => this.unhover());
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.el);
  }

  update(times, series) { this.times = times; this.series = series; this.draw(); }

  dispose() { this.ro.disconnect(); }

  geometry() {
    const w = Math.max(240, Math.floor(this.el.clientWidth || 600));
    const m = {l: 56, r: 12, t: 10, b: 24};
    return {w, hgt: this.height, m, iw: w - m.l - m.r, ih: this.height - m.t - m.b};
  }

  draw() {
    const {w, hgt, m, iw, ih} = this.geometry();
    const times = this.times, n = times.length;
    let max = 0;
    for (const sr of this.series) for (const v of sr.values) if (v > max) max = v;
    const ymax = this.nice(max * 1.05);
    const t0 = n ? times[0] : Date.now() - 3600e3, t1 = n > 1 ? times[n - 1] : t0 + 1;
    const x = (ms) => m.l + (ms - t0) / (t1 - t0) * iw;
    const y = (v) => m.t + ih - v / ymax * ih;
    this.scale = {x, t0, t1, m, iw};
    const kids = [s('title', {id: `${this.id}-t`}, this.title)];
    const latest = this.series.map((sr) => `${sr.label} ${lastValue(sr.values) === null ? t('chart.notmeasured') : this.format(lastValue(sr.values))}`);
    kids.push(s('desc', {id: `${this.id}-d`}, n ? t('chart.latest', {values: latest.join(', ')}) : t('chart.nosamples')));
    const grid = s('g', {class: 'chart-grid'});
    for (let k = 0; k <= 4; k++) {
      const v = ymax * k / 4, yy = y(v);
      grid.append(s('line', {x1: m.l, x2: m.l + iw, y1: yy, y2: yy}),
        s('text', {x: m.l - 6, y: yy + 4, 'text-anchor': 'end'}, this.format(v)));
    }
    const ticks = Math.max(2, Math.min(6, Math.floor(iw / (t1 - t0 < 600e3 ? 110 : 90))));
    for (let k = 0; k <= ticks && n > 1; k++) {
      const ms = t0 + (t1 - t0) * k / ticks;
      grid.append(s('text', {x: x(ms), y: hgt - 6, 'text-anchor': k === 0 ? 'start' : k === ticks ? 'end' : 'middle'}, clock(ms, t1 - t0)));
    }
    kids.push(grid);
    for (const sr of this.series) {
      let d = '', pen = false, first = null, lastX = null;
      sr.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        const px = x(times[i]).toFixed(1), py = y(v).toFixed(1);
        d += (pen ? 'L' : 'M') + px + ' ' + py;
        if (first === null) first = px;
        lastX = px; pen = true;
      });
      const lv = lastValue(sr.values);
      const data = {'data-key': sr.key, 'data-last': lv === null ? '' : String(lv), 'data-points': String(sr.values.length)};
      if (sr.area && d && !sr.values.some((v) => v === null)) {
        kids.push(s('path', {class: `chart-area ${sr.cls}`, d: `${d}L${lastX} ${m.t + ih}L${first} ${m.t + ih}Z`}));
      }
      kids.push(s('path', {class: `chart-line ${sr.cls}`, d: d || 'M0 0', ...data}));
    }
    this.rule = s('line', {class: 'chart-rule', y1: m.t, y2: m.t + ih, x1: -10, x2: -10});
    kids.push(this.rule);
    this.svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
    this.svg.setAttribute('width', w);
    this.svg.setAttribute('height', hgt);
    this.svg.replaceChildren(...kids);
    this.legend.replaceChildren(...this.series.map((sr) => {
      const lv = lastValue(sr.values);
      return h('span', {class: 'lg', dataset: {key: sr.key}}, h('span', {class: `sw ${sr.cls}`}), sr.label + ' ',
        h('b', {class: 'num'}, lv === null ? '—' : this.format(lv)));
    }));
  }

  hover(e) {
    const n = this.times.length;
    if (!n || !this.scale) return;
    const r = this.svg.getBoundingClientRect();
    const px = e.clientX - r.left;
    const {t0, t1, m, iw} = this.scale;
    const ms = t0 + (px - m.l) / iw * (t1 - t0);
    let i = 0;
    while (i < n - 1 && Math.abs(this.times[i + 1] - ms) <= Math.abs(this.times[i] - ms)) i++;
    const xx = this.scale.x(this.times[i]);
    this.rule.setAttribute('x1', xx); this.rule.setAttribute('x2', xx);
    this.tip.replaceChildren(h('div', {}, dateTime(this.times[i])),
      ...this.series.map((sr) => h('div', {}, t('chart.tip.value', {label: sr.label, value: sr.values[i] === null ? '—' : this.format(sr.values[i])}))));
    this.tip.hidden = false;
    this.tip.style.left = Math.min(xx + 10, r.width - 170) + 'px';
    this.tip.style.top = '8px';
  }

  unhover() { this.tip.hidden = true; this.rule?.setAttribute('x1', -10); this.rule?.setAttribute('x2', -10); }
}

// The outcome classes of the timeline, in drawing order.
export const OUTCOMES = [
  ['succeeded', tk('timeline.succeeded')], ['retried', tk('timeline.retried')], ['failed', tk('timeline.failed')],
  ['cancelled', tk('timeline.cancelled')], ['lost', tk('timeline.lost')], ['running', tk('timeline.running')],
];

/** outcomeOf classifies an attempt; retried says a later attempt exists. */
export function outcomeOf(a, retried) {
  if (!a.end) return 'running';
  if (a.reason === 'node_lost') return 'lost';
  if (a.state === 'succeeded') return 'succeeded';
  if (a.state === 'cancelled' || a.reason === 'preempted') return 'cancelled';
  return retried ? 'retried' : 'failed';
}

/**
 * Timeline draws every attempt of a job's tasks: a row per task, a bar from
 * start to end coloured by outcome, one SVG path per outcome.
 */
export class Timeline {
  constructor({id = 'timeline'} = {}) {
    this.id = id; this.attempts = []; this.total = 0;
    this.svg = s('svg', {role: 'img', 'aria-labelledby': `${id}-t ${id}-d`, class: 'timeline-svg'});
    this.tip = h('div', {class: 'tip', hidden: true});
    this.legend = h('div', {class: 'legend'});
    this.el = h('figure', {class: 'chart timeline', dataset: {chart: id}}, h('div', {class: 'chart-box'}, this.svg, this.tip), this.legend);
    this.svg.addEventListener('pointermove', (e) => this.hover(e));
    this.svg.addEventListener('pointerleave', () => { this.tip.hidden = true; });
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.el);
  }

  dispose() { this.ro.disconnect(); }

  update(total, attempts) {
    this.total = total; this.attempts = attempts;
    this.byTask = new Map();
    for (const a of attempts) {
      if (!this.byTask.has(a.task)) this.byTask.set(a.task, []);
      this.byTask.get(a.task).push(a);
    }
    this.draw();
  }

  draw() {
    const w = Math.max(240, Math.floor(this.el.clientWidth || 600));
    const m = {l: 48, r: 10, t: 6, b: 22};
    const rows = Math.max(1, this.total);
    const hgt = Math.min(480, Math.max(120, rows * 6)) + m.t + m.b;
    const iw = w - m.l - m.r, ih = hgt - m.t - m.b, rh = ih / rows;
    const now = Date.now();
    let t0 = Infinity, t1 = -Infinity;
    for (const a of this.attempts) {
      if (!a.start) continue;
      t0 = Math.min(t0, a.start); t1 = Math.max(t1, a.end || now);
    }
    if (!isFinite(t0)) { t0 = now; t1 = now + 1000; }
    if (t1 <= t0) t1 = t0 + 1000;
    const x = (ms) => m.l + (ms - t0) / (t1 - t0) * iw;
    this.scale = {t0, t1, m, iw, rh, rows};
    const paths = Object.fromEntries(OUTCOMES.map(([k]) => [k, []]));
    const counts = Object.fromEntries(OUTCOMES.map(([k]) => [k, 0]));
    // Rows tall enough get a gap, so neighbouring tasks stay apart.
    const minW = 1.5, bh = rh >= 3 ? rh - Math.max(1, rh * 0.15) : Math.max(rh, 0.6);
    for (const [task, list] of this.byTask || []) {
      list.forEach((a, i) => {
        if (!a.start) return;
        const k = outcomeOf(a, i < list.length - 1);
        counts[k]++;
        const x0 = x(a.start), ww = Math.max(minW, x(a.end || now) - x0), yy = m.t + task * rh;
        paths[k].push(`M${x0.toFixed(1)} ${yy.toFixed(2)}h${ww.toFixed(1)}v${bh.toFixed(2)}h${(-ww).toFixed(1)}z`);
      });
    }
    const retriedTasks = [...(this.byTask || new Map()).values()].filter((l) => l.length > 1).length;
    const summary = t('timeline.summary', {tasks: t('timeline.tasks', {n: this.total}), attempts: t('timeline.attempts', {n: this.attempts.length}), retried: t('timeline.retriedtasks', {n: retriedTasks})}) +
      OUTCOMES.filter(([k]) => counts[k]).map(([k, label]) => t('timeline.count', {n: counts[k], what: t(label)})).join(', ');
    const kids = [s('title', {id: `${this.id}-t`}, t('timeline.svgtitle')), s('desc', {id: `${this.id}-d`}, summary)];
    const grid = s('g', {class: 'chart-grid'});
    const span = (t1 - t0) / 1000;
    const ticks = Math.max(2, Math.min(8, Math.floor(iw / 80)));
    for (let k = 0; k <= ticks; k++) {
      const xx = m.l + iw * k / ticks;
      grid.append(s('line', {x1: xx, x2: xx, y1: m.t, y2: m.t + ih}),
        s('text', {x: xx, y: hgt - 6, 'text-anchor': k === 0 ? 'start' : k === ticks ? 'end' : 'middle'}, t('dur.s', {s: num(span * k / ticks, {minimumFractionDigits: span < 20 ? 1 : 0, maximumFractionDigits: span < 20 ? 1 : 0})})));
    }
    for (const task of [0, rows - 1]) grid.append(s('text', {x: m.l - 6, y: m.t + task * rh + (task ? 0 : 10), 'text-anchor': 'end'}, `#${task}`));
    kids.push(grid);
    for (const [k] of OUTCOMES) kids.push(s('path', {class: `tl-${k}`, d: paths[k].join('') || 'M0 0', 'data-outcome': k, 'data-count': String(counts[k])}));
    this.svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
    this.svg.setAttribute('width', w);
    this.svg.setAttribute('height', hgt);
    this.svg.dataset.attempts = String(this.attempts.length);
    this.svg.dataset.retriedTasks = String(retriedTasks);
    this.svg.replaceChildren(...kids);
    this.legend.replaceChildren(...OUTCOMES.map(([k, label]) => h('span', {class: 'lg', dataset: {outcome: k}}, h('span', {class: `sw tl-${k}`}), `${t(label)} `, h('b', {class: 'num'}, num(counts[k])))),
      h('span', {class: 'lg'}, t('timeline.retriedtasks', {n: retriedTasks})));
  }

  hover(e) {
    if (!this.scale) return;
    const r = this.svg.getBoundingClientRect();
    const {t0, t1, m, iw, rh, rows} = this.scale;
    const task = Math.floor((e.clientY - r.top - m.t) / rh);
    const ms = t0 + (e.clientX - r.left - m.l) / iw * (t1 - t0);
    const list = this.byTask?.get(task);
    if (task < 0 || task >= rows || !list) { this.tip.hidden = true; return; }
    let a = list.find((a) => a.start && a.start <= ms && (a.end || Date.now()) >= ms) || list[list.length - 1];
    const d = a.start ? t('dur.s', {s: num(((a.end || Date.now()) - a.start) / 1000, {minimumFractionDigits: 1, maximumFractionDigits: 1})}) : t('timeline.notstarted');
    this.tip.textContent = t('timeline.tip', {task: String(task), attempt: a.attempt, of: list.length, state: stateText(a.state), reason: a.reason ? t('grid.tip.reason', {reason: reasonText(a.reason)}) : '', dur: d});
    this.tip.hidden = false;
    this.tip.style.left = Math.min(e.clientX - r.left + 12, r.width - 260) + 'px';
    this.tip.style.top = Math.max(0, e.clientY - r.top - 28) + 'px';
  }
}
