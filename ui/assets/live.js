// The one WebSocket of a page (/api/v1/events). It reconnects with backoff;
// after every (re)connection the pages refetch the state they show and then
// apply the events that follow, so nothing is missed or applied twice.

const MAX_BACKOFF = 8000;

export class Live {
  constructor(onStatus) {
    this.listeners = new Set();
    this.follow = null; // job id whose task events we want
    this.backoff = 250;
    this.onStatus = onStatus;
    this.closed = false;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/events`);
    this.ws = ws;
    this.onStatus('connecting');
    ws.onopen = () => {
      this.backoff = 250;
      this.onStatus('live');
      if (this.follow) this.send({follow: {job: this.follow}});
      this.emit({type: 'open'});
    };
    // A frame carries one message or, in a burst, several, one per line.
    ws.onmessage = (e) => {
      for (const line of e.data.split('\n')) {
        let m;
        try { m = JSON.parse(line); } catch { continue; }
        this.emit(m);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.closed) return;
      this.onStatus('reconnecting');
      const wait = this.backoff * (0.75 + Math.random() / 2);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF);
      this.timer = setTimeout(() => this.connect(), wait);
    };
  }

  /** connected reports whether the socket is open. */
  get connected() { return this.ws && this.ws.readyState === WebSocket.OPEN; }

  send(m) { if (this.connected) this.ws.send(JSON.stringify(m)); }

  /** followJob asks for the task events of job (null: none). */
  followJob(job) {
    if (this.follow === job) return;
    this.follow = job;
    this.send(job ? {follow: {job}} : {unfollow: {}});
  }

  /** on registers fn for every message; it returns the function that removes it. */
  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  emit(m) { for (const fn of [...this.listeners]) { try { fn(m); } catch (e) { console.error(e); } } }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.onStatus('');
  }
}

/**
 * Synced keeps a view consistent with the server: load() fetches the state;
 * events that arrive while it runs are held and applied after it, in order.
 */
export class Synced {
  constructor(load, apply) {
    this.load = load; this.apply = apply;
    this.pending = null; this.gen = 0;
  }
  async resync() {
    const gen = ++this.gen;
    this.pending = [];
    try {
      await this.load();
    } finally {
      if (gen === this.gen) {
        const p = this.pending; this.pending = null;
        for (const m of p) this.apply(m);
      }
    }
  }
  event(m) {
    if (this.pending) this.pending.push(m); else this.apply(m);
  }
}
