// The jobs table: filters, cursor pagination and live updates.
import {h, time, badge, dur, jobDuration, stateText, STATES} from './util.js';
import {t} from './i18n.js';
import {get, qs} from './api.js';
import {Synced} from './live.js';

const LIMIT = 50;

/** jobsPage renders the user's jobs (mine) or, for an admin, everyone's. */
export function jobsPage(app, {mine}) {
  const main = document.getElementById('main');
  const params = new URLSearchParams(location.search);
  const f = {state: params.get('state') || '', q: params.get('q') || '', owner: mine ? app.me.name : (params.get('owner') || ''), cursor: params.get('cursor') || ''};
  // Cursors of the pages before this one, so "Newer" can go back.
  const back = (params.get('back') || '').split(',').filter(Boolean);
  let jobs = [];
  let next = '';

  const stateSel = h('select', {id: 'f-state', 'aria-label': t('jobs.filter.state')}, h('option', {value: ''}, t('jobs.filter.allstates')), STATES.map((s) => h('option', {value: s, selected: s === f.state}, stateText(s))));
  const text = h('input', {id: 'f-q', type: 'search', placeholder: t('jobs.search.placeholder'), value: f.q, 'aria-label': t('jobs.search.label')});
  const owner = mine ? null : h('input', {id: 'f-owner', type: 'search', placeholder: t('jobs.col.owner'), value: f.owner, 'aria-label': t('jobs.filter.owner')});
  const col = {job: t('jobs.col.job'), state: t('jobs.col.state'), progress: t('jobs.col.progress'), owner: t('jobs.col.owner'), queue: t('jobs.col.queue'), submitted: t('jobs.col.submitted'), duration: t('jobs.col.duration')};
  const tbody = h('tbody', {});
  const table = h('table', {class: 'jobs cards'}, h('thead', {}, h('tr', {},
    h('th', {}, col.job), h('th', {}, col.state), h('th', {}, col.progress), mine ? null : h('th', {}, col.owner), h('th', {}, col.queue), h('th', {}, col.submitted), h('th', {}, col.duration))), tbody);
  const empty = h('div', {class: 'empty', hidden: true});
  const newer = h('button', {class: 'small', disabled: !f.cursor, onclick: () => { const c = back.pop() || ''; nav({cursor: c === '-' ? '' : c, back: back.join(',')}); }}, t('jobs.newer'));
  const older = h('button', {class: 'small', disabled: true, onclick: () => nav({cursor: next, back: [...back, f.cursor || '-'].join(',')})}, t('jobs.older'));
  const pager = h('div', {class: 'pager'}, newer, older);

  const nav = (change) => {
    const p = {state: f.state, q: f.q, owner: mine ? '' : f.owner, cursor: f.cursor, back: back.join(','), ...change};
    history.pushState(null, '', location.pathname + qs(p));
    dispatchEvent(new PopStateEvent('popstate'));
  };
  stateSel.addEventListener('change', () => nav({state: stateSel.value, cursor: '', back: ''}));
  let typing;
  const onText = () => { clearTimeout(typing); typing = setTimeout(() => nav({q: text.value.trim(), owner: owner ? owner.value.trim() : '', cursor: '', back: ''}), 300); };
  text.addEventListener('input', onText);
  owner?.addEventListener('input', onText);

  const rowFor = (j) => {
    const done = (j.counts && j.counts.succeeded) || 0;
    const failed = (j.counts && j.counts.failed) || 0;
    const pct = j.total ? (done / j.total) * 100 : 0;
    const fpct = j.total ? (failed / j.total) * 100 : 0;
    return h('tr', {dataset: {id: j.id, state: j.state}},
      h('td', {'data-label': col.job}, h('a', {href: `/jobs/${j.id}`}, j.spec.name || j.spec.image), h('div', {class: 'muted small mono'}, j.id.slice(-10).toLowerCase(), ' · ', j.spec.image)),
      h('td', {'data-label': col.state}, badge(j.state)),
      h('td', {'data-label': col.progress}, h('div', {class: 'progress', title: t('jobs.progress.title', {done, failed, total: j.total})},
        h('div', {class: 'bar'}, h('span', {class: 'ok', style: `width:${pct}%`}), h('span', {class: 'bad', style: `width:${fpct}%`})),
        h('small', {class: 'count'}, `${done}/${j.total}`))),
      mine ? null : h('td', {'data-label': col.owner}, j.owner),
      h('td', {'data-label': col.queue}, j.spec.queue || 'default'),
      h('td', {'data-label': col.submitted}, time(j.submitted)),
      h('td', {'data-label': col.duration, class: 'num'}, dur(jobDuration(j))));
  };

  const render = () => {
    tbody.replaceChildren(...jobs.map(rowFor));
    table.hidden = jobs.length === 0;
    empty.hidden = jobs.length !== 0;
    if (!jobs.length) {
      const filtered = f.state || f.q || f.cursor || (!mine && f.owner);
      empty.replaceChildren(...(filtered
        ? [h('p', {}, t('jobs.empty.filtered')), h('a', {href: location.pathname}, t('jobs.empty.clear'))]
        : [h('h2', {}, t('jobs.empty.title')), h('p', {}, t('jobs.empty.body')),
          h('pre', {}, 'gantry/toolbox   echo hello'), h('a', {class: 'button primary', href: '/submit'}, t('jobs.empty.first'))]));
    }
    older.disabled = !next;
  };

  const load = async () => {
    const r = await get('/jobs' + qs({state: f.state, q: f.q, owner: f.owner, cursor: f.cursor, limit: LIMIT}));
    jobs = r.jobs; next = r.next;
    // A text search examines a bounded number of jobs per request and says
    // where it stopped: keep going while the page is not full and older
    // jobs remain, so an old job is found without paging by hand.
    for (let round = 0; f.q && jobs.length < LIMIT && next && round < 100; round++) {
      if (!jobs.length) { table.hidden = true; empty.hidden = false; empty.replaceChildren(h('p', {class: 'muted'}, t('jobs.searching'))); }
      const more = await get('/jobs' + qs({state: f.state, q: f.q, owner: f.owner, cursor: next, limit: LIMIT - jobs.length}));
      jobs = jobs.concat(more.jobs); next = more.next;
    }
    render();
  };

  const matches = (j) => (!f.owner || j.owner === f.owner) && (!f.state || j.state === f.state) &&
    (!f.q || [j.id, j.spec.name, j.spec.image, j.owner].some((s) => (s || '').toLowerCase().includes(f.q.toLowerCase())));

  // Redraw at most once a frame however many events arrive.
  let dirty = false;
  const schedule = () => { if (!dirty) { dirty = true; requestAnimationFrame(() => { dirty = false; render(); }); } };
  const apply = (m) => {
    if (m.type !== 'job') return;
    const j = m.job;
    const i = jobs.findIndex((x) => x.id === j.id);
    if (i >= 0) { jobs[i] = j; schedule(); return; }
    // A job newer than the first row on the first page is a new submission.
    if (!f.cursor && matches(j) && (!jobs.length || j.id > jobs[0].id)) {
      jobs.unshift(j);
      if (jobs.length > LIMIT) { jobs.pop(); next = jobs[jobs.length - 1].id; }
      schedule();
    }
  };
  const sync = new Synced(load, apply);
  const off = app.live.on((m) => {
    if (m.type === 'open' || m.type === 'resync') sync.resync().catch(() => {});
    else sync.event(m);
  });
  const timer = setInterval(() => { for (const tr of tbody.rows) { const j = jobs.find((x) => x.id === tr.dataset.id); if (j && j.state === 'running') tr.lastChild.textContent = dur(jobDuration(j)); } }, 1000);

  main.append(
    h('div', {class: 'head'}, h('h1', {}, mine ? t('jobs.title') : t('jobs.title.all')), h('a', {class: 'button primary', href: '/submit'}, t('jobs.submit'))),
    h('div', {class: 'filters', role: 'search'}, stateSel, owner, text),
    table, empty, pager);
  table.hidden = true;
  sync.resync().catch((e) => { empty.hidden = false; empty.replaceChildren(h('p', {class: 'error'}, e.message)); });
  if (document.activeElement === document.body && f.q) text.focus();
  return () => { off(); clearInterval(timer); clearTimeout(typing); };
}
