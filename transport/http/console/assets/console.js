// Engram console: a single page over the public API. Plain modern
// JavaScript, no dependencies, no build step. Every piece of text from the
// server goes into the page as text (never as HTML).
"use strict";

// ---------------------------------------------------------------- helpers

/** h builds an element: h("a", {href: "#"}, "text", child…). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** fill replaces the children of el, skipping empty ones (the DOM would
 * show null as text). */
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

const $ = (sel, root = document) => root.querySelector(sel);
const main = () => $("#main");

/**
 * show replaces the main view with nodes, unless the location has changed
 * since the view started (gen, from route.gen): a slow answer for a view the
 * user has left never covers the view they went to.
 */
function show(gen, ...nodes) {
  if (gen === route.gen) main().replaceChildren(...nodes);
}
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "");
const shortID = (id) => (id && /^[0-9a-f-]{36}$/.test(id) ? id.slice(0, 8) : id || "");

function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ""; }, 4000);
}

/** Problem is an RFC 9457 problem document answered by the API. */
class Problem extends Error {
  constructor(status, doc) {
    super((doc && (doc.detail || doc.title)) || `HTTP ${status}`);
    this.status = status;
    this.doc = doc || {};
  }
}

/** problemView shows a problem: its title, detail, every bad field. */
function problemView(err) {
  if (!(err instanceof Problem)) {
    return h("div", { class: "problem", role: "alert" }, String(err && err.message ? err.message : err));
  }
  const d = err.doc;
  return h("div", { class: "problem", role: "alert", dataset: { status: err.status } },
    h("strong", {}, d.title || `Error ${err.status}`),
    d.detail && d.detail !== d.title ? h("div", {}, d.detail) : null,
    Array.isArray(d.errors) && d.errors.length
      ? h("ul", {}, d.errors.map((e) => h("li", {}, h("code", {}, e.field), " ", e.message)))
      : null,
    d.request_id ? h("div", { class: "muted" }, "request id ", h("code", {}, d.request_id)) : null);
}

/** showProblem replaces the content of slot with the problem of err. */
function showProblem(slot, err) {
  slot.replaceChildren(problemView(err));
}

// ---------------------------------------------------------------- session

// The session lives in sessionStorage: per tab, gone with the tab. The page
// loads no third-party code and its Content-Security-Policy forbids inline
// scripts, which is what keeps a token in storage out of reach.
const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem("engram.session")) || null; } catch { return null; }
  },
  set(s) { sessionStorage.setItem("engram.session", JSON.stringify(s)); },
  clear() { sessionStorage.removeItem("engram.session"); },
  user() { const s = this.get(); return s && s.user; },
  isAuditor() {
    const u = this.user();
    return !!u && Array.isArray(u.roles) && (u.roles.includes("auditor") || u.roles.includes("admin"));
  },
};

let refreshing = null;

// readAfter is the log position of the page's last write: every query asks
// to see at least that far (Engram-Min-Position), so that what the page has
// just done shows, whichever read model answers.
let readAfter = 0;

/** refresh trades the refresh token for new tokens, once at a time. */
function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const s = session.get();
      if (!s || !s.refresh_token) throw new Problem(401, { title: "Signed out" });
      const res = await fetch("/v1/auth/refresh", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: s.refresh_token }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) { session.clear(); throw new Problem(res.status, body); }
      session.set({ ...s, ...body, user: body.user || s.user });
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** api calls the API: JSON in, JSON out, problems thrown as Problem. An
 * expired access token is refreshed once, transparently. */
async function api(method, path, body, { headers = {}, retry = true } = {}) {
  const s = session.get();
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (s) init.headers.Authorization = `Bearer ${s.access_token}`;
  if (method === "GET" && readAfter > 0) init.headers["Engram-Min-Position"] = String(readAfter);
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401 && retry && s && !path.startsWith("/v1/auth/")) {
    try { await refresh(); } catch { signedOut(); throw new Problem(401, { title: "Your session has ended; sign in again" }); }
    return api(method, path, body, { headers, retry: false });
  }
  const position = Number(res.headers.get("Engram-Position"));
  if (res.ok && position > readAfter) readAfter = position;
  if (res.status === 204 || res.status === 304) return null;
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Problem(res.status, typeof data === "object" ? data : { title: data });
  return data;
}

/** all follows next_cursor, up to max pages. */
async function all(path, max = 10) {
  const items = [];
  let cursor = "";
  for (let i = 0; i < max; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", path + (cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ""));
    items.push(...(page.items || []));
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return items;
}

function signedOut() {
  session.clear();
  Live.closeAll();
  location.hash = "#/signin";
}

// ---------------------------------------------------------------- live events

// The event types the console follows. EventSource delivers a named event
// only to listeners of that name.
const LIVE_TYPES = [
  "conversation.message_posted", "conversation.routing_decided", "conversation.updated", "conversation.archived",
  "conversation.created", "task.submitted", "task.started", "task.progressed", "task.completed", "task.failed",
  "task.cancelled", "memory.item_stored", "memory.item_updated", "memory.item_deleted",
  "workspace.member_added", "workspace.member_removed", "workspace.updated", "workspace.archived",
];
const SIGNAL_TYPES = ["typing", "status", "delta"];

/**
 * Live follows one stream with a native EventSource. The URL carries a
 * ticket that the server accepts again for this stream's reconnections, so
 * the browser resumes by itself (with Last-Event-ID) after a network break,
 * the stream's lifetime or a server restart. The page reopens the stream
 * itself only when the browser gives up (the ticket or the access token
 * expired): then with a fresh ticket and last_event_id.
 */
class Live {
  static open = new Set();

  static closeAll() { for (const l of [...Live.open]) l.close(); }

  constructor(path, { onEvent, onSignal, onState, onEnd } = {}) {
    this.path = path;
    this.onEvent = onEvent || (() => {});
    this.onSignal = onSignal || (() => {});
    this.onState = onState || (() => {});
    this.onEnd = onEnd || (() => {});
    this.lastId = "";
    this.seen = new Set();
    this.duplicates = 0;
    this.reopens = 0;
    this.closed = false;
    Live.open.add(this);
  }

  async start(lastId = "") {
    if (this.closed) return;
    if (lastId) this.lastId = lastId;
    this.onState("wait", "connecting");
    let ticket;
    try {
      ticket = (await api("POST", "/v1/auth/sse-ticket")).ticket;
    } catch (err) {
      this.onState("off", err.message);
      this.retryLater();
      return;
    }
    if (this.closed) return;
    let url = `${this.path}?ticket=${encodeURIComponent(ticket)}`;
    if (this.lastId) url += `&last_event_id=${encodeURIComponent(this.lastId)}`;
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener("open", () => this.onState("on", "live"));
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (the server refused the reconnection).
        this.onState("off", "disconnected");
        this.retryLater();
      } else {
        this.onState("wait", "reconnecting");
      }
    });
    for (const type of LIVE_TYPES) es.addEventListener(type, (e) => this.event(e));
    for (const type of SIGNAL_TYPES) {
      es.addEventListener(type, (e) => { try { this.onSignal(type, JSON.parse(e.data)); } catch { /* not ours */ } });
    }
    es.addEventListener("token_expired", () => { es.close(); this.reopen(); });
    es.addEventListener("access_revoked", (e) => {
      es.close();
      this.onState("off", "access revoked");
      let reason = "";
      try { reason = JSON.parse(e.data).reason; } catch { /* none */ }
      this.onEnd(reason);
    });
  }

  event(e) {
    if (e.lastEventId) {
      if (this.seen.has(e.lastEventId)) { this.duplicates++; this.report(); return; }
      this.seen.add(e.lastEventId);
      this.lastId = e.lastEventId;
    }
    let ev;
    try { ev = JSON.parse(e.data); } catch { return; }
    this.onEvent(ev);
    this.report();
  }

  /** report exposes the stream's counters on the page (for diagnosis). */
  report() {
    document.body.dataset.liveEvents = String(this.seen.size);
    document.body.dataset.liveDuplicates = String(this.duplicates);
    document.body.dataset.liveReopens = String(this.reopens);
  }

  reopen() {
    if (this.closed) return;
    if (this.es) this.es.close();
    this.reopens++;
    this.report();
    this.start();
  }

  retryLater() {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reopen(), 3000);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    Live.open.delete(this);
  }
}

function liveBadge() {
  return h("span", { class: "live wait", id: "live-status", dataset: { state: "wait" }, "aria-live": "polite" }, "connecting");
}

function setLive(badge, state, text) {
  badge.className = `live ${state}`;
  badge.dataset.state = state;
  badge.textContent = text;
}

// ---------------------------------------------------------------- views

function signInView() {
  const slot = h("div");
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const body = h("div");
  const show = (which) => {
    for (const b of tabs.children) b.setAttribute("aria-selected", String(b.dataset.tab === which));
    body.replaceChildren(which === "signin" ? signInForm() : registerForm());
    slot.replaceChildren();
    const first = $("input", body);
    if (first) first.focus();
  };
  tabs.append(
    h("button", { type: "button", role: "tab", dataset: { tab: "signin" }, onclick: () => show("signin") }, "Sign in"),
    h("button", { type: "button", role: "tab", dataset: { tab: "register" }, onclick: () => show("register") }, "Create an account"));

  async function signIn(email, password) {
    const res = await api("POST", "/v1/auth/login", { email, password });
    session.set(res);
    if (location.hash === "#/") route(); else location.hash = "#/";
  }

  function signInForm() {
    return h("form", {
      onsubmit: async (e) => {
        e.preventDefault();
        const f = e.target;
        f.querySelector("button").disabled = true;
        try { await signIn(f.elements.email.value, f.elements.password.value); } catch (err) { showProblem(slot, err); } finally { f.querySelector("button").disabled = false; }
      },
    },
    h("label", { for: "signin-email" }, "E-mail"),
    h("input", { id: "signin-email", name: "email", type: "email", autocomplete: "username", required: true }),
    h("label", { for: "signin-password" }, "Password"),
    h("input", { id: "signin-password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("p", {}, h("button", { type: "submit", id: "signin-submit" }, "Sign in")));
  }

  function registerForm() {
    return h("form", {
      onsubmit: async (e) => {
        e.preventDefault();
        const f = e.target;
        f.querySelector("button").disabled = true;
        try {
          await api("POST", "/v1/auth/register", { email: f.elements.email.value, password: f.elements.password.value, display_name: f.elements.display_name.value });
          await signIn(f.elements.email.value, f.elements.password.value);
        } catch (err) { showProblem(slot, err); } finally { f.querySelector("button").disabled = false; }
      },
    },
    h("label", { for: "reg-name" }, "Name"),
    h("input", { id: "reg-name", name: "display_name", autocomplete: "name", required: true }),
    h("label", { for: "reg-email" }, "E-mail"),
    h("input", { id: "reg-email", name: "email", type: "email", autocomplete: "username", required: true }),
    h("label", { for: "reg-password" }, "Password ", h("span", { class: "muted" }, "(at least 10 characters)")),
    h("input", { id: "reg-password", name: "password", type: "password", autocomplete: "new-password", required: true }),
    h("p", {}, h("button", { type: "submit" }, "Create the account")));
  }

  main().replaceChildren(h("section", { class: "auth panel" }, h("h1", {}, "Engram"), tabs, slot, body));
  show("signin");
}

/** sidebar lists the caller's workspaces, with a form to create one. */
async function sidebar(currentID) {
  const list = h("ul", { class: "list", id: "workspace-list" });
  const slot = h("div");
  const box = h("nav", { class: "panel", "aria-label": "Workspaces" }, h("h2", {}, "Workspaces"), list, slot,
    h("form", {
      class: "row", onsubmit: async (e) => {
        e.preventDefault();
        const f = e.target;
        try {
          const w = await api("POST", "/v1/workspaces", { name: f.elements.name.value });
          location.hash = `#/w/${w.id}`;
        } catch (err) { showProblem(slot, err); }
      },
    }, h("input", { name: "name", placeholder: "New workspace", "aria-label": "New workspace name", required: true }),
    h("button", { type: "submit", class: "shrink" }, "Create")));
  try {
    const items = await all("/v1/workspaces");
    if (!items.length) list.append(h("li", { class: "empty" }, "No workspace yet."));
    for (const w of items) {
      list.append(h("li", {}, h("a", { href: `#/w/${w.id}`, "aria-current": w.id === currentID ? "page" : null },
        w.name, " ", h("span", { class: "badge" }, w.role || ""))));
    }
  } catch (err) { showProblem(slot, err); }
  return box;
}

async function homeView() {
  const gen = route.gen;
  const side = await sidebar("");
  show(gen, h("div", { class: "grid" }, side,
    h("section", { class: "panel" }, h("h1", {}, `Welcome, ${(session.user() || {}).display_name || ""}`),
      h("p", {}, "Pick a workspace on the left, or create one. Conversations, members, memory and tasks live in workspaces."))));
}

async function workspaceView(id, tab = "conversations") {
  const gen = route.gen;
  const side = await sidebar(id);
  const content = h("section", { class: "panel" });
  show(gen, h("div", { class: "grid" }, side, content));
  let w;
  try { w = await api("GET", `/v1/workspaces/${id}`); } catch (err) { showProblem(content, err); return; }
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const body = h("div");
  const names = { conversations: "Conversations", members: "Members", memory: "Memory", tasks: "Tasks" };
  for (const [key, label] of Object.entries(names)) {
    tabs.append(h("button", { type: "button", role: "tab", "aria-selected": String(key === tab), onclick: () => { location.hash = `#/w/${id}/${key}`; } }, label));
  }
  fill(content, h("h1", {}, w.name, " ", h("span", { class: "badge" }, w.role), w.archived ? h("span", { class: "badge warn" }, "archived") : null),
    w.description ? h("p", { class: "muted" }, w.description) : null, tabs, body);
  const views = { conversations: conversationsTab, members: membersTab, memory: memoryTab, tasks: tasksTab };
  await (views[tab] || conversationsTab)(w, body);
}

async function conversationsTab(w, body) {
  const slot = h("div");
  const list = h("ul", { class: "list", id: "conversation-list" });
  body.replaceChildren(
    h("form", {
      class: "row", onsubmit: async (e) => {
        e.preventDefault();
        try {
          const c = await api("POST", `/v1/workspaces/${w.id}/conversations`, { title: e.target.elements.title.value });
          location.hash = `#/c/${c.id}`;
        } catch (err) { showProblem(slot, err); }
      },
    }, h("input", { name: "title", placeholder: "Title of a new conversation", "aria-label": "Conversation title", required: true }),
    h("button", { type: "submit", class: "shrink" }, "Start a conversation")),
    slot, list);
  try {
    const items = await all(`/v1/workspaces/${w.id}/conversations`);
    if (!items.length) list.append(h("li", { class: "empty" }, "No conversation yet."));
    for (const c of items) {
      list.append(h("li", {}, h("a", { href: `#/c/${c.id}` }, c.title, " ",
        h("span", { class: "muted" }, `${c.message_count} messages · ${fmtTime(c.last_activity_at)}`),
        c.archived ? h("span", { class: "badge warn" }, "archived") : null)));
    }
  } catch (err) { showProblem(slot, err); }
}

async function membersTab(w, body) {
  const slot = h("div");
  const table = h("tbody");
  const owner = w.role === "owner";
  const me = (session.user() || {}).id;
  const reload = () => membersTab(w, body);
  fill(body, slot,
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Member"), h("th", {}, "E-mail"), h("th", {}, "Role"), h("th", {}, ""))), table),
    owner ? h("form", {
      class: "row", onsubmit: async (e) => {
        e.preventDefault();
        const f = e.target;
        try {
          await api("POST", `/v1/workspaces/${w.id}/members`, { email: f.elements.email.value, role: f.elements.role.value });
          toast("Member added");
          reload();
        } catch (err) { showProblem(slot, err); }
      },
    }, h("input", { name: "email", type: "email", placeholder: "E-mail of an account", "aria-label": "E-mail", required: true }),
    h("select", { name: "role", "aria-label": "Role" }, ["viewer", "editor", "owner"].map((r) => h("option", { value: r }, r))),
    h("button", { type: "submit", class: "shrink" }, "Add member")) : null);
  try {
    for (const m of await all(`/v1/workspaces/${w.id}/members`)) {
      const canRemove = owner || m.user_id === me;
      table.append(h("tr", {}, h("td", {}, m.display_name || shortID(m.user_id)), h("td", {}, m.email || ""), h("td", {}, m.role),
        h("td", {}, canRemove ? h("button", {
          type: "button", class: "danger", onclick: async () => {
            if (!confirm(`Remove ${m.display_name || m.email} from ${w.name}?`)) return;
            try { await api("DELETE", `/v1/workspaces/${w.id}/members/${m.user_id}`); reload(); } catch (err) { showProblem(slot, err); }
          },
        }, m.user_id === me ? "Leave" : "Remove") : null)));
    }
  } catch (err) { showProblem(slot, err); }
}

async function memoryTab(w, body) {
  const slot = h("div");
  const list = h("ul", { class: "list", id: "memory-list" });
  const load = async (q = "") => {
    list.replaceChildren();
    try {
      const page = await api("GET", `/v1/workspaces/${w.id}/memory${q ? `?q=${encodeURIComponent(q)}` : ""}`);
      if (!page.items.length) list.append(h("li", { class: "empty" }, "Nothing remembered yet."));
      for (const it of page.items) {
        list.append(h("li", {}, h("div", { class: "item" }, h("span", { class: "badge" }, it.type), " ", it.content,
          h("div", { class: "muted" }, fmtTime(it.created_at), " ",
            h("button", {
              type: "button", class: "link", onclick: async () => {
                try { await api("DELETE", `/v1/workspaces/${w.id}/memory/${it.id}`); load(q); } catch (err) { showProblem(slot, err); }
              },
            }, "Forget")))));
      }
    } catch (err) { showProblem(slot, err); }
  };
  body.replaceChildren(
    h("form", { class: "row", role: "search", onsubmit: (e) => { e.preventDefault(); load(e.target.elements.q.value); } },
      h("input", { name: "q", type: "search", placeholder: "Search the memory", "aria-label": "Search the memory" }),
      h("button", { type: "submit", class: "shrink secondary" }, "Search")),
    slot, list,
    h("h2", {}, "Remember something"),
    h("form", {
      class: "row", onsubmit: async (e) => {
        e.preventDefault();
        const f = e.target;
        try {
          await api("POST", `/v1/workspaces/${w.id}/memory`, { type: f.elements.type.value, content: f.elements.content.value });
          f.elements.content.value = "";
          load();
        } catch (err) { showProblem(slot, err); }
      },
    }, h("select", { name: "type", "aria-label": "Kind", class: "shrink" }, ["entity", "event", "file", "message"].map((t) => h("option", { value: t }, t))),
    h("input", { name: "content", placeholder: "What to remember", "aria-label": "What to remember", required: true }),
    h("button", { type: "submit", class: "shrink" }, "Remember")));
  load();
}

/** taskRow shows a task, with a cancel button while it may be cancelled. */
function taskRow(t, slot) {
  const done = ["completed", "failed", "cancelled"].includes(t.status);
  const cls = t.status === "completed" ? "ok" : t.status === "failed" ? "bad" : "warn";
  return h("li", { dataset: { task: t.id } }, h("div", { class: "item" },
    h("span", { class: `badge ${cls}` }, t.status), " ", h("strong", {}, t.expert || "task"), " ",
    h("span", { class: "muted" }, t.progress ? `${t.progress}% ` : "", t.note || t.reason || ""),
    h("div", { class: "muted mono" }, shortID(t.id), " ", t.input ? `“${String(t.input).slice(0, 60)}”` : ""),
    !done ? h("button", {
      type: "button", class: "link", onclick: async () => {
        try { await api("POST", `/v1/tasks/${t.id}/cancel`); toast("Cancellation requested"); } catch (err) { showProblem(slot, err); }
      },
    }, "Cancel") : null));
}

/** taskTracker folds task.* events into rows of a list. */
function taskTracker(list, slot) {
  const tasks = new Map();
  return (ev) => {
    if (!ev.type.startsWith("task.")) return;
    const id = ev.data.task_id || ev.stream_id.replace(/^task-/, "");
    const t = tasks.get(id) || { id };
    const status = { "task.submitted": "submitted", "task.started": "running", "task.progressed": "running",
      "task.completed": "completed", "task.failed": "failed", "task.cancelled": "cancelled" }[ev.type];
    Object.assign(t, { status, expert: ev.data.expert || t.expert, input: ev.data.input || t.input,
      progress: ev.data.progress || t.progress, note: ev.data.note || "", reason: ev.data.reason || "" });
    tasks.set(id, t);
    const row = taskRow(t, slot);
    const old = list.querySelector(`[data-task="${CSS.escape(id)}"]`);
    if (old) old.replaceWith(row); else list.prepend(row);
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
  };
}

async function tasksTab(w, body) {
  const slot = h("div");
  const list = h("ul", { class: "list", id: "task-list" }, h("li", { class: "empty" }, "Tasks appear here as the assistants work."));
  const badge = liveBadge();
  const track = taskTracker(list, slot);
  body.replaceChildren(h("p", { class: "muted" }, "Tasks of this workspace, live. ", badge), slot, list,
    h("form", {
      class: "row", onsubmit: async (e) => {
        e.preventDefault();
        try { const t = await api("GET", `/v1/tasks/${encodeURIComponent(e.target.elements.id.value.trim())}`); list.prepend(taskRow(t, slot)); } catch (err) { showProblem(slot, err); }
      },
    }, h("input", { name: "id", placeholder: "Task id", "aria-label": "Task id", required: true }),
    h("button", { type: "submit", class: "shrink secondary" }, "Look up")));
  const live = new Live(`/v1/workspaces/${w.id}/events`, { onEvent: track, onState: (s, t) => setLive(badge, s, t) });
  route.cleanup = () => live.close();
  live.start();
}

async function conversationView(id) {
  const gen = route.gen;
  let c;
  try { c = await api("GET", `/v1/conversations/${id}`); } catch (err) { show(gen, problemView(err)); return; }
  if (gen !== route.gen) return;
  const side = h("nav", { class: "panel", "aria-label": "Conversations" }, h("h2", {}, h("a", { href: `#/w/${c.workspace_id}` }, "Conversations")));
  const convList = h("ul", { class: "list" });
  side.append(convList);
  all(`/v1/workspaces/${c.workspace_id}/conversations`, 2).then((items) => {
    for (const o of items) convList.append(h("li", {}, h("a", { href: `#/c/${o.id}`, "aria-current": o.id === id ? "page" : null }, o.title)));
  }).catch(() => {});

  const slot = h("div");
  const messages = h("ol", { class: "messages", id: "messages", "aria-live": "polite", "aria-label": "Messages" });
  const activity = h("div", { class: "activity", id: "activity" });
  const badge = liveBadge();
  const input = h("textarea", { name: "content", rows: "2", placeholder: "Write a message — Enter to send, Shift+Enter for a new line", "aria-label": "Message", required: true });
  const send = h("button", { type: "submit" }, "Send");
  const form = h("form", { class: "composer", id: "composer" }, input, send);
  const taskList = h("ul", { class: "list", id: "task-list" }, h("li", { class: "empty" }, "No task yet."));
  const taskSlot = h("div");
  main().replaceChildren(h("div", { class: "grid three" }, side,
    h("section", { class: "panel conversation" },
      h("header", {}, h("h1", {}, c.title), badge, c.archived ? h("span", { class: "badge warn" }, "archived") : null),
      slot, messages, activity, form),
    h("aside", { class: "panel", "aria-label": "Tasks" }, h("h2", {}, "Tasks"), taskSlot, taskList)));

  const me = (session.user() || {}).id;
  const byID = new Map();
  const names = new Map([[me, "You"]]);
  all(`/v1/workspaces/${c.workspace_id}/members`, 2).then((ms) => { for (const m of ms) if (m.user_id !== me) names.set(m.user_id, m.display_name); }).catch(() => {});

  /** put shows a message once, in position order. */
  const put = (m) => {
    const old = byID.get(m.id);
    const el = h("li", { class: `msg ${m.role}`, dataset: { id: m.id, position: m.position, role: m.role } },
      h("span", { class: "meta" }, m.role === "assistant" ? "Assistant" : names.get(m.author_id) || m.role, " · ", fmtTime(m.created_at)),
      m.content);
    byID.set(m.id, m);
    if (old) {
      messages.querySelector(`[data-id="${CSS.escape(m.id)}"]`)?.replaceWith(el);
    } else {
      const after = [...messages.children].find((x) => x.dataset.position && Number(x.dataset.position) > m.position);
      messages.insertBefore(el, after || null);
    }
    const pending = messages.querySelector(`[data-reply="${CSS.escape(m.id)}"]`);
    if (pending) pending.remove();
    messages.scrollTop = messages.scrollHeight;
  };

  const typing = new Map();
  const showActivity = () => {
    const who = [...typing.values()];
    activity.textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : (activity.dataset.status || "");
  };
  const track = taskTracker(taskList, taskSlot);
  const live = new Live(`/v1/conversations/${id}/events`, {
    onEvent(ev) {
      if (ev.type === "conversation.message_posted") {
        const d = ev.data;
        put({ id: d.message_id, role: d.role, author_id: d.author_id, content: d.content, created_at: ev.recorded_at, position: ev.global_position });
        if (d.role === "assistant") { activity.dataset.status = ""; showActivity(); }
      } else if (ev.type === "conversation.routing_decided") {
        activity.dataset.status = ev.data.expert ? `Routed to ${ev.data.expert}` : "";
        showActivity();
      } else {
        track(ev);
      }
    },
    onSignal(type, sig) {
      const d = sig.data || {};
      if (type === "typing") {
        const who = sig.user_id === me ? null : (d.expert ? `${d.expert}` : names.get(sig.user_id) || "Someone");
        if (!who) return;
        const key = sig.user_id || d.expert;
        if (d.state === "stop") typing.delete(key); else typing.set(key, who);
        showActivity();
      } else if (type === "status") {
        activity.dataset.status = d.text || d.state || "";
        showActivity();
      } else if (type === "delta" && d.reply_message_id && !byID.has(d.reply_message_id)) {
        let el = messages.querySelector(`[data-reply="${CSS.escape(d.reply_message_id)}"]`);
        if (!el) {
          el = h("li", { class: "msg assistant streaming", dataset: { reply: d.reply_message_id } }, h("span", { class: "meta" }, "Assistant · writing"), "");
          messages.append(el);
        }
        el.append(d.text || "");
        messages.scrollTop = messages.scrollHeight;
      }
    },
    onState: (s, t) => setLive(badge, s, t),
    onEnd: (reason) => showProblem(slot, new Problem(403, { title: "Live updates stopped", detail: reason.replaceAll("_", " ") })),
  });
  route.cleanup = () => live.close();
  // Live first, history second: nothing falls between the two, and each
  // message is shown once whichever brings it.
  live.start();
  try {
    for (const m of await all(`/v1/conversations/${id}/messages?limit=200`, 20)) put(m);
  } catch (err) { showProblem(slot, err); }

  let lastTyping = 0;
  input.addEventListener("input", () => {
    const now = Date.now();
    if (now - lastTyping > 3000) { lastTyping = now; api("POST", `/v1/conversations/${id}/typing`).catch(() => {}); }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const content = input.value.trim();
    if (!content) return;
    send.disabled = true;
    try {
      const m = await api("POST", `/v1/conversations/${id}/messages`, { content }, { headers: { "Idempotency-Key": crypto.randomUUID() } });
      input.value = "";
      lastTyping = 0;
      put(m);
      slot.replaceChildren();
    } catch (err) { showProblem(slot, err); } finally { send.disabled = false; input.focus(); }
  });
  input.focus();
}

// ---------------------------------------------------------------- audit

async function auditView() {
  if (!session.isAuditor()) {
    main().replaceChildren(problemView(new Problem(403, { title: "Auditors only", detail: "The audit views need the auditor or admin role." })));
    return;
  }
  const slot = h("div");
  const rows = h("tbody");
  const detail = h("pre", { id: "audit-detail", "aria-live": "polite" }, "Select an event to see it whole.");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Next page");
  let cursor = "";
  let query = "";
  const filters = [
    ["from_position", "From position", "number"], ["to_position", "To position", "number"],
    ["stream_id", "Stream", "text"], ["stream_type", "Stream type", "text"], ["type", "Event types (comma list)", "text"],
    ["actor_id", "Actor id", "text"], ["from", "From (RFC 3339)", "text"], ["to", "To (RFC 3339)", "text"],
  ];
  const load = async (append) => {
    slot.replaceChildren();
    try {
      const page = await api("GET", `/v1/audit/events?limit=100${query}${append && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      if (!append) rows.replaceChildren();
      for (const e of page.items) {
        const show = () => { detail.textContent = JSON.stringify(e, null, 2); stateForm.elements.stream_id.value = e.stream_id; stateForm.elements.version.value = e.stream_version; };
        rows.append(h("tr", { class: "selectable", tabindex: "0", onclick: show, onkeydown: (k) => { if (k.key === "Enter") show(); } },
          h("td", {}, e.global_position), h("td", {}, fmtTime(e.recorded_at)), h("td", { class: "mono" }, e.stream_id, " v", e.stream_version),
          h("td", {}, e.type), h("td", { class: "mono" }, shortID(e.metadata && e.metadata.actor_id))));
      }
      if (!rows.children.length) rows.append(h("tr", {}, h("td", { colspan: "5", class: "empty" }, "No event matches.")));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (err) { showProblem(slot, err); }
  };
  more.addEventListener("click", () => load(true));
  const filterForm = h("form", {
    id: "audit-filters", onsubmit: (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const [name] of filters) { const v = e.target.elements[name].value.trim(); if (v) p.set(name, v); }
      query = p.toString() ? `&${p}` : "";
      load(false);
    },
  }, h("div", { class: "row" }, filters.map(([name, label, type]) => h("div", {}, h("label", { for: `f-${name}` }, label), h("input", { id: `f-${name}`, name, type })))),
  h("p", {}, h("button", { type: "submit" }, "Filter"), " ", h("button", { type: "reset", class: "secondary" }, "Clear")));

  const stateOut = h("pre", { id: "audit-state" }, "");
  const stateSlot = h("div");
  const stateForm = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      const f = e.target;
      const p = new URLSearchParams();
      if (f.elements.version.value) p.set("version", f.elements.version.value);
      if (f.elements.at.value) p.set("at", f.elements.at.value);
      stateSlot.replaceChildren();
      try {
        const s = await api("GET", `/v1/audit/streams/${encodeURIComponent(f.elements.stream_id.value.trim())}/state${p.toString() ? `?${p}` : ""}`);
        stateOut.textContent = JSON.stringify(s, null, 2);
      } catch (err) { stateOut.textContent = ""; showProblem(stateSlot, err); }
    },
  }, h("div", { class: "row" },
    h("div", {}, h("label", { for: "s-stream" }, "Stream"), h("input", { id: "s-stream", name: "stream_id", required: true, placeholder: "workspace-…" })),
    h("div", {}, h("label", { for: "s-version" }, "Version"), h("input", { id: "s-version", name: "version", type: "number", min: "1" })),
    h("div", {}, h("label", { for: "s-at" }, "or as of (RFC 3339)"), h("input", { id: "s-at", name: "at" }))),
  h("p", {}, h("button", { type: "submit" }, "Show the state")));

  const verifyOut = h("div", { id: "verify-result", "aria-live": "polite" });
  const verify = async () => {
    verifyOut.replaceChildren(h("span", { class: "muted" }, "Verifying…"));
    try {
      const r = await api("GET", "/v1/audit/verify");
      verifyOut.dataset.ok = String(r.ok);
      fill(verifyOut, h("p", {}, h("span", { class: `badge ${r.ok ? "ok" : "bad"}` }, r.ok ? "intact" : "altered"), " ",
        `${r.streams_checked} streams, ${r.events_checked} events checked, ${r.breaks_found} breaks`),
      r.breaks && r.breaks.length ? h("table", {}, h("tbody", {}, r.breaks.map((b) => h("tr", {}, h("td", { class: "mono" }, b.stream_id), h("td", {}, `v${b.version}`), h("td", {}, b.global_position), h("td", {}, b.reason))))) : null);
    } catch (err) { showProblem(verifyOut, err); }
  };

  main().replaceChildren(h("div", { class: "stack" },
    h("section", { class: "panel" }, h("h1", {}, "Event log"), filterForm, slot,
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Position"), h("th", {}, "Recorded"), h("th", {}, "Stream"), h("th", {}, "Type"), h("th", {}, "Actor"))), rows),
      h("p", {}, more)),
    h("div", { class: "grid", style: null },
      h("section", { class: "panel" }, h("h2", {}, "Verify the log"), h("p", { class: "muted" }, "Recompute every stream's hash chain."),
        h("button", { type: "button", id: "verify", onclick: verify }, "Verify"), verifyOut),
      h("section", { class: "panel" }, h("h2", {}, "A stream's state as of a version or time"), stateForm, stateSlot, stateOut)),
    h("section", { class: "panel" }, h("h2", {}, "Selected event"), detail)));
  load(false);
}

// ---------------------------------------------------------------- routing

function renderChrome() {
  const u = session.user();
  $("#nav").hidden = !u;
  $("#who").hidden = !u;
  $("#nav-audit").hidden = !session.isAuditor();
  $("#who-name").textContent = u ? u.display_name || u.email : "";
}

/** route renders the view of the location's hash. */
async function route() {
  route.gen = (route.gen || 0) + 1;
  if (route.cleanup) { route.cleanup(); route.cleanup = null; }
  renderChrome();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (!session.get()) {
    signInView();
    return;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    a.toggleAttribute("aria-current", (a.dataset.nav === "audit") === (parts[0] === "audit"));
    if (a.hasAttribute("aria-current")) a.setAttribute("aria-current", "page");
  }
  try {
    switch (parts[0]) {
      case "w": await workspaceView(parts[1], parts[2]); break;
      case "c": await conversationView(parts[1]); break;
      case "audit": await auditView(); break;
      case "signin": location.hash = "#/"; break;
      default: await homeView();
    }
  } catch (err) {
    main().replaceChildren(problemView(err));
  }
  main().focus({ preventScroll: true });
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-out").addEventListener("click", async () => {
    try { await api("POST", "/v1/auth/logout", undefined, { retry: false }); } catch { /* signed out anyway */ }
    signedOut();
    route();
  });
  window.addEventListener("hashchange", route);
  route();
});
