// The schedules page: the caller's cron schedules (an admin's: everyone's),
// live, with pause, resume and remove.
import {h, time, toast} from './util.js';
import {api, get, post} from './api.js';

export function schedulesPage(app) {
  const main = document.getElementById('main');
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  const all = new Map();
  const when = (t) => t ? new Date(t).toLocaleString() : '—';
  const render = () => {
    if (!all.size) {
      body.replaceChildren(h('p', {class: 'empty'}, 'No schedules. ', h('a', {href: '/submit'}, 'Submit a job'),
        ' with a cron expression under "Repeat" to run it periodically, or use ', h('code', {}, 'gantry run --schedule "0 3 * * *" …'), '.'));
      return;
    }
    const rows = [...all.values()].sort((a, b) => a.id.localeCompare(b.id)).map((s) => h('tr', {'data-schedule': s.id},
      h('td', {'data-label': 'Schedule'}, h('strong', {}, s.name || s.id), h('div', {class: 'muted small'}, s.spec.image + (s.spec.command ? ' ' + s.spec.command.join(' ') : '')),
        app.me.admin && s.owner !== app.me.name ? h('div', {class: 'muted small'}, 'owner ' + s.owner) : null),
      h('td', {'data-label': 'Cron (UTC)'}, h('code', {}, s.cron)),
      h('td', {'data-label': 'Next run', class: 'next'}, s.paused ? h('span', {class: 'badge s-cancelled'}, 'paused') : when(s.next_run)),
      h('td', {'data-label': 'Runs', class: 'num runs'}, String(s.runs)),
      h('td', {'data-label': 'Skipped', class: 'num', title: 'runs not submitted because the previous job had not ended'}, String(s.skipped || 0)),
      h('td', {'data-label': 'Last job'}, s.last_job ? h('a', {href: `/jobs/${s.last_job}`}, time(s.last_run)) : '—'),
      h('td', {class: 'right'},
        h('button', {class: 'small', onclick: () => act(s, s.paused ? 'resume' : 'pause')}, s.paused ? 'Resume' : 'Pause'), ' ',
        h('button', {class: 'small danger', onclick: () => remove(s)}, 'Remove'))));
    body.replaceChildren(h('table', {class: 'cards schedules'}, h('thead', {}, h('tr', {},
      h('th', {}, 'Schedule'), h('th', {}, 'Cron (UTC)'), h('th', {}, 'Next run'), h('th', {}, 'Runs'), h('th', {}, 'Skipped'), h('th', {}, 'Last job'), h('th', {}, ''))),
    h('tbody', {}, rows)));
  };
  const act = async (s, verb) => {
    try { const r = await post(`/schedules/${encodeURIComponent(s.id)}/${verb}`); all.set(r.id, r); render(); } catch (e) { toast(e.message); }
  };
  const remove = async (s) => {
    if (!confirm(`Remove the schedule "${s.name || s.id}"? The jobs it submitted stay.`)) return;
    try { await api('DELETE', `/schedules/${encodeURIComponent(s.id)}`); all.delete(s.id); render(); } catch (e) { toast(e.message); }
  };
  const load = async () => {
    const r = await get('/schedules');
    all.clear();
    for (const s of r.schedules) all.set(s.id, s);
    render();
  };
  const off = app.live.on((m) => {
    if (m.type === 'open' || m.type === 'resync') load().catch(() => {});
    if (m.type === 'schedule') {
      if (m.schedule) all.set(m.schedule.id, m.schedule); else all.delete(m.schedule_id);
      render();
    }
  });
  main.append(h('h1', {}, 'Schedules'), h('p', {class: 'muted'}, 'Jobs submitted at the times a cron expression names, in UTC. A run is skipped while the previous run\'s job is still going.'), body);
  load().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
  return () => { if (off) off(); };
}
