// The community catalog: browse and search published images, an image's
// page (README, licence, tags, notices, the caller's status with accept or
// request-access, "Try it" with its live log), the publisher's access
// page, and the publish form used from the images page.
import {h, time, toast, bytes, badge, terminal, refreshTimes} from './util.js';
import {get, post, api, qs} from './api.js';
import {LogView} from './logview.js';

const enc = encodeURIComponent;

/** genaiTag is the visible label of generative-AI content. */
export function genaiTag() {
  return h('span', {class: 'tag genai', title: 'generated or synthesised content: label what it produces (service terms 2.1.4.1 (3))'}, 'generative AI');
}

const STATUS_TEXT = {
  owner: 'You publish this image.',
  must_accept: 'Accept the licence to pull and run it.',
  must_request: 'Shared by invitation: ask the publisher for access.',
  pending: 'Your request waits for the publisher.',
  rejected: 'The publisher refused your request.',
  accepted: 'You accepted the licence: you can pull and run it.',
};

export function catalogPage(app) {
  const main = document.getElementById('main');
  const q = h('input', {type: 'search', id: 'c-q', placeholder: 'Search names and descriptions', 'aria-label': 'Search'});
  const sort = h('select', {id: 'c-sort', 'aria-label': 'Sort'}, h('option', {value: 'recent'}, 'Recently updated'), h('option', {value: 'pulls'}, 'Most pulled'), h('option', {value: 'name'}, 'Name'));
  const access = h('select', {id: 'c-access', 'aria-label': 'Access'}, h('option', {value: ''}, 'Any access'), h('option', {value: 'open'}, 'Open'), h('option', {value: 'approval'}, 'By approval'));
  const genai = h('select', {id: 'c-genai', 'aria-label': 'Generative AI'}, h('option', {value: ''}, 'Any kind'), h('option', {value: 'true'}, 'Generative AI'), h('option', {value: 'false'}, 'Not generative AI'));
  const license = h('input', {type: 'text', id: 'c-license', placeholder: 'Licence (SPDX id)', 'aria-label': 'Licence', size: 14});
  const list = h('div', {id: 'catalog-list'}, h('p', {class: 'muted'}, 'Loading…'));
  let timer = null, gen = 0;
  const load = async () => {
    const my = ++gen;
    try {
      const r = await get('/catalog' + qs({q: q.value.trim(), sort: sort.value, access: access.value, genai: genai.value, license: license.value.trim(), limit: 200}));
      if (my !== gen) return;
      render(r.entries || []);
    } catch (e) { list.replaceChildren(h('p', {class: 'error'}, e.message)); }
  };
  const render = (entries) => {
    if (!entries.length) { list.replaceChildren(h('p', {class: 'empty'}, 'No published image matches.')); return; }
    list.replaceChildren(h('ul', {class: 'catalog'}, entries.map((e) => h('li', {class: 'card entry', 'data-repo': e.repo},
      h('div', {class: 'head'}, h('a', {href: `/catalog/${e.repo}`, class: 'name'}, e.repo), e.genai ? genaiTag() : null,
        h('span', {class: 'tag access'}, e.access === 'approval' ? 'by approval' : 'open')),
      e.description ? h('p', {}, e.description) : null,
      h('div', {class: 'muted small'}, h('span', {class: 'licence'}, e.licence.expression),
        (e.notices || []).map((n) => h('span', {class: 'notice'}, ` + ${n.licence.expression} (${n.base})`)),
        ` · ${e.pulls} pull${e.pulls === 1 ? '' : 's'} · `, time(e.updated))))));
    refreshTimes(list);
  };
  for (const el of [sort, access, genai]) el.addEventListener('change', load);
  for (const el of [q, license]) el.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  main.append(h('h1', {}, 'Community images'),
    h('p', {class: 'notice-box'}, 'Images, models and data other users share under licences of their own. Community images are for personal learning and research; read each one\'s licence before you use it, and judge what AI models produce yourself (service terms 2.2.2.2).'),
    h('div', {class: 'filters'}, q, license, access, genai, sort), list);
  load();
  return () => clearTimeout(timer);
}

export function catalogEntryPage(app, repo) {
  const main = document.getElementById('main');
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  main.append(h('h1', {}, repo), body);
  let log = null, offJobs = null;
  const render = (d, trial) => {
    const host = location.host;
    const tag = (d.tags.find((t) => t.tag === 'latest') || d.tags[0] || {tag: 'latest'}).tag;
    const status = d.status || {};
    const action = h('div', {class: 'actions', id: 'status-actions'});
    const answers = (d.questions || []).map((q, i) => h('label', {class: 'field'}, h('span', {}, q), h('input', {type: 'text', id: `answer-${i}`})));
    const getAnswers = () => answers.map((l) => l.querySelector('input').value);
    const accept = async () => {
      try { await post('/images/accept', {repo: d.repo, licence: d.licence.version, answers: getAnswers()}); toast('Licence accepted', 'ok'); await reload(); } catch (e) { toast(e.message); }
    };
    const request = async () => {
      try { await post('/images/request', {repo: d.repo, answers: getAnswers()}); toast('Access requested', 'ok'); await reload(); } catch (e) { toast(e.message); }
    };
    switch (status.state) {
      case 'must_accept': action.append(h('button', {id: 'accept', class: 'primary', onclick: accept}, 'Accept the licence')); break;
      case 'must_request': case 'rejected': action.append(...answers, h('button', {id: 'request', class: 'primary', onclick: request}, status.state === 'rejected' ? 'Ask again' : 'Request access')); break;
      case 'owner': action.append(h('a', {class: 'button', href: `/catalog/${d.repo}/access`, id: 'manage-access'}, 'Access requests and acceptances')); break;
    }
    const tryBox = h('section', {class: 'card try', id: 'try'});
    const renderTry = (t) => {
      const left = t ? Math.floor(t.left_cpu_seconds) : 0;
      const allowance = t ? t.allowance.cpu_seconds_per_day : 0;
      const can = (status.state === 'accepted' || status.state === 'owner') && left > 0;
      // replaceChildren would print a null as the text "null".
      tryBox.replaceChildren(...[h('h2', {}, 'Try it'),
        allowance ? h('p', {class: 'muted small'}, 'Runs ', d.command && d.command.length ? h('code', {}, d.command.join(' ')) : 'the image\'s own command',
          ' under the trial allowance: ', h('strong', {id: 'trial-left'}, `${left} of ${allowance} CPU-seconds left today`), '. Nothing it writes is kept.')
          : h('p', {class: 'muted small'}, 'Trials are off on this installation.'),
        allowance ? h('button', {id: 'try-it', disabled: !can, onclick: runTry, title: can ? '' : (left <= 0 ? 'today\'s allowance is used up' : 'accept the licence first')}, left <= 0 ? 'Allowance used up' : 'Try it') : null,
        h('div', {id: 'try-job'}), log ? log.el : null].filter(Boolean));
    };
    const runTry = async () => {
      try {
        const r = await post('/catalog/try', {repo: d.repo});
        renderTry(r.trial);
        const jobEl = document.getElementById('try-job');
        const show = (j) => jobEl.replaceChildren(h('a', {href: `/jobs/${j.id}`}, 'Trial job'), ' ', badge(j.state), j.genai ? genaiTag() : null);
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
    const notices = (d.notices || []).map((n) => h('li', {class: 'notice'}, 'Built on ', h('a', {href: `/catalog/${n.base}`}, n.base), `: ${n.licence.expression} (version ${n.licence.version.slice(7, 19)}); only ${n.base_owner} can remove this notice.`));
    const readme = h('div', {class: 'readme'});
    readme.innerHTML = d.readme_html || '<p class="muted">No README.</p>'; // rendered and sanitised by the server
    body.replaceChildren(
      h('div', {class: 'entry-head'}, h('span', {class: 'muted'}, `by ${d.owner}`), d.genai ? genaiTag() : null,
        h('span', {class: 'tag'}, d.access === 'approval' ? 'by approval' : 'open'), h('span', {class: 'tag'}, d.use === 'commercial' ? 'commercial use allowed' : 'learning and research'),
        h('span', {class: 'muted small'}, `${d.pulls} pulls`)),
      d.description ? h('p', {class: 'lead'}, d.description) : null,
      h('section', {class: 'card status', id: 'status', 'data-state': status.state},
        h('h2', {}, 'Your access'), h('p', {}, STATUS_TEXT[status.state] || status.state),
        status.message ? h('p', {class: status.state === 'rejected' ? 'error' : 'muted', id: 'status-message'}, status.message) : null, action),
      h('section', {class: 'card'}, h('h2', {}, 'Licence'), h('p', {}, h('strong', {id: 'licence-expr'}, d.licence.expression), h('span', {class: 'muted small'}, ` version ${d.licence.version.slice(7, 19)}`)),
        notices.length ? h('ul', {class: 'notices'}, notices) : null,
        h('pre', {class: 'licence-text'}, d.licence_text)),
      h('section', {class: 'card terms'}, h('h2', {}, 'Before you use it'),
        (d.terms || []).map((t) => h('div', {class: 'statement'}, h('p', {}, `[${t.clause}] ${t.en}`), h('p', {lang: 'zh', class: 'muted'}, t.zh)))),
      h('section', {class: 'card'}, h('h2', {}, 'Use it'),
        h('div', {class: 'cmd'}, h('code', {}, `docker pull ${host}/${d.repo}:${tag}`)),
        h('div', {class: 'cmd'}, h('code', {}, `gantry run ${d.repo}:${tag}`)),
        h('table', {class: 'cards tags'}, h('thead', {}, h('tr', {}, h('th', {}, 'Tag'), h('th', {}, 'Digest'), h('th', {}, 'Size'), h('th', {}, 'Pushed'))),
          h('tbody', {}, d.tags.map((t) => h('tr', {}, h('td', {'data-label': 'Tag'}, t.tag), h('td', {'data-label': 'Digest'}, h('code', {}, t.digest.slice(0, 19))),
            h('td', {'data-label': 'Size'}, bytes(t.size)), h('td', {'data-label': 'Pushed'}, time(t.pushed))))))),
      tryBox,
      h('section', {class: 'card'}, h('h2', {}, 'README'), readme));
    renderTry(trial);
    refreshTimes(body);
  };
  const reload = async () => {
    const [d, t] = await Promise.all([get('/catalog/entry' + qs({repo})), get('/catalog/trial').catch(() => null)]);
    render(d, t);
  };
  reload().catch((e) => body.replaceChildren(h('p', {class: 'error'}, e.message)));
  return () => { if (log) log.close(); if (offJobs) offJobs(); };
}

export function accessPage(app, repo) {
  const main = document.getElementById('main');
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  main.append(h('h1', {}, `Access to ${repo}`), h('p', {}, h('a', {href: `/catalog/${repo}`}, '← the catalog page')), body);
  const decide = async (user, decision) => {
    let reason = '';
    if (decision !== 'approve') {
      reason = document.getElementById(`reason-${user}`).value.trim();
      if (!reason) { toast('Say why: the user is shown your reason'); return; }
    }
    try { await post('/images/access/decide', {repo, user, decision, reason}); await load(); } catch (e) { toast(e.message); }
  };
  const load = async () => {
    const r = await get('/images/access' + qs({repo}));
    const rows = (r.requests || []).map((q) => h('tr', {'data-user': q.user, 'data-state': q.state},
      h('td', {'data-label': 'User'}, h('strong', {}, q.user)), h('td', {'data-label': 'State'}, h('span', {class: `badge a-${q.state}`}, q.state)),
      h('td', {'data-label': 'Answers'}, (q.answers || []).join(' · ') || '—'), h('td', {'data-label': 'Asked'}, time(q.requested)),
      h('td', {'data-label': 'Decide', class: 'right'},
        q.state !== 'approved' ? h('button', {class: 'small approve', onclick: () => decide(q.user, 'approve')}, 'Approve') : null,
        h('input', {type: 'text', id: `reason-${q.user}`, placeholder: 'Reason', size: 16, 'aria-label': `Reason for ${q.user}`}),
        q.state === 'pending' ? h('button', {class: 'small reject', onclick: () => decide(q.user, 'reject')}, 'Reject') : null,
        q.state === 'approved' ? h('button', {class: 'small danger revoke', onclick: () => decide(q.user, 'revoke')}, 'Revoke') : null)));
    const acs = (r.acceptances || []).map((a) => h('tr', {}, h('td', {'data-label': 'User'}, a.user), h('td', {'data-label': 'Licence'}, a.licence.expression),
      h('td', {'data-label': 'Answers'}, (a.answers || []).join(' · ') || '—'), h('td', {'data-label': 'Accepted'}, time(a.at))));
    const blob = new Blob([JSON.stringify(r, null, 2)], {type: 'application/json'});
    body.replaceChildren(
      h('section', {class: 'card'}, h('h2', {}, 'Requests'), rows.length ? h('table', {class: 'cards requests'},
        h('thead', {}, h('tr', {}, h('th', {}, 'User'), h('th', {}, 'State'), h('th', {}, 'Answers'), h('th', {}, 'Asked'), h('th', {}, ''))), h('tbody', {}, rows)) : h('p', {class: 'empty'}, 'Nobody has asked.')),
      h('section', {class: 'card'}, h('h2', {}, 'Licence acceptances'), acs.length ? h('table', {class: 'cards'},
        h('thead', {}, h('tr', {}, h('th', {}, 'User'), h('th', {}, 'Licence'), h('th', {}, 'Answers'), h('th', {}, 'Accepted'))), h('tbody', {}, acs)) : h('p', {class: 'empty'}, 'Nobody has accepted the licence yet.'),
        h('a', {class: 'button small', href: URL.createObjectURL(blob), download: `${repo.replace('/', '-')}-access.json`}, 'Export as JSON')));
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
  const accessSel = h('select', {name: 'access'}, h('option', {value: 'open'}, 'Open: anyone who accepts the licence'), h('option', {value: 'approval'}, 'By approval: you approve each user'));
  const questions = h('textarea', {name: 'questions', rows: 2, placeholder: 'One question per line (approval mode)'});
  const genai = h('input', {type: 'checkbox', name: 'genai'});
  const filed = h('input', {type: 'checkbox', name: 'genai_filed'});
  const use = h('select', {name: 'use'}, h('option', {value: 'research'}, 'Learning and research'), h('option', {value: 'commercial'}, 'Commercial use allowed'));
  const err = h('p', {class: 'error', role: 'alert'});
  const form = h('form', {class: 'publish card'},
    h('h3', {}, `Publish ${repo}`),
    field('Licence (SPDX expression)', licence, 'e.g. MIT, Apache-2.0 OR MIT'), field('Description', description), field('README', readme),
    field('Access', accessSel), field('Questions', questions),
    h('label', {class: 'check'}, genai, ' It performs generative AI or deep synthesis'),
    h('label', {class: 'check'}, filed, ' Its safety assessment and filing are complete (service terms 2.2.2.1 (2))'),
    field('Intended use', use),
    h('p', {class: 'muted small'}, 'By publishing you grant every user a licence to use your content through this service, warrant you hold its rights, and agree community images offer no commercial service without permission (service terms 2.1.2.1, 2.1.4.1 (5), 2.2.2.1 (1)).'),
    err, h('button', {type: 'submit', class: 'primary'}, 'Publish'));
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
