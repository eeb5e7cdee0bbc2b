// The community catalog: browse and search published images, an image's
// page (README, licence, tags, notices, the caller's status with accept or
// request-access, "Try it" with its live log), the publisher's access
// page, and the publish form used from the images page.
import {h, time, toast, bytes, badge, terminal, refreshTimes} from './util.js';
import {t, tp, tk, lang} from './i18n.js';
import {get, post, api, qs} from './api.js';
import {LogView} from './logview.js';

const enc = encodeURIComponent;

/** genaiTag is the visible label of generative-AI content. */
export function genaiTag() {
  return h('span', {class: 'tag genai', title: t('genai.title')}, t('genai.tag'));
}

/** kindTag labels a published dataset or model (an image needs none). */
function kindTag(kind) {
  return kind === 'dataset' || kind === 'model' ? h('span', {class: `tag kind ${kind}`}, t(`catalog.kind.${kind}`)) : null;
}

const STATUS_TEXT = {
  owner: tk('entry.status.owner'),
  must_accept: tk('entry.status.must_accept'),
  must_request: tk('entry.status.must_request'),
  pending: tk('entry.status.pending'),
  rejected: tk('entry.status.rejected'),
  accepted: tk('entry.status.accepted'),
};

const REQUEST_STATE = {pending: tk('access.state.pending'), approved: tk('access.state.approved'), rejected: tk('access.state.rejected'), revoked: tk('access.state.revoked')};

export function catalogPage(app) {
  const main = document.getElementById('main');
  const q = h('input', {type: 'search', id: 'c-q', placeholder: t('catalog.search.placeholder'), 'aria-label': t('catalog.search')});
  const sort = h('select', {id: 'c-sort', 'aria-label': t('catalog.sort')}, h('option', {value: 'recent'}, t('catalog.sort.recent')), h('option', {value: 'pulls'}, t('catalog.sort.pulls')), h('option', {value: 'name'}, t('submit.name')));
  const access = h('select', {id: 'c-access', 'aria-label': t('catalog.access')}, h('option', {value: ''}, t('catalog.access.any')), h('option', {value: 'open'}, t('catalog.access.open')), h('option', {value: 'approval'}, t('catalog.access.approval')));
  const kind = h('select', {id: 'c-kind', 'aria-label': t('catalog.kind')}, h('option', {value: ''}, t('catalog.kind.any')), h('option', {value: 'image'}, t('catalog.kind.image')), h('option', {value: 'dataset'}, t('catalog.kind.dataset')), h('option', {value: 'model'}, t('catalog.kind.model')));
  const genai = h('select', {id: 'c-genai', 'aria-label': t('catalog.genai')}, h('option', {value: ''}, t('catalog.genai.any')), h('option', {value: 'true'}, t('catalog.genai')), h('option', {value: 'false'}, t('catalog.genai.not')));
  const license = h('input', {type: 'text', id: 'c-license', placeholder: t('catalog.licence.placeholder'), 'aria-label': t('images.col.licence'), size: 14});
  const list = h('div', {id: 'catalog-list'}, h('p', {class: 'muted'}, t('common.loading')));
  let timer = null, gen = 0;
  const load = async () => {
    const my = ++gen;
    try {
      const r = await get('/catalog' + qs({q: q.value.trim(), sort: sort.value, access: access.value, kind: kind.value, genai: genai.value, license: license.value.trim(), limit: 200}));
      if (my !== gen) return;
      render(r.entries || []);
    } catch (e) { list.replaceChildren(h('p', {class: 'error'}, e.message)); }
  };
  const render = (entries) => {
    if (!entries.length) { list.replaceChildren(h('p', {class: 'empty'}, t('catalog.none'))); return; }
    list.replaceChildren(h('ul', {class: 'catalog'}, entries.map((e) => h('li', {class: 'card entry', 'data-repo': e.repo},
      h('div', {class: 'head'}, h('a', {href: `/catalog/${e.repo}`, class: 'name'}, e.repo), kindTag(e.kind), e.genai ? genaiTag() : null,
        h('span', {class: 'tag access'}, e.access === 'approval' ? t('access.approval') : t('access.open'))),
      e.description ? h('p', {}, e.description) : null,
      h('div', {class: 'muted small'}, h('span', {class: 'licence'}, e.licence.expression),
        (e.notices || []).map((n) => h('span', {class: 'notice'}, ` + ${n.licence.expression} (${n.base})`)),
        ' · ', t('catalog.pulls', {n: e.pulls}), ' · ', time(e.updated))))));
    refreshTimes(list);
  };
  for (const el of [sort, access, kind, genai]) el.addEventListener('change', load);
  for (const el of [q, license]) el.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  main.append(h('h1', {}, t('catalog.title')),
    h('p', {class: 'notice-box'}, t('catalog.intro')),
    h('div', {class: 'filters'}, q, license, kind, access, genai, sort), list);
  load();
  return () => clearTimeout(timer);
}

// statement shows one statement of the service terms in the language shown,
// the other language under it: the Chinese text is the one that binds.
function statement(st) {
  const zhFirst = lang() === 'zh-CN';
  return h('div', {class: 'statement'},
    h('p', {lang: zhFirst ? 'zh-CN' : 'en'}, `[${st.clause}] ${zhFirst ? st.zh : st.en}`),
    h('p', {lang: zhFirst ? 'en' : 'zh-CN', class: 'muted'}, zhFirst ? st.en : st.zh));
}

export function catalogEntryPage(app, repo) {
  const main = document.getElementById('main');
  const body = h('div', {}, h('p', {class: 'muted'}, t('common.loading')));
  main.append(h('h1', {}, repo), body);
  let log = null, offJobs = null;
  const render = (d, trial) => {
    const host = location.host;
    const tag = (d.tags.find((x) => x.tag === 'latest') || d.tags[0] || {tag: 'latest'}).tag;
    const status = d.status || {};
    const action = h('div', {class: 'actions', id: 'status-actions'});
    const answers = (d.questions || []).map((q, i) => h('label', {class: 'field'}, h('span', {}, q), h('input', {type: 'text', id: `answer-${i}`})));
    const getAnswers = () => answers.map((l) => l.querySelector('input').value);
    const accept = async () => {
      try { await post('/images/accept', {repo: d.repo, licence: d.licence.version, answers: getAnswers()}); toast(t('entry.accepted'), 'ok'); await reload(); } catch (e) { toast(e.message); }
    };
    const request = async () => {
      try { await post('/images/request', {repo: d.repo, answers: getAnswers()}); toast(t('entry.requested'), 'ok'); await reload(); } catch (e) { toast(e.message); }
    };
    switch (status.state) {
      case 'must_accept': action.append(h('button', {id: 'accept', class: 'primary', onclick: accept}, t('entry.accept'))); break;
      case 'must_request': case 'rejected': action.append(...answers, h('button', {id: 'request', class: 'primary', onclick: request}, status.state === 'rejected' ? t('entry.askagain') : t('entry.request'))); break;
      case 'owner': action.append(h('a', {class: 'button', href: `/catalog/${d.repo}/access`, id: 'manage-access'}, t('entry.manage'))); break;
    }
    const col = {tag: t('entry.col.tag'), digest: t('entry.col.digest'), size: t('common.size'), pushed: t('entry.col.pushed')};
    const tryBox = h('section', {class: 'card try', id: 'try'});
    const renderTry = (tr) => {
      const left = tr ? Math.floor(tr.left_cpu_seconds) : 0;
      const allowance = tr ? tr.allowance.cpu_seconds_per_day : 0;
      const can = (status.state === 'accepted' || status.state === 'owner') && left > 0;
      // replaceChildren would print a null as the text "null".
      tryBox.replaceChildren(...[h('h2', {}, t('try.title')),
        allowance ? h('p', {class: 'muted small'}, ...tp('try.body', {cmd: d.command && d.command.length ? h('code', {}, d.command.join(' ')) : t('try.owncommand'),
          left: h('strong', {id: 'trial-left'}, t('try.left', {left, n: allowance}))}))
          : h('p', {class: 'muted small'}, t('try.off')),
        allowance ? h('button', {id: 'try-it', disabled: !can, onclick: runTry, title: can ? '' : (left <= 0 ? t('try.usedup.title') : t('try.acceptfirst'))}, left <= 0 ? t('try.usedup') : t('try.title')) : null,
        h('div', {id: 'try-job'}), log ? log.el : null].filter(Boolean));
    };
    const runTry = async () => {
      try {
        const r = await post('/catalog/try', {repo: d.repo});
        renderTry(r.trial);
        const jobEl = document.getElementById('try-job');
        const show = (j) => jobEl.replaceChildren(h('a', {href: `/jobs/${j.id}`}, t('try.job')), ' ', badge(j.state), j.genai ? genaiTag() : null);
        show(r.job);
        if (offJobs) offJobs();
        offJobs = app.live.on((m) => {
          if (m.type === 'job' && m.job.id === r.job.id) {
            show(m.job);
            if (terminal(m.job.state)) get('/catalog/trial').then(renderTry).catch(() => {});
          }
        });
        log = new LogView();
        tryBox.append(log.el);
        log.open(r.job.id, 0, 0);
      } catch (e) { toast(e.message); get('/catalog/trial').then(renderTry).catch(() => {}); }
    };
    const notices = (d.notices || []).map((n) => h('li', {class: 'notice'}, ...tp('notice.builton.version', {base: h('a', {href: `/catalog/${n.base}`}, n.base),
      licence: n.licence.expression, version: n.licence.version.slice(7, 19), owner: n.base_owner})));
    const readme = h('div', {class: 'readme'});
    if (d.readme_html) readme.innerHTML = d.readme_html; // rendered and sanitised by the server
    else readme.append(h('p', {class: 'muted'}, t('entry.noreadme')));
    body.replaceChildren(
      h('div', {class: 'entry-head'}, h('span', {class: 'muted'}, t('entry.by', {owner: d.owner})), kindTag(d.kind), d.genai ? genaiTag() : null,
        h('span', {class: 'tag'}, d.access === 'approval' ? t('access.approval') : t('access.open')), h('span', {class: 'tag'}, d.use === 'commercial' ? t('entry.use.commercial') : t('entry.use.research')),
        h('span', {class: 'muted small'}, t('catalog.pulls', {n: d.pulls}))),
      d.description ? h('p', {class: 'lead'}, d.description) : null,
      h('section', {class: 'card status', id: 'status', 'data-state': status.state},
        h('h2', {}, t('entry.access')), h('p', {}, STATUS_TEXT[status.state] ? t(STATUS_TEXT[status.state]) : status.state),
        status.message ? h('p', {class: status.state === 'rejected' ? 'error' : 'muted', id: 'status-message'}, status.message) : null, action),
      h('section', {class: 'card'}, h('h2', {}, t('images.col.licence')), h('p', {}, h('strong', {id: 'licence-expr'}, d.licence.expression), ' ', h('span', {class: 'muted small'}, t('entry.version', {version: d.licence.version.slice(7, 19)}))),
        notices.length ? h('ul', {class: 'notices'}, notices) : null,
        h('pre', {class: 'licence-text'}, d.licence_text)),
      h('section', {class: 'card terms'}, h('h2', {}, t('entry.terms')),
        (d.terms || []).map(statement)),
      h('section', {class: 'card'}, h('h2', {}, t('entry.use')),
        h('div', {class: 'cmd'}, h('code', {}, `docker pull ${host}/${d.repo}:${tag}`)),
        h('div', {class: 'cmd'}, h('code', {}, `gantry run ${d.repo}:${tag}`)),
        h('table', {class: 'cards tags'}, h('thead', {}, h('tr', {}, h('th', {}, col.tag), h('th', {}, col.digest), h('th', {}, col.size), h('th', {}, col.pushed))),
          h('tbody', {}, d.tags.map((x) => h('tr', {}, h('td', {'data-label': col.tag}, x.tag), h('td', {'data-label': col.digest}, h('code', {}, x.digest.slice(0, 19))),
            h('td', {'data-label': col.size}, bytes(x.size)), h('td', {'data-label': col.pushed}, time(x.pushed))))))),
      tryBox,
      h('section', {class: 'card'}, h('h2', {}, 'README'), readme));
    renderTry(trial);
    refreshTimes(body);
  };
  const reload = async () => {
    const [d, tr] = await Promise.all([get('/catalog/entry' + qs({repo})), get('/catalog/trial').catch(() => null)]);
    render(d, tr);
  };
  reload().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
  return () => { if (log) log.close(); if (offJobs) offJobs(); };
}

export function accessPage(app, repo) {
  const main = document.getElementById('main');
  const body = h('div', {}, h('p', {class: 'muted'}, t('common.loading')));
  main.append(h('h1', {}, t('access.title', {repo})), h('p', {}, h('a', {href: `/catalog/${repo}`}, t('access.back'))), body);
  const decide = async (user, decision) => {
    let reason = '';
    if (decision !== 'approve') {
      reason = document.getElementById(`reason-${user}`).value.trim();
      if (!reason) { toast(t('access.reason.needed')); return; }
    }
    try { await post('/images/access/decide', {repo, user, decision, reason}); await load(); } catch (e) { toast(e.message); }
  };
  const load = async () => {
    const r = await get('/images/access' + qs({repo}));
    const col = {user: t('users.col.user'), state: t('jobs.col.state'), answers: t('access.col.answers'), asked: t('access.col.asked'), decide: t('access.col.decide'),
      licence: t('images.col.licence'), accepted: t('access.col.accepted')};
    const rows = (r.requests || []).map((q) => h('tr', {'data-user': q.user, 'data-state': q.state},
      h('td', {'data-label': col.user}, h('strong', {}, q.user)), h('td', {'data-label': col.state}, h('span', {class: `badge a-${q.state}`}, REQUEST_STATE[q.state] ? t(REQUEST_STATE[q.state]) : q.state)),
      h('td', {'data-label': col.answers}, (q.answers || []).join(' · ') || '—'), h('td', {'data-label': col.asked}, time(q.requested)),
      h('td', {'data-label': col.decide, class: 'right'},
        q.state !== 'approved' ? h('button', {class: 'small approve', onclick: () => decide(q.user, 'approve')}, t('access.approve')) : null,
        h('input', {type: 'text', id: `reason-${q.user}`, placeholder: t('access.reason'), size: 16, 'aria-label': t('access.reason.for', {user: q.user})}),
        q.state === 'pending' ? h('button', {class: 'small reject', onclick: () => decide(q.user, 'reject')}, t('access.reject')) : null,
        q.state === 'approved' ? h('button', {class: 'small danger revoke', onclick: () => decide(q.user, 'revoke')}, t('access.revoke')) : null)));
    const acs = (r.acceptances || []).map((a) => h('tr', {}, h('td', {'data-label': col.user}, a.user), h('td', {'data-label': col.licence}, a.licence.expression),
      h('td', {'data-label': col.answers}, (a.answers || []).join(' · ') || '—'), h('td', {'data-label': col.accepted}, time(a.at))));
    const blob = new Blob([JSON.stringify(r, null, 2)], {type: 'application/json'});
    body.replaceChildren(
      h('section', {class: 'card'}, h('h2', {}, t('access.requests')), rows.length ? h('table', {class: 'cards requests'},
        h('thead', {}, h('tr', {}, h('th', {}, col.user), h('th', {}, col.state), h('th', {}, col.answers), h('th', {}, col.asked), h('th', {}, ''))), h('tbody', {}, rows)) : h('p', {class: 'empty'}, t('access.requests.none'))),
      h('section', {class: 'card'}, h('h2', {}, t('access.acceptances')), acs.length ? h('table', {class: 'cards'},
        h('thead', {}, h('tr', {}, h('th', {}, col.user), h('th', {}, col.licence), h('th', {}, col.answers), h('th', {}, col.accepted))), h('tbody', {}, acs)) : h('p', {class: 'empty'}, t('access.acceptances.none')),
        h('a', {class: 'button small', href: URL.createObjectURL(blob), download: `${repo.replace('/', '-')}-access.json`}, t('access.export'))));
    refreshTimes(body);
  };
  load().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
}

/** publishForm is the form that publishes repo (shown on the images page). */
export function publishForm(app, repo, done) {
  const field = (label, input, hint) => h('label', {class: 'field'}, h('span', {}, label), input, hint ? h('small', {class: 'muted'}, hint) : null);
  const licence = h('input', {type: 'text', name: 'license', value: 'MIT', required: true});
  const description = h('input', {type: 'text', name: 'description', maxlength: 1000});
  const readme = h('textarea', {name: 'readme', rows: 6, placeholder: '# Markdown'});
  const accessSel = h('select', {name: 'access'}, h('option', {value: 'open'}, t('publish.access.open')), h('option', {value: 'approval'}, t('publish.access.approval')));
  const questions = h('textarea', {name: 'questions', rows: 2, placeholder: t('publish.questions.placeholder')});
  const genai = h('input', {type: 'checkbox', name: 'genai'});
  const filed = h('input', {type: 'checkbox', name: 'genai_filed'});
  const use = h('select', {name: 'use'}, h('option', {value: 'research'}, t('publish.use.research')), h('option', {value: 'commercial'}, t('publish.use.commercial')));
  const err = h('p', {class: 'error', role: 'alert'});
  const form = h('form', {class: 'publish card'},
    h('h3', {}, t('publish.title', {repo})),
    field(t('publish.licence'), licence, t('publish.licence.hint')), field(t('publish.description'), description), field('README', readme),
    field(t('catalog.access'), accessSel), field(t('publish.questions'), questions),
    h('label', {class: 'check'}, genai, ' ', t('publish.genai')),
    h('label', {class: 'check'}, filed, ' ', t('publish.filed')),
    field(t('publish.use'), use),
    h('p', {class: 'muted small'}, t('publish.grant')),
    err, h('button', {type: 'submit', class: 'primary'}, t('publish.submit')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await post('/images/publish', {repo, license: licence.value.trim(), description: description.value, readme: readme.value, access: accessSel.value,
        questions: questions.value.split('\n').map((s) => s.trim()).filter(Boolean), genai: genai.checked, genai_filed: filed.checked, use: use.value});
      done(repo);
    } catch (e2) { err.textContent = e2.message; }
  });
  return form;
}
