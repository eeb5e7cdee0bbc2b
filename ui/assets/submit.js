// The submit-job form. The API validates; its "field: message" errors are
// shown next to the field they name.
import {h} from './util.js';
import {t} from './i18n.js';
import {get, post, APIError} from './api.js';
import {field, showError, busy} from './app.js';

/** splitArgs splits a command line on spaces, honouring '…' and "…" quotes. */
export function splitArgs(s) {
  const out = [];
  let cur = '', q = '', any = false;
  for (const ch of s) {
    if (q) { if (ch === q) q = ''; else cur += ch; continue; }
    if (ch === '"' || ch === "'") { q = ch; any = true; continue; }
    if (/\s/.test(ch)) { if (cur || any) out.push(cur); cur = ''; any = false; continue; }
    cur += ch;
  }
  if (q) throw new APIError(400, 'command: ' + t('submit.err.quote'));
  if (cur || any) out.push(cur);
  return out;
}

function num(input, name, {scale = 1} = {}) {
  const v = input.value.trim();
  if (v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new APIError(400, `${name}: ` + t('submit.err.number'));
  return Math.round(n * scale);
}

export function submitPage(app) {
  const main = document.getElementById('main');
  const i = (attrs) => h('input', attrs);
  const name = i({placeholder: t('submit.optional'), maxlength: 200});
  const image = i({value: 'gantry/toolbox', required: true, autocapitalize: 'none', spellcheck: 'false'});
  const command = i({placeholder: t('submit.command.placeholder'), autocapitalize: 'none', spellcheck: 'false'});
  const array = i({type: 'number', min: 1, max: 10000, value: 1, inputmode: 'numeric'});
  const cpu = i({type: 'number', min: 10, step: 10, value: 1000, inputmode: 'numeric'});
  const memory = i({type: 'number', min: 6, value: 256, inputmode: 'numeric'});
  const retries = i({type: 'number', min: 0, max: 10, value: 0, inputmode: 'numeric'});
  const timeout = i({placeholder: t('submit.timeout.placeholder'), autocapitalize: 'none'});
  const priority = i({type: 'number', min: -1000, max: 1000, value: 0, inputmode: 'numeric'});
  const queue = i({placeholder: 'default', autocapitalize: 'none', list: 'queue-names'});
  const queueNames = h('datalist', {id: 'queue-names'});
  get('/queues').then((r) => queueNames.replaceChildren(...r.queues.map((q) => h('option', {value: q.name}, t('submit.queue.weight', {weight: q.weight}))))).catch(() => {});
  const env = h('textarea', {rows: 3, placeholder: t('submit.env.placeholder'), spellcheck: 'false'});
  const constraints = i({placeholder: t('submit.constraints.placeholder'), autocapitalize: 'none', spellcheck: 'false'});
  const cron = i({placeholder: t('submit.cron.placeholder'), autocapitalize: 'none', spellcheck: 'false'});
  const inputs = h('textarea', {rows: 2, placeholder: t('submit.inputs.placeholder'), spellcheck: 'false', autocapitalize: 'none'});
  const output = i({placeholder: t('submit.output.placeholder'), autocapitalize: 'none', spellcheck: 'false'});
  const outputLimit = i({type: 'number', min: 1, placeholder: '1024', inputmode: 'numeric'});
  const keepFailed = i({type: 'checkbox', id: 'f-keep-failed'});

  const form = h('form', {class: 'card submit', novalidate: true},
    h('div', {class: 'form-err', role: 'alert', hidden: true}),
    h('div', {class: 'row'}, field('image', t('submit.image'), image, t('submit.image.hint')), field('name', t('submit.name'), name)),
    field('command', t('submit.command'), command, t('submit.command.hint')),
    h('div', {class: 'row'},
      field('array', t('submit.array'), array, t('submit.array.hint')),
      field('cpu', t('submit.cpu'), cpu, t('submit.cpu.hint')),
      field('memory', t('submit.memory'), memory)),
    h('div', {class: 'row'},
      field('retries', t('submit.retries'), retries, t('submit.retries.hint')),
      field('timeout', t('submit.timeout'), timeout),
      field('priority', t('job.priority'), priority, t('submit.priority.hint')),
      field('queue', t('jobs.col.queue'), queue), queueNames),
    field('env', t('submit.env'), env),
    field('inputs', t('submit.inputs'), inputs, t('submit.inputs.hint')),
    h('div', {class: 'row'},
      field('output', t('submit.output'), output, t('submit.output.hint')),
      field('output_limit', t('submit.outputlimit'), outputLimit),
      h('label', {class: 'check', for: 'f-keep-failed'}, keepFailed, ' ', t('submit.keepfailed'))),
    field('cron', t('submit.cron'), cron, t('submit.cron.hint')),
    field('constraints', t('submit.constraints'), constraints, t('submit.constraints.hint')),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, t('jobs.submit')), h('a', {href: '/jobs', class: 'button'}, t('common.cancel'))));

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form, async () => {
      try {
        const spec = {image: image.value.trim()};
        if (name.value.trim()) spec.name = name.value.trim();
        const cmd = splitArgs(command.value);
        if (cmd.length) spec.command = cmd;
        for (const [k, el, o] of [['array', array], ['cpu', cpu], ['memory', memory, {scale: 1 << 20}], ['retries', retries], ['priority', priority]]) {
          const v = num(el, k, o);
          if (v !== undefined) spec[k] = v;
        }
        if (timeout.value.trim()) spec.timeout = timeout.value.trim();
        if (queue.value.trim()) spec.queue = queue.value.trim();
        const lines = env.value.split('\n').map((l) => l.trim()).filter(Boolean);
        if (lines.length) {
          spec.env = {};
          for (const l of lines) {
            const k = l.indexOf('=');
            if (k <= 0) throw new APIError(400, 'env: ' + t('submit.err.kv', {text: l}));
            spec.env[l.slice(0, k)] = l.slice(k + 1);
          }
        }
        const ins = inputs.value.split('\n').map((l) => l.trim()).filter(Boolean);
        if (ins.length) {
          spec.inputs = ins.map((l) => {
            const k = l.lastIndexOf('=');
            if (k <= 0) throw new APIError(400, 'inputs: ' + t('submit.err.input', {text: l}));
            return {ref: l.slice(0, k), path: l.slice(k + 1)};
          });
        }
        if (output.value.trim()) {
          spec.output = {path: output.value.trim(), keep_failed: keepFailed.checked};
          const lim = num(outputLimit, 'output_limit', {scale: 1 << 20});
          if (lim !== undefined) spec.output.limit = lim;
        } else if (outputLimit.value.trim() || keepFailed.checked) {
          throw new APIError(400, 'output: ' + t('submit.err.output'));
        }
        const cons = constraints.value.split(/[,\s]+/).map((l) => l.trim()).filter(Boolean);
        if (cons.length) {
          spec.constraints = {};
          for (const c of cons) {
            const k = c.indexOf('=');
            if (k <= 0) throw new APIError(400, 'constraints: ' + t('submit.err.kv', {text: c}));
            spec.constraints[c.slice(0, k)] = c.slice(k + 1);
          }
        }
        if (cron.value.trim()) {
          try {
            await post('/schedules', {name: spec.name || '', cron: cron.value.trim(), spec});
          } catch (err) {
            // The schedule's errors name spec.<field>: show them at the field.
            if (err.message && err.message.startsWith('spec.')) throw new APIError(err.status, err.message.slice(5));
            throw err;
          }
          app.go('/schedules');
          return;
        }
        const job = await post('/jobs', spec);
        app.go(`/jobs/${job.id}`);
      } catch (err) {
        showError(form, err);
      }
    });
  });
  main.append(h('h1', {}, t('submit.title')), h('p', {class: 'muted'}, t('submit.intro')), form);
  image.focus();
}
