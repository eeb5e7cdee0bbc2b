// LogView follows a task's log over HTTP (GET …/logs?follow=1 streams the
// bytes until the attempt ends). It keeps the last MAX_LINES lines, cuts
// very long lines for display, and paints at most once per frame, so a
// chatty task cannot freeze the tab; the download link has everything.

const MAX_LINES = 5000;
const MAX_LINE = 2000;

import {h} from './util.js';
import {t} from './i18n.js';

export class LogView {
  constructor() {
    this.pre = h('pre', {class: 'log', tabindex: 0, 'aria-label': t('log.label'), 'aria-live': 'off'});
    this.status = h('span', {class: 'muted small'});
    this.follow = h('input', {type: 'checkbox', checked: true, id: 'log-follow'});
    this.download = h('a', {class: 'button small', download: ''}, t('log.download'));
    this.el = h('div', {class: 'logbox'},
      h('div', {class: 'head'}, h('h3', {}, t('log.title')), this.status,
        h('span', {class: 'spacer'}), h('label', {class: 'check small'}, this.follow, ' ', t('log.follow')), this.download),
      this.pre);
    this.key = '';
    this.pre.addEventListener('scroll', () => {
      const atEnd = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
      if (!atEnd && this.follow.checked && this.lastScroll > this.pre.scrollTop) this.follow.checked = false;
      this.lastScroll = this.pre.scrollTop;
    });
  }

  /** open starts following attempt n (0: latest) of task i of job. */
  open(job, i, n) {
    this.close();
    this.key = `${job}/${i}`;
    this.url = `/api/v1/jobs/${job}/tasks/${i}/logs`;
    this.download.href = this.url + (n ? `?attempt=${n}` : '');
    this.download.setAttribute('download', `${job}-task${i}${n ? '-attempt' + n : ''}.log`);
    this.lines = []; this.partial = ''; this.dropped = 0; this.pending = ''; this.retries = 0;
    this.pre.textContent = '';
    this.start(n);
  }

  async start(n) {
    const ctl = new AbortController();
    this.ctl = ctl;
    this.setStatus(t('log.following'));
    try {
      const res = await fetch(this.url + '?follow=1' + (n ? `&attempt=${n}` : ''), {signal: ctl.signal, credentials: 'same-origin'});
      if (!res.ok) {
        let msg = res.statusText;
        try { msg = (await res.json()).error; } catch { /* not JSON */ }
        throw Object.assign(new Error(msg), {status: res.status});
      }
      // A fresh stream starts from byte 0: forget what a broken one showed.
      this.lines = []; this.partial = ''; this.dropped = 0; this.pending = ''; this.reset = true;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        this.push(value);
        this.retries = 0;
      }
      if (this.partial) { this.lines.push(this.partial); this.pending += this.partial; this.partial = ''; this.paint(); }
      this.setStatus(this.lines.length ? t('log.ended') : t('log.ended.empty'));
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e.status && e.status < 500 && e.status !== 404) { this.setStatus(e.message); return; }
      // The server went away (restart) or the log is elsewhere for now: retry.
      this.retries++;
      this.setStatus(t('log.reconnecting'));
      this.timer = setTimeout(() => { if (this.ctl === ctl) this.start(n); }, Math.min(8000, 250 * 2 ** this.retries));
    }
  }

  push(text) {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop();
    for (let l of parts) {
      if (l.length > MAX_LINE) l = l.slice(0, MAX_LINE) + ' … ' + t('log.cut', {n: l.length - MAX_LINE});
      this.lines.push(l);
      this.pending += l + '\n';
    }
    if (this.lines.length > MAX_LINES * 1.2) {
      const cut = this.lines.length - MAX_LINES;
      this.lines.splice(0, cut);
      this.dropped += cut;
      this.reset = true;
    }
    this.paint();
  }

  paint() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      if (this.reset) {
        this.pre.textContent = (this.dropped ? t('log.dropped', {n: this.dropped}) + '\n' : '') + this.lines.join('\n') + (this.lines.length ? '\n' : '');
        this.reset = false;
      } else if (this.pending) {
        this.pre.append(this.pending);
      }
      this.pending = '';
      if (this.follow.checked) this.pre.scrollTop = this.pre.scrollHeight;
    });
  }

  setStatus(s) { this.status.textContent = s; }

  close() {
    if (this.ctl) this.ctl.abort();
    this.ctl = null;
    clearTimeout(this.timer);
    this.key = '';
  }
}
