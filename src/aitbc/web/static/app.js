// The marketplace's pages, rendered in the browser from the JSON API. No framework, no build:
// every page reads its address, fetches what it shows and builds the DOM with textContent
// (never innerHTML), so nothing the API returns is interpreted as markup.
//
// Numbers: every price, balance and refund shown is the API's decimal string, as it came.
// Floats appear only where a value becomes a pixel position in a chart.

const KEY = "aitbc.key";
const ME = "aitbc.me";
const REFRESH_MS = 10000;
// Signed in, pages refresh when one of your events says something changed (the event
// feed's long poll); this slower refresh only catches what changes with time alone.
const SIGNED_IN_REFRESH_MS = 60000;

// ---------- small helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, value);
  for (const child of children) el.append(child instanceof Node ? child : String(child));
  return el;
}

const main = () => document.getElementById("main");
const money = (amount) => (amount === null || amount === undefined ? "–" : `${amount} AITBC`);
const dash = (value) => (value === null || value === undefined || value === "" ? "–" : String(value));
// Hours as people write them: "3", "0.5" (the API's "3.000000" keeps its six places).
const hoursText = (value) => (value === null || value === undefined ? "–" : String(Number(value)));

// GPUs by what renters know them by: model and region, read once per GPU.
const gpuNames = new Map();
async function nameGpus(ids) {
  const missing = [...new Set(ids)].filter((id) => id && !gpuNames.has(id));
  await Promise.all(
    missing.map(async (id) => {
      try {
        const gpu = await api("GET", `/v1/marketplace/gpu/${encodeURIComponent(id)}`);
        gpuNames.set(id, [gpu.model, gpu.region].filter(Boolean).join(" · "));
      } catch {
        gpuNames.set(id, id);
      }
    }),
  );
}
function gpuLink(id) {
  return h("a", { href: `/gpus/${encodeURIComponent(id)}`, title: id }, gpuNames.get(id) ?? id);
}

function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function timeEl(iso) {
  return iso ? h("time", { datetime: iso }, when(iso)) : "–";
}

function announce(message) {
  const live = document.getElementById("live");
  live.textContent = "";
  live.textContent = message;
}

// The server's clock, learnt from the Date header of each response, so that countdowns
// agree with the server whatever the browser's clock says.
let skewMs = 0;
const serverNow = () => Date.now() + skewMs;

function left(iso) {
  const ms = new Date(iso).getTime() - serverNow();
  if (ms <= 0) return "ending…";
  const total = Math.floor(ms / 1000);
  const d = Math.floor(total / 86400);
  const hh = Math.floor((total % 86400) / 3600);
  const mm = Math.floor((total % 3600) / 60);
  const ss = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return `${d ? `${d}d ` : ""}${pad(hh)}:${pad(mm)}:${pad(ss)} left`;
}

function countdown(iso) {
  return h("span", { class: "countdown", "data-until": iso }, left(iso));
}

setInterval(() => {
  for (const el of document.querySelectorAll(".countdown")) el.textContent = left(el.dataset.until);
}, 1000);

// ---------- session and API ----------

const session = {
  key: () => sessionStorage.getItem(KEY),
  me: () => JSON.parse(sessionStorage.getItem(ME) || "null"),
  role: () => session.me()?.role ?? null,
  save(key, me) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(ME, JSON.stringify(me));
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ME);
  },
};

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

async function api(method, path, { body, key, idempotent, raw } = {}) {
  const headers = { Accept: "application/json" };
  const apiKey = key ?? session.key();
  if (apiKey) headers["X-Api-Key"] = apiKey;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotent) headers["Idempotency-Key"] = idempotencyKey();
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const date = response.headers.get("Date");
  if (date) skewMs = new Date(date).getTime() + 500 - Date.now();
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) {
    const detail = data && data.detail !== undefined ? data.detail : `HTTP ${response.status}`;
    throw new ApiError(response.status, data?.error ?? "http_error", typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return raw ? { data, headers: response.headers } : data;
}

function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

function showError(box, error) {
  box.hidden = false;
  box.textContent = error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`;
}

function clearError(box) {
  box.hidden = true;
  box.textContent = "";
}

// Runs an action for a button, disabling it meanwhile and showing the API's sentence on failure.
async function act(button, box, work) {
  clearError(box);
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    showError(box, error);
  } finally {
    button.disabled = false;
  }
}

function confirmDialog(title, body, okLabel) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  const holder = document.getElementById("confirm-body");
  holder.replaceChildren(body);
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function table(headers, rows, caption) {
  // Each cell carries its column's name, shown beside it when a phone stacks the rows.
  for (const row of rows) {
    [...row.children].forEach((cell, i) => cell.setAttribute("data-label", headers[i]?.label ?? headers[i] ?? ""));
  }
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((head) => h("th", { scope: "col", class: head.num ? "num" : null }, head.label ?? head)))),
      h("tbody", {}, rows),
    ),
  );
}

function statusEl(status) {
  return h("span", { class: `status status-${status}` }, status);
}

function setPage(title, ...content) {
  document.title = `${title} · AITBC GPU marketplace`;
  main().replaceChildren(h("h1", {}, title), ...content);
}

// Refreshes part of a page: when an event of yours arrives (signed in), and every few
// seconds while the tab is visible (every minute when events drive it); one per page.
let refreshTimer = null;
let refreshPage = null;
function every(work) {
  clearInterval(refreshTimer);
  refreshPage = work;
  // Events heard while the page was still loading may postdate what it loaded.
  if (feed.heard !== feed.heardAtStart) work().catch(() => {});
  refreshTimer = setInterval(() => {
    if (document.visibilityState === "visible") work().catch(() => {});
  }, session.key() ? SIGNED_IN_REFRESH_MS : REFRESH_MS);
}

// ---------- your events: notifications, and pages refreshed by them ----------

const NOTICES_KEPT = 20;
// heard: pages of new events so far; heardAtStart: as many when this page began to load.
const feed = { following: false, unread: 0, heard: 0, heardAtStart: 0 };

function noticeText(event) {
  const data = event.data || {};
  const state = data.status || data.state || "";
  const amount = data.amount ? ` ${money(data.amount)}` : "";
  return `${event.type.replace(".", " ")} ${event.object_id}${state ? ` (${state})` : ""}${amount}`;
}

function showNotices(events, fresh) {
  const box = document.getElementById("notices");
  const list = document.getElementById("notice-list");
  box.hidden = false;
  for (const event of events) {
    list.prepend(h("li", { "data-event": event.type }, timeEl(event.at), " ", noticeText(event)));
  }
  while (list.children.length > NOTICES_KEPT) list.lastChild.remove();
  if (fresh) feed.unread += events.length;
  document.getElementById("notice-count").textContent = feed.unread ? String(feed.unread) : "";
}

async function follow() {
  if (feed.following || !session.key()) return;
  feed.following = true;
  try {
    const first = await api("GET", "/v1/events?latest=true&limit=10");
    showNotices(first.events, false);
    let after = first.next_after;
    while (session.key()) {
      const page = await api("GET", `/v1/events?after=${after}&wait=25`);
      after = page.next_after;
      if (page.events.length) {
        feed.heard += 1;
        showNotices(page.events, true);
        announce(noticeText(page.events[page.events.length - 1]));
        if (refreshPage && !document.querySelector("dialog[open]")) refreshPage().catch(() => {});
      }
    }
  } catch {
    setTimeout(() => { feed.following = false; follow(); }, 5000);  // the server away: again
    return;
  }
  feed.following = false;
}

document.getElementById("notices").addEventListener("toggle", (event) => {
  if (event.target.open) {
    feed.unread = 0;
    document.getElementById("notice-count").textContent = "";
  }
});

function needRole(...roles) {
  const role = session.role();
  if (roles.includes(role)) return true;
  setPage(
    "Sign in needed",
    h("p", {}, `This page needs a ${roles.join(" or ")} API key. `, h("a", { href: `/signin?next=${encodeURIComponent(location.pathname)}` }, "Sign in")),
  );
  return false;
}

// ---------- header ----------

function renderHeader() {
  const me = session.me();
  for (const item of document.querySelectorAll("#nav [data-role]")) item.hidden = !me || item.dataset.role !== me.role;
  document.getElementById("signin-link").hidden = Boolean(me);
  const who = document.getElementById("whoami");
  who.hidden = !me;
  who.textContent = me ? `${me.owner_id} (${me.role})` : "";
  document.getElementById("signout").hidden = !me;
}

document.getElementById("signout").addEventListener("click", () => {
  session.clear();
  location.assign("/");
});

// ---------- sign in ----------


// Where to go after signing in: only a path on this origin, read as the browser reads it
// ("/\evil.test/" and "/<tab>/evil.test" are other hosts to a browser), never elsewhere.
function sameOriginPath(next) {
  if (!next || !next.startsWith("/")) return null;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return null;
  }
  return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
}

function signinPage() {
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const box = errorBox();
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  // The input has no name: even a form sent without this script carries no key.
  const form = h(
    "form",
    { class: "panel", method: "post", action: "/signin" },
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { class: "muted" }, "Kept in this browser tab only (sessionStorage) and sent as the X-Api-Key header; closing the tab forgets it."),
    box,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(button, box, async () => {
      const key = input.value.trim();
      const me = await api("GET", "/v1/me", { key });
      if (!me.role) throw new ApiError(401, "anonymous", "That key is not known.");
      session.save(key, me);
      const home = { client: "/account", miner: "/provider", admin: "/admin" }[me.role] || "/";
      location.assign(sameOriginPath(new URLSearchParams(location.search).get("next")) || home);
    });
  });
  setPage("Sign in", form);
  input.focus();
}

// ---------- browse ----------

const FILTERS = [
  { name: "model", label: "GPU model", type: "search", placeholder: "e.g. 4090" },
  { name: "memory_min", label: "Memory at least (GB)", type: "number", min: "0" },
  { name: "price_max", label: "Price at most (per hour)", type: "text", inputmode: "decimal" },
  { name: "region", label: "Region", type: "text" },
  { name: "ai_model", label: "AI model", type: "text" },
];
const SORTS = [
  ["price", "Price, cheapest first"],
  ["memory", "Memory, largest first"],
  ["rating", "Rating, best first"],
  ["uptime", "Uptime (7 days), best first"],
  ["newest", "Newest first"],
];
const STATUSES = ["", "available", "booked", "offline"];
const PAGE_SIZE = 20;

function gpuStatus(gpu) {
  const parts = [statusEl(gpu.status)];
  if (gpu.status === "booked" && gpu.booking_expires) parts.push(" ", countdown(gpu.booking_expires));
  // Coordinators that report the next reservation (next_reservation_at) get it shown.
  if (gpu.next_reservation_at) parts.push(h("span", { class: "muted" }, " · next booking ", timeEl(gpu.next_reservation_at)));
  return h("span", { class: "gpu-status" }, parts);
}

function rating(gpu) {
  return gpu.average_rating === null ? "no reviews" : `★ ${gpu.average_rating} (${gpu.review_count})`;
}

function gpuRow(gpu) {
  return h(
    "tr",
    { "data-gpu": gpu.gpu_id },
    h("td", {}, h("a", { href: `/gpus/${encodeURIComponent(gpu.gpu_id)}` }, gpu.model)),
    h("td", { class: "num" }, `${gpu.memory_gb} GB`),
    h("td", { class: "num" }, money(gpu.price_per_hour)),
    h("td", {}, gpuStatus(gpu)),
    h("td", {}, rating(gpu)),
    h("td", { class: "num" }, `${gpu.uptime_7d_pct} %`),
    h("td", {}, dash(gpu.region)),
    h("td", {}, gpu.ai_models.join(", ") || "–"),
  );
}

async function browsePage() {
  const params = new URLSearchParams(location.search);
  const fields = FILTERS.map((f) =>
    h(
      "div",
      {},
      h("label", { for: `f-${f.name}` }, f.label),
      h("input", { id: `f-${f.name}`, name: f.name, type: f.type, min: f.min, inputmode: f.inputmode, placeholder: f.placeholder, value: params.get(f.name) ?? "" }),
    ),
  );
  const statusSelect = h(
    "select",
    { id: "f-status", name: "status" },
    STATUSES.map((v) => h("option", { value: v, selected: params.get("status") === v }, v || "any")),
  );
  const sortSelect = h(
    "select",
    { id: "f-sort", name: "sort" },
    SORTS.map(([v, label]) => h("option", { value: v, selected: (params.get("sort") || "price") === v }, label)),
  );
  // A plain GET form: submitting it puts the filters in the address, so a search can be shared.
  const form = h(
    "form",
    { class: "filters panel", method: "get", action: "/", role: "search", "aria-label": "Filter GPUs" },
    fields,
    h("div", {}, h("label", { for: "f-status" }, "Status"), statusSelect),
    h("div", { class: "wide" }, h("label", { for: "f-sort" }, "Sort by"), sortSelect),
    h("div", {}, h("label", { class: "inline" }, h("input", { type: "checkbox", name: "available", value: "true", checked: params.get("available") === "true" }), "Available now only")),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Search"), h("a", { href: "/" }, "Clear")),
  );
  // Empty fields stay out of the address.
  form.addEventListener("submit", () => {
    for (const el of form.elements) if (el.name && el.value === "") el.disabled = true;
  });
  const box = errorBox();
  const results = h("div", { id: "results", "aria-live": "polite" });
  const stats = h("p", { id: "market-stats", class: "muted" });
  setPage("Browse GPUs", stats, form, box, results);

  const query = new URLSearchParams();
  for (const [name, value] of params) if (value !== "") query.set(name, value);
  if (!query.has("limit")) query.set("limit", String(PAGE_SIZE));

  async function load() {
    const { data, headers } = await api("GET", `/v1/marketplace/gpu/list?${query}`, { raw: true });
    const next = headers.get("X-Next-Cursor");
    const rows = data.map(gpuRow);
    const pager = h("nav", { class: "pager", "aria-label": "Pages" });
    if (params.get("cursor") || params.get("offset")) {
      const first = new URLSearchParams(params);
      first.delete("cursor");
      first.delete("offset");
      pager.append(h("a", { href: `/?${first}` }, "First page"));
    }
    if (next) {
      const nextParams = new URLSearchParams(params);
      nextParams.delete("offset");
      nextParams.set("cursor", next);
      pager.append(h("a", { href: `/?${nextParams}`, rel: "next" }, "Next page →"));
    }
    results.replaceChildren(
      data.length
        ? table(
            ["Model", { label: "Memory", num: true }, { label: "Price / hour", num: true }, "Status", "Rating", { label: "Uptime 7 d", num: true }, "Region", "AI models"],
            rows,
            "GPUs",
          )
        : h("p", {}, "No GPU matches these filters."),
      pager,
    );
  }
  try {
    await load();
  } catch (error) {
    showError(box, error);
  }
  api("GET", "/v1/marketplace/stats")
    .then((st) => {
      stats.textContent = `${st.totalOffers} offers · ${st.openCapacity} GPUs open · average price ${money(st.averagePrice)} · ${st.activeBids} active bids`;
    })
    .catch(() => {});
  every(async () => {
    if (!results.contains(document.activeElement)) await load();
  });
}

// ---------- charts (inline SVG) ----------

function lineChart(points, { label, yLabel }) {
  // points: [{x: label text, y: API decimal string}]; y becomes a float only for its position.
  const width = 560;
  const height = 200;
  const pad = { left: 52, right: 12, top: 12, bottom: 34 };
  const values = points.map((p) => Number(p.y));
  let min = Math.min(...values);
  let max = Math.max(...values);
  // One value (a single point, or a flat line): a tenth of it either side, and one label
  // at its height; not a scale of ±1 around it (a price of 0.40 read -0.60 to 1.40).
  const flat = min === max;
  if (flat) {
    const margin = Math.abs(min) / 10 || 1;
    min -= margin;
    max += margin;
  }
  const first = points[0].x;
  const last = points[points.length - 1].x;
  const x = (i) => pad.left + (points.length === 1 ? (width - pad.left - pad.right) / 2 : (i * (width - pad.left - pad.right)) / (points.length - 1));
  const y = (v) => pad.top + ((max - v) * (height - pad.top - pad.bottom)) / (max - min);
  const path = values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const svg = s(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    s("line", { class: "axis", x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom }),
    s("line", { class: "axis", x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom }),
    ...(flat
      ? [s("text", { class: "y-label", x: 4, y: y(values[0]) + 4 }, points[0].y)]
      : [
          s("text", { class: "y-label", x: 4, y: pad.top + 8 }, points[values.indexOf(Math.max(...values))].y),
          s("text", { class: "y-label", x: 4, y: height - pad.bottom }, points[values.indexOf(Math.min(...values))].y),
        ]),
    ...(first === last
      ? [s("text", { class: "x-label", x: (pad.left + width - pad.right) / 2, y: height - 8, "text-anchor": "middle" }, first)]
      : [
          s("text", { class: "x-label", x: pad.left, y: height - 8 }, first),
          s("text", { class: "x-label", x: width - pad.right, y: height - 8, "text-anchor": "end" }, last),
        ]),
    s("path", { class: "line", d: path }),
    ...values.map((v, i) => s("circle", { class: "dot", cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 3 }, s("title", {}, `${points[i].x}: ${points[i].y}`))),
  );
  // The same figures as a table, for screen readers and for reading exact values.
  const details = h(
    "details",
    {},
    h("summary", {}, "Show the figures"),
    table(["When", { label: yLabel, num: true }], points.map((p) => h("tr", {}, h("td", {}, p.x), h("td", { class: "num" }, p.y))), label),
  );
  return h("figure", { class: "chart" }, svg, h("figcaption", { class: "muted" }, label), details);
}

function starBars(distribution, count) {
  const rows = [];
  for (const star of ["5", "4", "3", "2", "1"]) {
    const n = distribution[star] ?? 0;
    const width = count ? (100 * n) / count : 0;
    rows.push(
      h("span", {}, `${star} ★`),
      h("span", { class: "bar" }, s("svg", { viewBox: "0 0 100 12", preserveAspectRatio: "none", "aria-hidden": "true" }, s("rect", { width: width.toFixed(2), height: 12, fill: "#0b57d0" }))),
      h("span", { class: "num", "data-star": star }, String(n)),
    );
  }
  return h("div", { class: "bars", role: "group", "aria-label": "Star distribution" }, rows);
}

// ---------- a GPU's page ----------

function specs(gpu) {
  const items = [
    ["GPU id", gpu.gpu_id],
    ["Provider", gpu.miner_id],
    ["Memory", `${gpu.memory_gb} GB`],
    ["CUDA cores", dash(gpu.cuda_cores)],
    ["Compute capability", dash(gpu.compute_capability)],
    ["CUDA version", dash(gpu.cuda_version)],
    ["Region", dash(gpu.region)],
    ["AI models", gpu.ai_models.join(", ") || "–"],
    ["Price per hour", money(gpu.price_per_hour)],
    ["Base price per hour", money(gpu.base_price_per_hour)],
    ["Pricing", gpu.pricing_mode],
    ["Interruptible", interruptibleText(gpu)],
    ["Bookings so far", String(gpu.total_bookings)],
    ["Listed", timeEl(gpu.created_at)],
  ];
  return h("dl", { class: "specs" }, items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// What renting it interruptibly takes now (docs/market.md): the least bid, and the lowest
// that would win it now.
function interruptibleText(gpu) {
  const m = gpu.market;
  if (!m || !m.interruptible) return "not offered by its provider";
  const winning = m.lowest_winning_bid
    ? `lowest winning bid now ${money(m.lowest_winning_bid)}`
    : "no bid wins it now (held on demand)";
  return `bids from ${money(m.min_bid_per_hour)} per hour; ${winning}`;
}

function health(gpu) {
  const hh = gpu.health || {};
  const items = [
    ["Status", gpuStatus(gpu)],
    ["Last heartbeat", timeEl(gpu.last_heartbeat)],
    ["Utilisation", hh.utilization_pct === undefined ? "–" : `${hh.utilization_pct} %`],
    ["Memory used", hh.memory_used_gb === undefined ? "–" : `${hh.memory_used_gb} of ${dash(hh.memory_total_gb)} GB`],
    ["Temperature", hh.temperature_c === undefined ? "–" : `${hh.temperature_c} °C`],
    ["Figures reported", timeEl(gpu.health_at)],
    ["Uptime, 24 hours", `${gpu.uptime_24h_pct} %`],
    ["Uptime, 7 days", `${gpu.uptime_7d_pct} %`],
  ];
  return h("dl", { class: "specs", id: "health" }, items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function bookingForm(gpu, onBooked) {
  const role = session.role();
  if (role !== "client") {
    return h("p", {}, "To book this GPU, ", h("a", { href: `/signin?next=${encodeURIComponent(location.pathname)}` }, "sign in with a client key"), ".");
  }
  const hours = h("input", { id: "book-hours", type: "text", inputmode: "decimal", required: true, value: "1", "aria-describedby": "book-hours-help" });
  const rental = h(
    "select",
    { id: "book-rental", "aria-describedby": "book-rental-help" },
    h("option", { value: "on_demand" }, "On demand: yours for the whole window"),
    h("option", { value: "interruptible" }, "Interruptible: pay your bid, may be preempted"),
  );
  const bid = h("input", { id: "book-bid", type: "text", inputmode: "decimal", "aria-describedby": "book-rental-help" });
  const bidLabel = h("label", { for: "book-bid", hidden: true }, "Your bid per hour");
  const start = h("input", { id: "book-start", type: "datetime-local", "aria-describedby": "book-start-help" });
  const quoteOut = h("div", { id: "quote", "aria-live": "polite" });
  const box = errorBox();
  const quoteButton = h("button", { type: "submit" }, "Get a quote");
  const bookButton = h("button", { type: "button", class: "primary", disabled: true }, "Book");
  const note = h("p", { id: "book-note", class: "muted", "aria-live": "polite" });
  let quote = null;
  const form = h(
    "form",
    { class: "panel", id: "book-form" },
    h("label", { for: "book-hours" }, "Duration (hours)"),
    hours,
    h("p", { id: "book-hours-help", class: "muted" }, "Decimals allowed, e.g. 0.5."),
    h("label", { for: "book-rental" }, "Rental type"),
    rental,
    bidLabel,
    bid,
    h("p", { id: "book-rental-help", class: "muted" }, "Interruptible: you pay your bid; an on-demand renter or a higher bid takes the GPU after a notice, and the unused time is refunded at once."),
    h("label", { for: "book-start" }, "Start (optional, your local time)"),
    start,
    h("p", { id: "book-start-help", class: "muted" }, "Leave empty to start now."),
    note,
    quoteOut,
    box,
    h("div", { class: "actions" }, quoteButton, bookButton),
  );
  // What the GPU's status allows: booking now only while it is available; a later start
  // while it is booked; nothing while it is offline or delisted.
  const follow = () => {
    const bidding = rental.value === "interruptible";
    bidLabel.hidden = bid.hidden = !bidding;
    const winning = gpu.market && gpu.market.lowest_winning_bid;
    if (bidding && !bid.value && winning) bid.value = winning;
    const open = gpu.status === "available" || (gpu.status === "booked" && start.value) || (bidding && winning);
    quoteButton.disabled = !open || bidding;
    if (bidding) bookButton.disabled = !open;
    const says = {
      booked: "Booked now: choose a start after its booking ends to reserve it.",
      offline: "Its miner is offline: it cannot be booked until the miner is back.",
      delisted: "It has been delisted: it cannot be booked.",
    }[gpu.status];
    note.replaceChildren(says ?? "");
  };
  const invalidate = () => {
    quote = null;
    bookButton.disabled = true;
    quoteOut.replaceChildren();
    follow();
  };
  hours.addEventListener("input", invalidate);
  start.addEventListener("input", invalidate);
  rental.addEventListener("change", invalidate);
  form.follow = (latest) => {
    gpu = latest;
    if (gpu.status !== "available" && !start.value) invalidate();
    else follow();
  };
  follow();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(quoteButton, box, async () => {
      quote = await api("POST", `/v1/marketplace/gpu/${encodeURIComponent(gpu.gpu_id)}/quote`, { body: { duration_hours: hours.value.trim() } });
      quoteOut.replaceChildren(
        h(
          "dl",
          { class: "specs" },
          h("dt", {}, "Price per hour"),
          h("dd", {}, money(quote.price_per_hour)),
          h("dt", {}, "Hours"),
          h("dd", {}, quote.duration_hours),
          h("dt", {}, "Total"),
          h("dd", { id: "quote-total" }, money(quote.total_cost)),
          h("dt", {}, "Quote holds until"),
          h("dd", {}, timeEl(quote.expires_at)),
        ),
      );
      bookButton.disabled = false;
      bookButton.focus();
    });
  });
  bookButton.addEventListener("click", () =>
    act(bookButton, box, async () => {
      const body = { duration_hours: hours.value.trim() };
      if (rental.value === "interruptible") Object.assign(body, { rental_type: "interruptible", bid_per_hour: bid.value.trim() });
      else body.quote_id = quote.quote_id;
      if (start.value) body.start_time = new Date(start.value).toISOString();
      const booking = await api("POST", `/v1/marketplace/gpu/${encodeURIComponent(gpu.gpu_id)}/book`, { body, idempotent: true });
      invalidate();
      onBooked(booking);
    }),
  );
  return form;
}

function reviewForm(gpu, mine, onSaved) {
  if (session.role() !== "client") return h("p", { class: "muted" }, "Clients who have booked this GPU can review it.");
  const box = errorBox();
  const comment = h("textarea", { id: "review-comment", rows: 3, maxlength: 2000 }, mine?.comment ?? "");
  const stars = [1, 2, 3, 4, 5].map((n) =>
    h("label", { class: "inline" }, h("input", { type: "radio", name: "rating", value: String(n), required: true, checked: mine?.rating === n }), `${n} ★`),
  );
  const button = h("button", { type: "submit", class: "primary" }, mine ? "Save changes" : "Post review");
  const form = h(
    "form",
    { class: "panel", id: "review-form" },
    h("fieldset", {}, h("legend", {}, "Your rating"), h("div", { class: "stars" }, stars)),
    h("label", { for: "review-comment" }, "Comment (optional)"),
    comment,
    box,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const picked = form.querySelector("input[name=rating]:checked");
    act(button, box, async () => {
      const body = { rating: Number(picked.value), comment: comment.value || null };
      if (mine) await api("PUT", `/v1/marketplace/reviews/${encodeURIComponent(mine.review_id)}`, { body });
      else await api("POST", `/v1/marketplace/gpu/${encodeURIComponent(gpu.gpu_id)}/reviews`, { body });
      announce("Review saved.");
      await onSaved();
    });
  });
  return form;
}

function reviewItem(review) {
  const box = errorBox();
  const flag = session.key()
    ? h("button", {
        type: "button",
        onclick: async (event) => {
          const reason = h("input", { id: "flag-reason", type: "text", required: true, value: "inappropriate" });
          const ok = await confirmDialog("Flag this review", h("div", {}, h("label", { for: "flag-reason" }, "Reason"), reason), "Flag");
          if (!ok) return;
          act(event.target, box, async () => {
            await api("POST", `/v1/marketplace/reviews/${encodeURIComponent(review.review_id)}/flag`, { body: { reason: reason.value } });
            event.target.textContent = "Flagged";
            event.target.disabled = true;
          });
        },
      }, "Flag")
    : null;
  return h(
    "article",
    { class: "review", "data-review": review.review_id },
    h("p", {}, h("strong", {}, `${"★".repeat(review.rating)}${"☆".repeat(5 - review.rating)}`), h("span", { class: "visually-hidden" }, ` ${review.rating} of 5`), ` by ${review.reviewer_id}`, review.verified ? " · verified booking" : "", " · ", timeEl(review.updated_at)),
    review.comment ? h("p", {}, review.comment) : null,
    flag,
    box,
  );
}

async function gpuPage(gpuId) {
  const box = errorBox();
  setPage("GPU", box);
  let gpu;
  try {
    gpu = await api("GET", `/v1/marketplace/gpu/${encodeURIComponent(gpuId)}`);
  } catch (error) {
    showError(box, error);
    return;
  }
  const me = session.me();
  const healthHolder = h("section", { "aria-labelledby": "h-health" }, h("h2", { id: "h-health" }, "Status and health"), health(gpu));
  const bookedOut = h("div", { id: "booked", "aria-live": "polite" });
  const reviewsHolder = h("div", { id: "reviews" });
  const ratingChart = h("div", { id: "rating-history" });
  const priceChart = h("div", { id: "price-history" });
  const reviewBox = h("div");

  const summary = h("p", { id: "gpu-summary" });
  const showSummary = () => summary.replaceChildren(gpuStatus(gpu), ` · ${money(gpu.price_per_hour)} per hour · ${rating(gpu)}`);
  let form = null;

  async function refreshGpu() {
    gpu = await api("GET", `/v1/marketplace/gpu/${encodeURIComponent(gpuId)}`);
    healthHolder.replaceChildren(h("h2", { id: "h-health" }, "Status and health"), health(gpu));
    showSummary();
    form?.follow?.(gpu);
  }

  async function loadReviews() {
    const data = await api("GET", `/v1/marketplace/gpu/${encodeURIComponent(gpuId)}/reviews?limit=50`);
    const mine = me?.role === "client" ? data.reviews.find((r) => r.reviewer_id === me.owner_id) : null;
    reviewsHolder.replaceChildren(
      h("p", { id: "rating-summary" }, data.average_rating === null ? "No reviews yet." : `★ ${data.average_rating} from ${data.review_count} review${data.review_count === 1 ? "" : "s"}`),
      starBars(data.distribution, data.review_count),
      ...data.reviews.map(reviewItem),
    );
    reviewBox.replaceChildren(h("h3", {}, mine ? "Edit your review" : "Write a review"), reviewForm(gpu, mine, async () => {
      await loadReviews();
      await loadRatingHistory();
    }));
  }

  async function loadRatingHistory() {
    const points = await api("GET", `/v1/marketplace/gpu/${encodeURIComponent(gpuId)}/rating-history?bucket=day`);
    const rated = points.filter((p) => p.average_rating !== null);
    ratingChart.replaceChildren(
      rated.length ? lineChart(rated.map((p) => ({ x: p.period_start.slice(0, 10), y: p.average_rating })), { label: "Average rating by day", yLabel: "Average rating" }) : h("p", { class: "muted" }, "No rating history yet."),
    );
  }

  async function loadPriceHistory() {
    const points = await api("GET", `/v1/marketplace/pricing/${encodeURIComponent(gpu.model)}/history?limit=100`);
    priceChart.replaceChildren(
      points.length ? lineChart(points.map((p) => ({ x: when(p.at), y: p.current_price })), { label: `Market price of ${gpu.model} per hour`, yLabel: "Price per hour" }) : h("p", { class: "muted" }, "No price history yet."),
    );
  }

  const onBooked = async (booking) => {
    bookedOut.replaceChildren(
      h("p", { class: "ok", role: "status" }, `Booked: ${money(booking.total_cost)} in escrow, `, booking.status === "pending" ? `starts ${when(booking.start_time)}` : countdown(booking.end_time), ". "),
      h("p", {}, h("a", { href: "/account" }, "See it in your bookings")),
    );
    await refreshGpu();
  };

  showSummary();
  form = bookingForm(gpu, onBooked);
  setPage(
    `${gpu.model} · ${gpu.memory_gb} GB`,
    summary,
    h(
      "div",
      { class: "grid" },
      h("section", { "aria-labelledby": "h-specs" }, h("h2", { id: "h-specs" }, "Specifications"), specs(gpu), gpu.description ? h("p", {}, gpu.description) : null),
      healthHolder,
      h("section", { "aria-labelledby": "h-book" }, h("h2", { id: "h-book" }, "Book"), form, bookedOut),
    ),
    h("div", { class: "grid" }, h("section", {}, h("h2", {}, "Rating history"), ratingChart), h("section", {}, h("h2", {}, "Price history"), priceChart)),
    h("section", { "aria-labelledby": "h-reviews" }, h("h2", { id: "h-reviews" }, "Reviews"), reviewsHolder, reviewBox),
  );
  await Promise.all([loadReviews(), loadRatingHistory(), loadPriceHistory()].map((p) => p.catch((e) => showError(box, e))));
  every(refreshGpu);
}

// ---------- a client's account ----------

async function releaseFlow(booking, button, box, after) {
  await act(button, box, async () => {
    const preview = await api("GET", `/web/bookings/${encodeURIComponent(booking.booking_id)}/release-preview`);
    const body = h(
      "dl",
      { class: "specs" },
      h("dt", {}, "Paid into escrow"),
      h("dd", {}, money(preview.paid)),
      h("dt", {}, "Charged if released now"),
      h("dd", {}, money(preview.charged)),
      h("dt", {}, "Refund if released now"),
      h("dd", { id: "preview-refund" }, money(preview.refund)),
    );
    // One booking of a gang releases the whole gang: the figures are the gang's.
    const title = preview.gang_id ? `Release its gang's ${preview.bookings} bookings?` : "Release this booking?";
    const ok = await confirmDialog(title, h("div", {}, body, h("p", { class: "muted" }, "The figures are the server's as of now; the seconds until you confirm are charged too.")), "Release");
    if (!ok) return;
    let done = await api("POST", `/v1/bookings/${encodeURIComponent(booking.booking_id)}/release`, { idempotent: true });
    if (preview.gang_id) {
      const gang = await api("GET", `/v1/gangs/${encodeURIComponent(preview.gang_id)}`);
      done = { ...done, gpu_id: `${gang.size} GPUs (gang ${gang.gang_id})`, amount_charged: gang.amount_charged, refund: gang.refund };
    }
    announce(`Released. Refund ${money(done.refund)}.`);
    await after(done);
  });
}

function extendForm(booking, after) {
  const id = `extend-${booking.booking_id}`;
  const input = h("input", { id, type: "text", inputmode: "decimal", value: "1", size: 4 });
  const box = errorBox();
  const button = h("button", { type: "submit" }, "Extend");
  const form = h("form", { class: "extend" }, h("label", { for: id }, "Add hours"), input, button, box);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(button, box, async () => {
      const done = await api("POST", `/v1/bookings/${encodeURIComponent(booking.booking_id)}/extend`, { body: { hours: input.value.trim() }, idempotent: true });
      announce(`Extended; total ${money(done.total_cost)}.`);
      await after();
    });
  });
  return form;
}

function bookingRow(b, after, { client }) {
  const live = b.status === "active" || b.status === "pending";
  const box = errorBox();
  const actions = [];
  if (client && live) {
    const release = h("button", { type: "button", class: "danger" }, b.status === "pending" ? "Cancel…" : "Release…");
    release.addEventListener("click", () => releaseFlow(b, release, box, after));
    actions.push(release, extendForm(b, after));
  }
  return h(
    "tr",
    { "data-booking": b.booking_id },
    h("td", {}, gpuLink(b.gpu_id)),
    h(
      "td",
      {},
      statusEl(b.status),
      live && b.status === "active" ? [" ", countdown(b.end_time)] : null,
      b.miner_offline_since
        ? h("p", { class: "warn", role: "status" }, "Its miner has been silent since ", timeEl(b.miner_offline_since), ": the clock stopped then, and that time is not charged.")
        : null,
      b.rental_type === "interruptible" ? h("p", { class: "muted" }, `Interruptible, bid ${money(b.bid_per_hour)} per hour`) : null,
      b.gang_id ? h("p", { class: "muted gang" }, `One of gang ${b.gang_id}: released, extended and preempted together with its other GPUs.`) : null,
      b.status === "preempted"
        ? h("p", { class: "warn preempted", role: "status" }, "Outbid: the GPU is taken at ", timeEl(b.ended_at), `; billing stops then, and the unused ${money(b.refund)} came back at once.`)
        : null,
    ),
    h("td", {}, timeEl(b.start_time), " – ", timeEl(b.end_time)),
    h("td", { class: "num" }, hoursText(b.duration_hours)),
    h("td", { class: "num" }, money(b.total_cost)),
    h("td", { class: "num" }, money(b.amount_charged)),
    h("td", { class: "num refund" }, money(b.refund)),
    h("td", {}, client ? null : b.client_id, actions, box),
  );
}

function bookingsTable(bookings, after, opts) {
  if (!bookings.length) return h("p", {}, "No bookings yet.");
  return table(
    ["GPU", "Status", "Window", { label: "Hours", num: true }, { label: "Total", num: true }, { label: "Charged", num: true }, { label: "Refund", num: true }, opts.client ? "Actions" : "Client"],
    bookings.map((b) => bookingRow(b, after, opts)),
    "Bookings",
  );
}

function movedWords(entry, bookedGpu) {
  // A balance line as the renter would say it.
  const gpuId = bookedGpu.get(entry.booking_id);
  const on = gpuId ? ` on ${gpuNames.get(gpuId) ?? gpuId}` : entry.booking_id ? ` (booking ${entry.booking_id})` : "";
  const ended = { booking_completed: "ran to its end", booking_released: "released early", booking_cancelled: "cancelled", booking_interrupted: "interrupted (its miner went silent)", booking_preempted: "outbid" };
  if (entry.kind === "deposit") return "Deposit";
  if (entry.kind === "booking_escrow") return `Booking${on}: its cost set aside`;
  if (entry.kind === "booking_extension") return `Extension of the booking${on}`;
  if (entry.kind === "booking_bid_raised") return `Raised bid on the booking${on}`;
  if (entry.kind === "booking_outage_refund") return `Refund: the time the miner was silent, booking${on}`;
  if (ended[entry.kind]) return `Refund of unused time: booking${on} ${ended[entry.kind]}`;
  return `${entry.kind.replaceAll("_", " ")}${on}`;
}

async function accountPage() {
  if (!needRole("client")) return;
  const box = errorBox();
  const balance = h("div", { id: "balance" });
  const bookings = h("div", { id: "bookings" });
  const orders = h("div", { id: "orders" });
  const jobs = h("div", { id: "jobs" });
  const bids = h("div", { id: "bids" });
  const ledger = h("div", { id: "ledger" });
  const statement = h("div", { id: "statement" });
  const bookedGpu = new Map(); // booking id -> GPU id, for the statement's words
  const lastRelease = h("div", { id: "last-release", "aria-live": "polite" });
  setPage(
    "My account",
    box,
    h("section", {}, h("h2", {}, "Balance"), balance),
    h("section", {}, h("h2", {}, "Bookings"), lastRelease, bookings),
    h("section", {}, h("h2", {}, "Orders"), orders),
    h("div", { class: "grid" }, h("section", {}, h("h2", {}, "Jobs"), jobs), h("section", {}, h("h2", {}, "Bids"), bids)),
    h("section", {}, h("h2", {}, "Money in and out"), statement),
    h("details", { id: "ledger-details" }, h("summary", {}, "The ledger (every double-entry line, escrow included)"), ledger),
  );

  async function loadBalance() {
    const acc = await api("GET", "/v1/accounts/me");
    balance.replaceChildren(
      h("dl", { class: "specs" }, h("dt", {}, "Balance"), h("dd", { id: "balance-amount" }, money(acc.balance)), h("dt", {}, "In escrow"), h("dd", {}, money(acc.escrow)), h("dt", {}, "Unsettled"), h("dd", {}, money(acc.unsettled))),
    );
  }
  const afterChange = async (released) => {
    if (released?.refund !== undefined) {
      lastRelease.replaceChildren(h("p", { class: "ok", role: "status" }, `Released booking on ${released.gpu_id}: charged ${money(released.amount_charged)}, refunded ${money(released.refund)}.`));
    }
    await Promise.all([loadBookings().then(loadLedger), loadBalance(), loadOrders()]);
  };
  async function loadBookings() {
    const list = await api("GET", "/v1/bookings?limit=50");
    await nameGpus(list.map((b) => b.gpu_id));
    list.forEach((b) => bookedGpu.set(b.booking_id, b.gpu_id));
    bookings.replaceChildren(bookingsTable(list, afterChange, { client: true }));
  }
  async function loadOrders() {
    const list = await api("GET", "/v1/marketplace/orders?limit=50");
    await nameGpus(list.map((o) => o.gpu_id));
    orders.replaceChildren(
      list.length
        ? table(
            ["Order", "GPU", "Status", { label: "Total", num: true }, { label: "Charged", num: true }, { label: "Refund", num: true }, "History"],
            list.map((o) => {
              const holder = h("div");
              const button = h("button", { type: "button", "aria-expanded": "false" }, "Show");
              const errBox = errorBox();
              button.addEventListener("click", () =>
                act(button, errBox, async () => {
                  if (button.getAttribute("aria-expanded") === "true") {
                    holder.replaceChildren();
                    button.setAttribute("aria-expanded", "false");
                    button.textContent = "Show";
                    return;
                  }
                  const detail = await api("GET", `/v1/marketplace/orders/${encodeURIComponent(o.order_id)}`);
                  holder.replaceChildren(h("ol", {}, detail.history.map((e) => h("li", {}, statusEl(e.status), " ", timeEl(e.at)))));
                  button.setAttribute("aria-expanded", "true");
                  button.textContent = "Hide";
                }),
              );
              return h("tr", {}, h("td", {}, o.order_id), h("td", {}, gpuLink(o.gpu_id)), h("td", {}, statusEl(o.status)), h("td", { class: "num" }, money(o.total_cost)), h("td", { class: "num" }, money(o.amount_charged)), h("td", { class: "num" }, money(o.refund)), h("td", {}, button, holder, errBox));
            }),
            "Orders",
          )
        : h("p", {}, "No orders yet."),
    );
  }
  async function loadJobs() {
    const list = await api("GET", "/v1/jobs?limit=50");
    jobs.replaceChildren(
      list.length ? table(["Job", "State", "GPU", { label: "Cost", num: true }, "Submitted"], list.map((j) => h("tr", {}, h("td", {}, j.job_id), h("td", {}, statusEl(j.state)), h("td", {}, dash(j.gpu_id)), h("td", { class: "num" }, money(j.cost)), h("td", {}, timeEl(j.created_at)))), "Jobs") : h("p", {}, "No jobs yet."),
    );
  }
  async function loadBids() {
    const list = await api("GET", "/v1/marketplace/bids?limit=50");
    bids.replaceChildren(
      list.length
        ? table(
            ["Bid", "Status", { label: "Price", num: true }, "Filled", ""],
            list.map((b) => {
              const errBox = errorBox();
              const cancel = b.status === "open" ? h("button", { type: "button" }, "Cancel bid") : null;
              cancel?.addEventListener("click", () => act(cancel, errBox, async () => {
                await api("POST", `/v1/marketplace/bids/${encodeURIComponent(b.id)}/cancel`);
                await loadBids();
              }));
              return h("tr", {}, h("td", {}, b.id), h("td", {}, statusEl(b.status)), h("td", { class: "num" }, money(b.price)), h("td", {}, `${b.filled} of ${b.capacity}`), h("td", {}, cancel, errBox));
            }),
            "Bids",
          )
        : h("p", {}, "No bids yet."),
    );
  }
  async function loadLedger() {
    const list = await api("GET", "/v1/accounts/me/ledger?limit=50");
    // The statement: what moved the balance, in a renter's words (escrow lines left out).
    const moved = list.filter((l) => l.account === "main");
    await nameGpus(moved.map((l) => bookedGpu.get(l.booking_id)).filter(Boolean));
    statement.replaceChildren(
      moved.length
        ? table(
            ["When", "What", { label: "In", num: true }, { label: "Out", num: true }],
            moved.map((l) => {
              const into = !String(l.amount).startsWith("-");
              const amount = String(l.amount).replace(/^-/, "");
              return h("tr", { "data-entry": l.entry_id }, h("td", {}, timeEl(l.created_at)), h("td", {}, movedWords(l, bookedGpu)), h("td", { class: "num" }, into ? money(amount) : ""), h("td", { class: "num" }, into ? "" : money(amount)));
            }),
            "Money in and out",
          )
        : h("p", {}, "No money moved yet."),
    );
    ledger.replaceChildren(
      list.length ? table(["When", "Kind", "Account", { label: "Amount", num: true }, "Booking"], list.map((l) => h("tr", {}, h("td", {}, timeEl(l.created_at)), h("td", {}, l.kind), h("td", {}, l.account), h("td", { class: "num" }, money(l.amount)), h("td", {}, dash(l.booking_id)))), "Ledger") : h("p", {}, "No ledger entries yet."),
    );
  }
  await Promise.all([loadBalance(), loadBookings().then(loadLedger), loadOrders(), loadJobs(), loadBids()].map((p) => p.catch((e) => showError(box, e))));
  // Statuses change without anyone clicking: a booking runs out, a job finishes.
  every(async () => {
    if (document.querySelector("dialog[open]") || main().contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
    await Promise.all([loadBookings().then(loadLedger), loadBalance(), loadOrders(), loadJobs()]);
  });
}

// ---------- a provider's GPUs ----------

function registerForm(me, after) {
  // A GPU registered from the browser, as `aitbc marketplace gpu register` does.
  const name = h("input", { id: "reg-model", type: "text", required: true, placeholder: "RTX 4090" });
  const memory = h("input", { id: "reg-memory", type: "number", min: "1", required: true, value: "24" });
  const price = h("input", { id: "reg-price", type: "text", inputmode: "decimal", required: true, placeholder: "0.50" });
  const box = errorBox();
  const button = h("button", { type: "submit", class: "primary" }, "Register GPU");
  const form = h(
    "form",
    { class: "filters panel", id: "register-gpu", "aria-label": "Register a GPU" },
    h("div", {}, h("label", { for: "reg-model" }, "Model"), name),
    h("div", {}, h("label", { for: "reg-memory" }, "Memory (GB)"), memory),
    h("div", {}, h("label", { for: "reg-price" }, "Price per hour"), price),
    h("div", { class: "actions" }, button),
    box,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(button, box, async () => {
      const body = { gpu: { name: name.value.trim(), memory_gb: Number(memory.value), price_per_hour: price.value.trim() } };
      const made = await api("POST", "/v1/marketplace/gpu/register", { body });
      announce(`GPU registered: ${made.gpu_id}. It is online while your miner heartbeats.`);
      form.reset();
      await after();
    });
  });
  return form;
}

function priceWhy(gpu, market) {
  // Dynamic pricing: the base, the model's demand multiplier, and what set it.
  if (gpu.pricing_mode !== "dynamic" || !market) return "";
  const booked = Math.round(Number(market.demand.utilisation) * 100);
  return h(
    "p",
    { class: "muted price-why" },
    `Base ${money(gpu.base_price_per_hour)} × ${market.demand_multiplier} for demand: ${booked} % of the ${market.demand.supply} online ${gpu.model} GPUs booked (the target is 70 %), ${market.demand.recent_bookings} booking(s) in the last ${market.demand.window_minutes} min.`,
  );
}

function priceForm(gpu, after) {
  const id = `price-${gpu.gpu_id}`;
  const price = h("input", { id, type: "text", inputmode: "decimal", value: gpu.base_price_per_hour, size: 10 });
  const mode = h("select", { id: `mode-${gpu.gpu_id}` }, ["fixed", "dynamic"].map((m) => h("option", { value: m, selected: gpu.pricing_mode === m }, m)));
  const box = errorBox();
  const button = h("button", { type: "submit" }, "Save price");
  const form = h("form", { class: "price-form" }, h("label", { for: id }, "Price per hour"), price, h("label", { for: `mode-${gpu.gpu_id}` }, "Pricing mode"), mode, h("div", { class: "actions" }, button), box);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(button, box, async () => {
      const done = await api("PATCH", `/v1/marketplace/gpu/${encodeURIComponent(gpu.gpu_id)}`, { body: { price_per_hour: price.value.trim(), pricing_mode: mode.value } });
      announce(`Price saved: ${money(done.price_per_hour)} per hour.`);
      await after();
    });
  });
  return form;
}

async function providerPage() {
  if (!needRole("miner")) return;
  const me = session.me();
  const box = errorBox();
  const gpus = h("div", { id: "my-gpus" });
  const earnings = h("div", { id: "earnings" });
  const bookings = h("div", { id: "provider-bookings" });
  // Earnings in a period, by GPU, with a CSV of the lines.
  const fromInput = h("input", { id: "earn-from", type: "date" });
  const toInput = h("input", { id: "earn-to", type: "date" });
  const periodForm = h(
    "form",
    { class: "filters", id: "earn-period" },
    h("div", {}, h("label", { for: "earn-from" }, "From (UTC)"), fromInput),
    h("div", {}, h("label", { for: "earn-to" }, "To, not including (UTC)"), toInput),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Show")),
  );
  periodForm.addEventListener("submit", (event) => {
    event.preventDefault();
    loadEarnings().catch((e) => showError(box, e));
  });
  setPage(
    "My GPUs",
    box,
    h("section", {}, h("h2", {}, "Earnings"), periodForm, earnings),
    h("section", {}, h("h2", {}, "GPUs"), registerForm(me, () => loadGpus()), gpus),
    h("section", {}, h("h2", {}, "Bookings on my GPUs"), bookings),
  );

  async function loadGpus() {
    const list = await api("GET", `/v1/marketplace/gpu/list?miner_id=${encodeURIComponent(me.owner_id)}&limit=100&sort=newest`);
    // Why a dynamic GPU is listed at its price: its model's demand, read once per model.
    const models = [...new Set(list.filter((g) => g.pricing_mode === "dynamic").map((g) => g.model))];
    const markets = Object.fromEntries(
      await Promise.all(models.map(async (m) => [m, await api("GET", `/v1/marketplace/pricing/${encodeURIComponent(m)}`)])),
    );
    gpus.replaceChildren(
      list.length
        ? table(
            ["GPU", "Status", { label: "Price / hour", num: true }, "Utilisation", "Uptime", { label: "Bookings", num: true }, "Change price", ""],
            list.map((g) => {
              const errBox = errorBox();
              const delist = h("button", { type: "button", class: "danger" }, "Delist…");
              delist.addEventListener("click", async () => {
                const ok = await confirmDialog("Delist this GPU?", h("p", {}, `${g.model} (${g.gpu_id}) leaves the marketplace.`), "Delist");
                if (ok) act(delist, errBox, async () => {
                  await api("DELETE", `/v1/marketplace/gpu/${encodeURIComponent(g.gpu_id)}`);
                  announce("GPU delisted.");
                  await loadGpus();
                });
              });
              return h(
                "tr",
                { "data-gpu": g.gpu_id },
                h("td", {}, h("a", { href: `/gpus/${encodeURIComponent(g.gpu_id)}` }, `${g.model} · ${g.memory_gb} GB`)),
                h("td", {}, gpuStatus(g)),
                h("td", { class: "num" }, money(g.price_per_hour), h("br"), h("span", { class: "muted" }, g.pricing_mode), priceWhy(g, markets[g.model])),
                h("td", {}, g.health?.utilization_pct === undefined ? "–" : `${g.health.utilization_pct} %`),
                h("td", {}, `24 h: ${g.uptime_24h_pct} %`, h("br"), `7 d: ${g.uptime_7d_pct} %`),
                h("td", { class: "num" }, String(g.total_bookings)),
                h("td", {}, priceForm(g, loadGpus)),
                h("td", {}, delist, errBox),
              );
            }),
            "My GPUs",
          )
        : h("p", {}, "No GPUs listed yet: register one above, or run the miner agent (`aitbc miner run`) on the GPU host."),
    );
  }
  async function loadEarnings() {
    const range = new URLSearchParams();
    if (fromInput.value) range.set("from_time", `${fromInput.value}T00:00:00Z`);
    if (toInput.value) range.set("to_time", `${toInput.value}T00:00:00Z`);
    const e = await api("GET", `/v1/miners/${encodeURIComponent(me.owner_id)}/earnings?${range}`);
    const csv = [["gpu_id", "model", "earned", "bookings_paid", "currency"], ...e.by_gpu.map((g) => [g.gpu_id, g.model, g.earned, g.bookings_paid, e.currency])]
      .map((row) => row.map((cell) => `"${String(cell).replaceAll('"', '""')}"`).join(","))
      .join("\n");
    const download = h("a", { id: "earnings-csv", href: `data:text/csv;charset=utf-8,${encodeURIComponent(csv + "\n")}`, download: `earnings-${me.owner_id}.csv` }, "Download CSV");
    earnings.replaceChildren(
      h("dl", { class: "specs" }, h("dt", {}, "Earned"), h("dd", {}, money(e.earned)), h("dt", {}, "Pending in open bookings"), h("dd", {}, money(e.pending)), h("dt", {}, "Bookings paid"), h("dd", {}, String(e.bookings_paid)), h("dt", {}, "Jobs completed"), h("dd", {}, String(e.jobs_completed))),
      e.by_gpu.length
        ? table(["GPU", "Model", { label: "Earned", num: true }, { label: "Bookings paid", num: true }], e.by_gpu.map((g) => h("tr", { "data-earned": g.gpu_id }, h("td", {}, h("a", { href: `/gpus/${encodeURIComponent(g.gpu_id)}` }, g.gpu_id)), h("td", {}, g.model), h("td", { class: "num" }, money(g.earned)), h("td", { class: "num" }, String(g.bookings_paid)))), "Earnings by GPU")
        : h("p", { class: "muted" }, "Nothing paid in this period."),
      h("p", {}, download),
    );
  }
  async function loadBookings() {
    const list = await api("GET", "/v1/bookings?limit=50");
    bookings.replaceChildren(bookingsTable(list, loadBookings, { client: false }));
  }
  await Promise.all([loadGpus(), loadEarnings(), loadBookings()].map((p) => p.catch((e) => showError(box, e))));
  every(async () => {
    if (gpus.contains(document.activeElement) || document.querySelector("dialog[open]")) return;
    await Promise.all([loadGpus(), loadBookings(), loadEarnings()]);
  });
}

// ---------- admin ----------

async function adminPage() {
  if (!needRole("admin")) return;
  const box = errorBox();
  const flagged = h("div", { id: "flagged" });
  const keys = h("div", { id: "keys" });
  const stats = h("div", { id: "stats" });
  const offers = h("div", { id: "offers" });

  // Deposit form.
  const depOwner = h("input", { id: "dep-owner", type: "text", required: true });
  const depAmount = h("input", { id: "dep-amount", type: "text", inputmode: "decimal", required: true });
  const depBox = errorBox();
  const depOut = h("p", { role: "status" });
  const depButton = h("button", { type: "submit", class: "primary" }, "Deposit");
  const deposit = h("form", { class: "panel", id: "deposit-form" }, h("label", { for: "dep-owner" }, "Owner id"), depOwner, h("label", { for: "dep-amount" }, "Amount"), depAmount, depBox, h("div", { class: "actions" }, depButton), depOut);
  deposit.addEventListener("submit", (event) => {
    event.preventDefault();
    act(depButton, depBox, async () => {
      const done = await api("POST", `/v1/admin/accounts/${encodeURIComponent(depOwner.value.trim())}/deposit`, { body: { amount: depAmount.value.trim() }, idempotent: true });
      depOut.textContent = `Deposited ${money(done.amount)}; ${done.account.owner_id}'s balance is ${money(done.account.balance)}.`;
    });
  });

  // New key form.
  const keyRole = h("select", { id: "key-role" }, ["client", "miner", "admin"].map((r) => h("option", { value: r }, r)));
  const keyOwner = h("input", { id: "key-owner", type: "text", required: true });
  const keyBox = errorBox();
  const keyOut = h("div", { "aria-live": "polite" });
  const keyButton = h("button", { type: "submit", class: "primary" }, "Create key");
  const newKey = h("form", { class: "panel", id: "key-form" }, h("label", { for: "key-role" }, "Role"), keyRole, h("label", { for: "key-owner" }, "Owner id"), keyOwner, keyBox, h("div", { class: "actions" }, keyButton), keyOut);
  newKey.addEventListener("submit", (event) => {
    event.preventDefault();
    act(keyButton, keyBox, async () => {
      const made = await api("POST", "/v1/admin/api-keys", { body: { role: keyRole.value, owner_id: keyOwner.value.trim() } });
      keyOut.replaceChildren(h("p", {}, `Key for ${made.owner_id} (${made.role}), shown once:`), h("p", { class: "keybox" }, made.key));
      await loadKeys();
    });
  });

  setPage(
    "Admin",
    box,
    h("section", {}, h("h2", {}, "Market"), stats),
    h("section", {}, h("h2", {}, "Flagged reviews"), flagged),
    h("div", { class: "grid" }, h("section", {}, h("h2", {}, "Deposit"), deposit), h("section", {}, h("h2", {}, "New API key"), newKey)),
    h("section", {}, h("h2", {}, "API keys"), keys),
    h("section", {}, h("h2", {}, "Offers"), offers),
  );

  async function loadFlagged() {
    const list = await api("GET", "/v1/admin/reviews/flagged?include_hidden=true&limit=100");
    flagged.replaceChildren(
      list.length
        ? table(
            ["Review", "GPU", "Rating", "Comment", "Flags", "State", ""],
            list.map((r) => {
              const errBox = errorBox();
              const button = h("button", { type: "button", class: r.hidden ? null : "danger" }, r.hidden ? "Restore" : "Hide");
              button.addEventListener("click", () => act(button, errBox, async () => {
                await api("POST", `/v1/admin/reviews/${encodeURIComponent(r.review_id)}/${r.hidden ? "restore" : "hide"}`);
                announce(r.hidden ? "Review restored." : "Review hidden.");
                await loadFlagged();
              }));
              return h("tr", { "data-review": r.review_id }, h("td", {}, `${r.review_id} by ${r.reviewer_id}`), h("td", {}, h("a", { href: `/gpus/${encodeURIComponent(r.gpu_id)}` }, r.gpu_id)), h("td", {}, `${r.rating} ★`), h("td", {}, dash(r.comment)), h("td", {}, `${r.flag_count}: ${r.flag_reasons.join("; ")}`), h("td", { class: "review-state" }, r.hidden ? "hidden" : "visible"), h("td", {}, button, errBox));
            }),
            "Flagged reviews",
          )
        : h("p", {}, "No flagged reviews."),
    );
  }
  async function loadKeys() {
    const list = await api("GET", "/v1/admin/api-keys?limit=100");
    keys.replaceChildren(
      table(
        ["Key", "Role", "Owner", "Created", "Revoked", ""],
        list.map((k) => {
          const errBox = errorBox();
          const revoke = k.revoked_at ? null : h("button", { type: "button", class: "danger" }, "Revoke…");
          revoke?.addEventListener("click", async () => {
            const ok = await confirmDialog("Revoke this key?", h("p", {}, `${k.prefix}… of ${k.owner_id} (${k.role}) stops working at once.`), "Revoke");
            if (ok) act(revoke, errBox, async () => {
              await api("DELETE", `/v1/admin/api-keys/${encodeURIComponent(k.key_id)}`);
              await loadKeys();
            });
          });
          return h("tr", {}, h("td", {}, `${k.prefix}…`), h("td", {}, k.role), h("td", {}, k.owner_id), h("td", {}, timeEl(k.created_at)), h("td", {}, timeEl(k.revoked_at)), h("td", {}, revoke, errBox));
        }),
        "API keys",
      ),
    );
  }
  async function loadStats() {
    const st = await api("GET", "/v1/marketplace/stats");
    stats.replaceChildren(h("dl", { class: "specs" }, h("dt", {}, "Offers"), h("dd", {}, String(st.totalOffers)), h("dt", {}, "Open capacity"), h("dd", {}, String(st.openCapacity)), h("dt", {}, "Average price"), h("dd", {}, money(st.averagePrice)), h("dt", {}, "Active bids"), h("dd", {}, String(st.activeBids))));
  }
  async function loadOffers() {
    const list = await api("GET", "/v1/marketplace/offers?limit=50");
    offers.replaceChildren(
      list.length ? table(["Offer", "Provider", "GPU", { label: "Price", num: true }, "Status"], list.map((o) => h("tr", {}, h("td", {}, o.id), h("td", {}, o.provider), h("td", {}, o.gpu_id ? h("a", { href: `/gpus/${encodeURIComponent(o.gpu_id)}` }, dash(o.gpu_model)) : dash(o.gpu_model)), h("td", { class: "num" }, money(o.price)), h("td", {}, statusEl(o.gpu_status ?? o.status)))), "Offers") : h("p", {}, "No offers."),
    );
  }
  await Promise.all([loadStats(), loadFlagged(), loadKeys(), loadOffers()].map((p) => p.catch((e) => showError(box, e))));
}

// ---------- routing ----------

async function route() {
  renderHeader();
  feed.heardAtStart = feed.heard;
  follow();
  const path = location.pathname;
  const gpu = path.match(/^\/gpus\/([^/]+)$/);
  if (gpu) return gpuPage(decodeURIComponent(gpu[1]));
  if (path === "/signin") return signinPage();
  if (path === "/account") return accountPage();
  if (path === "/provider") return providerPage();
  if (path === "/admin") return adminPage();
  return browsePage();
}

route()
  .catch((error) => {
    const box = errorBox();
    showError(box, error);
    main().replaceChildren(box);
  })
  // Rendered: what a tool taking screenshots waits for (a signed-in page keeps its event
  // feed's long poll open, so the network is never idle).
  .finally(() => { document.body.dataset.rendered = "yes"; });
