// Live audit events: the /api/v1/stream server-sent events, read through fetch (EventSource
// cannot send the Authorization header). When the stream fails, /api/v1/events is polled every
// 2 s, and the stream is tried again every 30 s.
import { API, api, q, session } from "./api.js";

const POLL_MS = 2000;
const RETRY_STREAM_MS = 30000;

export class Feed {
  // model: whose events; after(): the last sequence number seen; onEvents(list);
  // onMode(mode, text) with mode "live", "polling" or "down".
  constructor({ model, after, onEvents, onMode }) {
    Object.assign(this, { model, after, onEvents, onMode });
    this.stopped = false;
    this.ctrl = null;
    this.pollTimer = null;
    this.retryTimer = null;
  }

  start() {
    this.openStream();
  }

  stop() {
    this.stopped = true;
    if (this.ctrl) this.ctrl.abort();
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
  }

  async openStream() {
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    try {
      const res = await fetch(`${API}stream?${q({ model: this.model, after_seq: this.after() })}`, {
        headers: { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" },
        signal: ctrl.signal, cache: "no-store",
      });
      const type = res.headers.get("content-type") || "";
      if (!res.ok || !res.body || !type.startsWith("text/event-stream")) {
        throw new Error(`stream: HTTP ${res.status}`);
      }
      clearInterval(this.pollTimer);
      this.onMode("live", "live");
      await this.read(res.body.getReader());
      throw new Error("stream ended");
    } catch {
      if (ctrl.signal.aborted || this.stopped) return;
      this.startPolling();
    }
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || this.stopped) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        this.message(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  }

  message(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (type !== "audit" || !data.length) return;
    let event;
    try {
      event = JSON.parse(data.join("\n"));
    } catch {
      return; // a malformed message is skipped; the next poll or refresh catches up
    }
    this.onEvents([event]);
  }

  startPolling() {
    this.onMode("polling", "polling every 2 s");
    clearInterval(this.pollTimer);
    let failures = 0;
    this.pollTimer = setInterval(async () => {
      if (this.stopped) return;
      try {
        this.onEvents(await api(`events?${q({ model: this.model, after_seq: this.after(), limit: 500 })}`));
        failures = 0;
        this.onMode("polling", "polling every 2 s");
      } catch (err) {
        failures += 1;
        if (failures > 1) this.onMode("down", `control plane unreachable: ${err.message}`);
      }
    }, POLL_MS);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => { if (!this.stopped) this.openStream(); }, RETRY_STREAM_MS);
  }
}
