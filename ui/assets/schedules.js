// The schedules page: the caller's cron schedules (an admin's: everyone's),
// live, with pause, resume and remove.
import {h, time, toast} from './util.js';
import {t, tp, dateTime} from './i18n.js';
import {api, get, post} from './api.js';

export function schedulesPage(app) {
  const main = document.getElementById('main');
  const body = h('div', {}, h('p', {class: 'muted'}, t('common.loading')));
  const all = new Map();
  const when = (x) => x ? dateTime(x) : '—';
  const render = () => {
    if (!all.size) {
      body.replaceChildren(h('p', {class: 'empty'}, ...tp('schedules.none', {submit: h('a', {href: '/submit'}, t('schedules.none.submit')),
        cmd: h('code', {}, 'gantry run --schedule "0 3 * * *" …')})));
      return;
    }
    const col = {schedule: t('schedules.col.schedule'), cron: t('schedules.col.cron'), next: t('schedules.col.next'), runs: t('schedules.col.runs'), skipped: t('schedules.col.skipped'), last: t('schedules.col.last')};
    const rows = [...all.values()].sort((a, b) => a.id.localeCompare(b.id)).map((s) => h('tr', {'data-schedule': s.id},
      h('td', {'data-label': col.schedule}, h('strong', {}, s.name || s.id), h('div', {class: 'muted small'}, s.spec.image + (s.spec.command ? ' ' + s.spec.command.join(' ') : '')),
        app.me.admin && s.owner !== app.me.name ? h('div', {class: 'muted small'}, t('schedules.owner', {owner: s.owner})) : null),
      h('td', {'data-label': col.cron}, h('code', {}, s.cron)),
      h('td', {'data-label': col.next, class: 'next'}, s.paused ? h('span', {class: 'badge s-cancelled'}, t('schedules.paused')) : when(s.next_run)),
      h('td', {'data-label': col.runs, class: 'num runs'}, String(s.runs)),
      h('td', {'data-label': col.skipped, class: 'num', title: t('schedules.skipped.title')}, String(s.skipped || 0)),
      h('td', {'data-label': col.last}, s.last_job ? h('a', {href: `/jobs/${s.last_job}`}, time(s.last_run)) : '—'),
      h('td', {class: 'right'},
        h('button', {class: 'small', onclick: () => act(s, s.paused ? 'resume' : 'pause')}, s.paused ? t('schedules.resume') : t('schedules.pause')), ' ',
        h('button', {class: 'small danger', onclick: () => remove(s)}, t('common.remove')))));
    body.replaceChildren(h('table', {class: 'cards schedules'}, h('thead', {}, h('tr', {},
      h('th', {}, col.schedule), h('th', {}, col.cron), h('th', {}, col.next), h('th', {}, col.runs), h('th', {}, col.skipped), h('th', {}, col.last), h('th', {}, ''))),
    h('tbody', {}, rows)));
  };
  const act = async (s, verb) => {
    try { const r = await post(`/schedules/${encodeURIComponent(s.id)}/${verb}`); all.set(r.id, r); render(); } catch (e) { toast(e.message); }
  };
  const remove = async (s) => {
    if (!confirm(t('schedules.remove.confirm', {name: s.name || s.id}))) return;
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
  main.append(h('h1', {}, t('schedules.title')), h('p', {class: 'muted'}, t('schedules.intro')), body);
  load().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
  return () => { if (off) off(); };
}
