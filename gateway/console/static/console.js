// The crew console: plain JavaScript, no build step, nothing loaded from elsewhere.
// Coordinates in the settings are fractions of the frame (0..1); the overlay draws in
// screen pixels of the shown picture and converts on every pointer event.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const HANDLE_PX = 9;
const MIN_LINE_PX = 12;

const S = {
  session: null,
  tab: "cameras",
  cameras: [],
  cam: null,
  saved: null,
  edit: null,
  live: null,
  mode: "select",
  draft: null,
  drag: null,
  selected: null,
  problems: [],
  logAfter: 0,
  structure: "",
};

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const copy = (v) => JSON.parse(JSON.stringify(v));
const round4 = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
const canEdit = () => S.session !== null && S.session.role === "admin";

function el(tag, attrs = {}, children = []) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG_NS, tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of [].concat(children)) {
    if (c !== null && c !== undefined) node.append(c);
  }
  return node;
}

// -- the API -------------------------------------------------------------------------

async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: {}, credentials: "same-origin", cache: "no-store" };
  if (opts.json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.json);
  }
  if (init.method !== "GET" && S.session) init.headers["X-CSRF-Token"] = S.session.csrf;
  const response = await fetch(path, init);
  if (response.status === 401 && path !== "/api/login") {
    showLogin("Your session has ended: log in again.");
    throw new Error("not logged in");
  }
  return response;
}

async function body(response) {
  try {
    return await response.json();
  } catch (e) {
    return { ok: false, error: `the unit answered ${response.status}` };
  }
}

// -- login ---------------------------------------------------------------------------

function showLogin(message) {
  S.session = null;
  $("login").hidden = false;
  $("tabs").hidden = true;
  $("who").hidden = true;
  for (const page of document.querySelectorAll(".page")) page.hidden = true;
  $("login-error").textContent = message || "";
  $("login-user").focus();
}

async function startSession(session) {
  S.session = session;
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = session.user;
  $("who-role").textContent = session.role;
  $("unit-name").textContent = session.unit;
  document.title = `${session.unit} · Roadside Gateway console`;
  document.body.classList.toggle("readonly", !canEdit());
  $("readonly-note").hidden = canEdit();
  showTab(S.tab);
  await loadCameras();
}

async function login(event) {
  event.preventDefault();
  const button = $("login-submit");
  button.disabled = true;
  $("login-error").textContent = "";
  try {
    const r = await api("/api/login", {
      method: "POST",
      json: { user: $("login-user").value, password: $("login-password").value },
    });
    const data = await body(r);
    if (r.ok) {
      $("login-password").value = "";
      await startSession(data);
      return;
    }
    let text = data.error || "login failed";
    if (data.retry_after_s) text += ` (next try in ${data.retry_after_s} s)`;
    $("login-error").textContent = text;
  } catch (e) {
    $("login-error").textContent = "the unit did not answer";
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await api("/api/logout", { method: "POST" });
  } catch (e) {
    /* logged out either way */
  }
  showLogin("Logged out.");
}

// -- tabs ----------------------------------------------------------------------------

function showTab(name) {
  S.tab = name;
  for (const b of document.querySelectorAll("#tabs .tab")) b.classList.toggle("active", b.dataset.tab === name);
  for (const page of document.querySelectorAll(".page")) page.hidden = page.id !== name;
  if (name === "models") loadModels();
  if (name === "status") {
    loadStatus();
    loadDoctor();
    loadConfig();
  }
}

// -- cameras -------------------------------------------------------------------------

async function loadCameras() {
  const r = await api("/api/cameras");
  const data = await body(r);
  S.cameras = data.cameras || [];
  const bar = $("camera-tabs");
  bar.replaceChildren();
  for (const cam of S.cameras) {
    bar.append(
      el("button", {
        type: "button",
        class: "cam-tab",
        "data-camera": cam.id,
        text: cam.id,
        title: cam.source,
        onclick: () => selectCamera(cam.id),
      }),
    );
  }
  $("no-cameras").hidden = S.cameras.length > 0;
  $("camera").hidden = S.cameras.length === 0;
  if (S.cameras.length && !S.cameras.some((c) => c.id === S.cam)) selectCamera(S.cameras[0].id);
}

function selectCamera(id) {
  if (S.cam !== id && dirty() && !confirm("Discard the unsaved changes of this camera?")) return;
  S.cam = id;
  for (const b of document.querySelectorAll(".cam-tab")) b.classList.toggle("active", b.dataset.camera === id);
  const cam = S.cameras.find((c) => c.id === id);
  S.saved = copy(cam.geometry);
  S.edit = copy(cam.geometry);
  S.live = null;
  S.problems = [];
  setMode("select");
  $("frame").removeAttribute("src");
  renderAll();
}

const dirty = () => S.edit !== null && JSON.stringify(S.edit) !== JSON.stringify(S.saved);

function setMode(mode) {
  S.mode = mode;
  S.draft = mode === "speed" ? { kind: "speed", points: [] } : null;
  for (const [id, m] of [["add-line", "line"], ["add-zone", "zone"], ["add-speed", "speed"]]) {
    $(id).classList.toggle("active", S.mode === m);
  }
  $("stage").classList.toggle("drawing", mode !== "select");
  hint();
  render();
}

function hint(text) {
  const nLines = S.edit ? S.edit.lines.length : 0;
  const texts = {
    line: "Drag on the picture from one side of the road to the other (or click the start, then the end). Esc cancels.",
    zone: "Click the corners of the zone on the picture; click the first corner again (or double-click) to close it. Esc cancels.",
    speed: `Click four points on the road surface whose distances you know (lane-marking corners): point ${
      S.draft && S.draft.points ? S.draft.points.length + 1 : 1
    } of 4. Esc cancels.`,
    select: nLines
      ? "Drag the round handles to move points; name lines and zones in the list; Save to start counting with them."
      : "Press + Counting line, then drag across the road on the picture where vehicles should be counted.",
  };
  $("mode-hint").textContent = text || texts[S.mode];
}

function uniqueId(prefix, items) {
  const taken = new Set(items.map((i) => i.id));
  for (let n = 1; ; n++) if (!taken.has(`${prefix}-${n}`)) return `${prefix}-${n}`;
}

// -- geometry of the overlay ---------------------------------------------------------

function size() {
  const img = $("frame");
  return [img.clientWidth || 1, img.clientHeight || 1];
}

function toScreen(p) {
  const [w, h] = size();
  return [p[0] * w, p[1] * h];
}

function fromEvent(event) {
  const rect = $("overlay").getBoundingClientRect();
  return [round4((event.clientX - rect.left) / rect.width), round4((event.clientY - rect.top) / rect.height)];
}

function distPx(a, b) {
  const [ax, ay] = toScreen(a);
  const [bx, by] = toScreen(b);
  return Math.hypot(ax - bx, ay - by);
}

function arrow(svg, from, dir, length, cls) {
  const [x, y] = from;
  const tx = x + dir[0] * length;
  const ty = y + dir[1] * length;
  svg.append(el("svg:line", { x1: x, y1: y, x2: tx, y2: ty, class: cls }));
  const back = 9;
  const side = 5;
  const bx = tx - dir[0] * back;
  const by = ty - dir[1] * back;
  const head = `${tx},${ty} ${bx - dir[1] * side},${by + dir[0] * side} ${bx + dir[1] * side},${by - dir[0] * side}`;
  svg.append(el("svg:polygon", { points: head, class: `${cls} head` }));
  return [tx + dir[0] * 12, ty + dir[1] * 12];
}

function label(svg, at, text, cls) {
  const [w, h] = size();
  const half = 3.8 * text.length; // about half the text's width at 14 px: keep it on the picture
  const x = Math.min(Math.max(at[0], half + 2), w - half - 2);
  const y = Math.min(Math.max(at[1], 10), h - 10);
  svg.append(el("svg:text", { x, y, class: `label ${cls || ""}`, "text-anchor": "middle", "dominant-baseline": "middle", text }));
}

function handle(svg, p, kind, index, point, extra) {
  const [x, y] = toScreen(p);
  svg.append(
    el("svg:circle", {
      cx: x,
      cy: y,
      r: HANDLE_PX,
      class: `handle ${extra || ""}`,
      "data-kind": kind,
      "data-index": index,
      "data-point": point,
    }),
  );
}

function drawLine(svg, line, index, counts) {
  const a = toScreen(line.points[0]);
  const b = toScreen(line.points[1]);
  const selected = S.selected && S.selected.kind === "line" && S.selected.index === index;
  svg.append(el("svg:line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "hit", "data-kind": "line", "data-index": index }));
  svg.append(el("svg:line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: `cline ${selected ? "selected" : ""}`, "data-kind": "line", "data-index": index }));
  const len = Math.max(1, Math.hypot(b[0] - a[0], b[1] - a[1]));
  const ux = (b[0] - a[0]) / len;
  const uy = (b[1] - a[1]) / len;
  // Seen from point 1 towards point 2, left_to_right goes towards the right-hand side.
  const right = [-uy, ux];
  const left = [uy, -ux];
  const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  const c = counts || { left_to_right: "–", right_to_left: "–" };
  const tipR = arrow(svg, mid, right, 34, "dir main");
  const tipL = arrow(svg, mid, left, 22, "dir other");
  label(svg, tipR, String(c.left_to_right), "count main");
  label(svg, tipL, String(c.right_to_left), "count other");
  label(svg, [a[0] - ux * 16, a[1] - uy * 16 - 12], line.id, "name");
  if (canEdit()) {
    handle(svg, line.points[0], "line", index, 0, "start");
    handle(svg, line.points[1], "line", index, 1);
  }
}

function drawZone(svg, zone, index, occupancy) {
  const pts = zone.points.map(toScreen);
  const selected = S.selected && S.selected.kind === "zone" && S.selected.index === index;
  svg.append(
    el("svg:polygon", {
      points: pts.map((p) => p.join(",")).join(" "),
      class: `zone ${selected ? "selected" : ""}`,
      "data-kind": "zone",
      "data-index": index,
    }),
  );
  const cx = pts.reduce((s, p) => s + p[0], 0) / pts.length;
  const cy = pts.reduce((s, p) => s + p[1], 0) / pts.length;
  label(svg, [cx, cy], occupancy ? `${zone.id} · ${occupancy.inside} inside` : zone.id, "zone-label");
  if (canEdit()) zone.points.forEach((p, i) => handle(svg, p, "zone", index, i));
}

function drawSpeed(svg, speed) {
  const pts = speed.image_points.map(toScreen);
  svg.append(el("svg:polygon", { points: pts.map((p) => p.join(",")).join(" "), class: "speed" }));
  speed.image_points.forEach((p, i) => {
    if (canEdit()) handle(svg, p, "speed", 0, i, "speed-handle");
    const [x, y] = toScreen(p);
    label(svg, [x, y - 18], String(i + 1), "speed-label");
  });
}

function render() {
  const svg = $("overlay");
  const [w, h] = size();
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  if (!S.edit) return;
  const live = S.live || { lines: {}, zones: {} };
  const savedLines = new Set((S.saved ? S.saved.lines : []).map((l) => l.id));
  const savedZones = new Set((S.saved ? S.saved.zones : []).map((z) => z.id));
  S.edit.zones.forEach((z, i) => drawZone(svg, z, i, savedZones.has(z.id) ? live.zones[z.id] : null));
  S.edit.lines.forEach((l, i) => drawLine(svg, l, i, savedLines.has(l.id) ? live.lines[l.id] : null));
  if (S.edit.speed) drawSpeed(svg, S.edit.speed);
  const d = S.draft;
  if (d && d.kind === "line" && d.p2) {
    const a = toScreen(d.p1);
    const b = toScreen(d.p2);
    svg.append(el("svg:line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "cline draft" }));
  }
  if (d && d.kind === "line") handle(svg, d.p1, "draft", 0, 0, "start");
  if (d && (d.kind === "zone" || d.kind === "speed") && d.points.length) {
    const pts = d.points.map(toScreen);
    svg.append(el("svg:polyline", { points: pts.map((p) => p.join(",")).join(" "), class: `${d.kind === "zone" ? "zone" : "speed"} draft` }));
    d.points.forEach((p, i) => handle(svg, p, "draft", 0, i, i === 0 ? "start" : ""));
  }
  $("save").disabled = !dirty();
  $("discard").disabled = !dirty();
  $("save").textContent = dirty() ? "Save changes" : "Saved";
}

// -- pointer editing -----------------------------------------------------------------

function onPointerDown(event) {
  if (!canEdit() || !S.edit) return;
  const p = fromEvent(event);
  const svg = $("overlay");
  if (S.mode === "line") {
    if (S.draft && S.draft.waiting) {
      finishLine(p);
      return;
    }
    S.draft = { kind: "line", p1: p, p2: p };
    svg.setPointerCapture(event.pointerId);
    render();
    return;
  }
  if (S.mode === "zone") {
    if (!S.draft) S.draft = { kind: "zone", points: [] };
    const pts = S.draft.points;
    if (pts.length >= 3 && distPx(p, pts[0]) <= HANDLE_PX * 1.5) {
      finishZone();
      return;
    }
    pts.push(p);
    render();
    return;
  }
  if (S.mode === "speed") {
    S.draft.points.push(p);
    if (S.draft.points.length === 4) {
      const old = S.edit.speed;
      S.edit.speed = { image_points: S.draft.points, world_points: old ? old.world_points : [["", ""], ["", ""], ["", ""], ["", ""]] };
      S.selected = { kind: "speed", index: 0 };
      setMode("select");
      renderItems();
      hint("Now enter where each numbered point is on the ground, in metres (in the list), then Save.");
      return;
    }
    hint();
    render();
    return;
  }
  const target = event.target;
  const kind = target.dataset ? target.dataset.kind : undefined;
  if (!kind || kind === "draft") {
    S.selected = null;
    render();
    renderItems();
    return;
  }
  const index = Number(target.dataset.index);
  const point = target.dataset.point === undefined ? null : Number(target.dataset.point);
  S.selected = { kind, index };
  S.drag = { kind, index, point, start: p, orig: copy(shapeOf(kind, index)) };
  svg.setPointerCapture(event.pointerId);
  render();
  renderItems();
}

function shapeOf(kind, index) {
  if (kind === "line") return S.edit.lines[index].points;
  if (kind === "zone") return S.edit.zones[index].points;
  return S.edit.speed.image_points;
}

function onPointerMove(event) {
  if (!S.edit) return;
  const p = fromEvent(event);
  if (S.draft && S.draft.kind === "line" && !S.draft.waiting) {
    S.draft.p2 = p;
    render();
    return;
  }
  if (S.draft && S.draft.kind === "line" && S.draft.waiting) {
    S.draft.p2 = p;
    render();
    return;
  }
  const d = S.drag;
  if (!d) return;
  const pts = shapeOf(d.kind, d.index);
  if (d.point !== null) {
    pts[d.point] = p;
  } else {
    const dx = p[0] - d.start[0];
    const dy = p[1] - d.start[1];
    d.orig.forEach((q, i) => {
      pts[i] = [round4(q[0] + dx), round4(q[1] + dy)];
    });
  }
  render();
}

function onPointerUp(event) {
  const p = fromEvent(event);
  if (S.draft && S.draft.kind === "line" && !S.draft.waiting) {
    if (distPx(S.draft.p1, p) >= MIN_LINE_PX) finishLine(p);
    else {
      S.draft.waiting = true; // a click: the next click ends the line
      hint("Now click where the line ends.");
    }
    return;
  }
  if (S.drag) {
    S.drag = null;
    renderItems();
    render();
  }
}

function finishLine(p2) {
  const p1 = S.draft.p1;
  if (distPx(p1, p2) < MIN_LINE_PX) return;
  const line = { id: uniqueId("line", S.edit.lines), points: [p1, p2] };
  S.edit.lines.push(line);
  S.selected = { kind: "line", index: S.edit.lines.length - 1 };
  setMode("select");
  renderItems();
  hint("Line added. Drag its ends to adjust, name it in the list, then press Save: counting starts after saving.");
}

function finishZone() {
  // A double-click adds its own two clicks as corners: drop corners on top of the last.
  const pts = (S.draft ? S.draft.points : []).filter((p, i, all) => i === 0 || distPx(p, all[i - 1]) > 3);
  if (pts.length < 3) {
    hint("A zone needs at least three corners.");
    return;
  }
  S.edit.zones.push({ id: uniqueId("zone", S.edit.zones), points: pts });
  S.selected = { kind: "zone", index: S.edit.zones.length - 1 };
  setMode("select");
  renderItems();
  hint("Zone added. Drag its corners to adjust, name it in the list, then press Save.");
}

function onKey(event) {
  if (event.key === "Escape" && S.mode !== "select") setMode("select");
}

// -- the items panel -----------------------------------------------------------------

function errorsFor(path) {
  return el("ul", { class: "field-errors", "data-path": path });
}

function nameInput(item, path) {
  return el("label", { class: "name" }, [
    "Name ",
    el("input", {
      value: item.id,
      "data-path": `${path}.id`,
      disabled: !canEdit(),
      spellcheck: "false",
      oninput: (e) => {
        item.id = e.target.value;
        render();
      },
    }),
    errorsFor(`${path}.id`),
  ]);
}

function renderItems() {
  const box = $("items");
  box.replaceChildren();
  if (!S.edit) return;
  box.append(el("h3", { text: `Counting lines (${S.edit.lines.length})` }));
  if (!S.edit.lines.length) box.append(el("p", { class: "hint", text: "None yet." }));
  S.edit.lines.forEach((line, i) => {
    const path = `lines[${i}]`;
    const selected = S.selected && S.selected.kind === "line" && S.selected.index === i;
    box.append(
      el("div", { class: `item ${selected ? "selected" : ""}`, "data-item": path }, [
        nameInput(line, path),
        el("p", { class: "counts" }, [
          el("span", { class: "swatch main" }),
          " this way (left_to_right): ",
          el("b", { "data-count": `${line.id}:left_to_right`, text: "–" }),
          el("br"),
          el("span", { class: "swatch other" }),
          " other way (right_to_left): ",
          el("b", { "data-count": `${line.id}:right_to_left`, text: "–" }),
        ]),
        canEdit()
          ? el("div", { class: "row" }, [
              el("button", {
                type: "button",
                class: "small flip",
                text: "Flip direction",
                onclick: () => {
                  line.points.reverse();
                  render();
                },
              }),
              el("button", {
                type: "button",
                class: "small danger",
                text: "Delete",
                onclick: () => {
                  S.edit.lines.splice(i, 1);
                  S.selected = null;
                  renderAll();
                },
              }),
            ])
          : null,
        errorsFor(path),
      ]),
    );
  });
  box.append(el("h3", { text: `Zones (${S.edit.zones.length})` }));
  if (!S.edit.zones.length) box.append(el("p", { class: "hint", text: "None yet." }));
  S.edit.zones.forEach((zone, i) => {
    const path = `zones[${i}]`;
    const selected = S.selected && S.selected.kind === "zone" && S.selected.index === i;
    box.append(
      el("div", { class: `item ${selected ? "selected" : ""}`, "data-item": path }, [
        nameInput(zone, path),
        el("p", { class: "counts" }, ["inside now: ", el("b", { "data-occupancy": zone.id, text: "–" })]),
        canEdit()
          ? el("button", {
              type: "button",
              class: "small danger",
              text: "Delete",
              onclick: () => {
                S.edit.zones.splice(i, 1);
                S.selected = null;
                renderAll();
              },
            })
          : null,
        errorsFor(path),
      ]),
    );
  });
  box.append(el("h3", { text: "Speed calibration" }));
  const speed = S.edit.speed;
  if (!speed) {
    box.append(el("p", { class: "hint", text: "None: speeds are not measured. Press Speed points to set four points on the road." }));
  } else {
    const rows = speed.image_points.map((p, i) =>
      el("tr", {}, [
        el("td", { text: String(i + 1) }),
        el("td", { class: "muted", text: `${p[0].toFixed(3)}, ${p[1].toFixed(3)}` }),
        ...[0, 1].map((axis) =>
          el("td", {}, [
            el("input", {
              class: "metres",
              inputmode: "decimal",
              "aria-label": `point ${i + 1} ${axis ? "Y" : "X"} in metres`,
              value: speed.world_points[i][axis],
              "data-path": `speed.world_points[${i}][${axis}]`,
              disabled: !canEdit(),
              oninput: (e) => {
                const v = e.target.value.trim();
                speed.world_points[i][axis] = v !== "" && !Number.isNaN(Number(v)) ? Number(v) : v;
                render();
              },
            }),
            errorsFor(`speed.world_points[${i}][${axis}]`),
          ]),
        ),
      ]),
    );
    box.append(
      el("div", { class: "item", "data-item": "speed" }, [
        el("p", { class: "hint", text: "Where each numbered point lies on the ground, in metres (any origin; X and Y at right angles)." }),
        el("table", { class: "speed-table" }, [
          el("tr", {}, [el("th", { text: "#" }), el("th", { text: "picture" }), el("th", { text: "X m" }), el("th", { text: "Y m" })]),
          ...rows,
        ]),
        canEdit()
          ? el("button", {
              type: "button",
              class: "small danger",
              text: "Remove calibration",
              onclick: () => {
                S.edit.speed = null;
                renderAll();
              },
            })
          : null,
        errorsFor("speed"),
      ]),
    );
  }
  showProblems();
  updateCounts();
}

function renderAll() {
  renderItems();
  render();
}

function showProblems() {
  const targets = [...document.querySelectorAll("#items [data-path].field-errors")];
  for (const t of targets) t.replaceChildren();
  for (const input of document.querySelectorAll("#items input[data-path]")) input.classList.remove("invalid");
  const general = $("problems");
  general.replaceChildren();
  for (const problem of S.problems) {
    let best = null;
    for (const t of targets) {
      const p = t.dataset.path;
      const fits = problem.path === p || problem.path.startsWith(`${p}.`) || problem.path.startsWith(`${p}[`);
      if (fits && (!best || p.length > best.dataset.path.length)) best = t;
    }
    const item = el("li", { text: best ? problem.message : (problem.path ? `${problem.path}: ` : "") + problem.message });
    if (best) {
      best.append(item);
      const input = document.querySelector(`#items input[data-path="${CSS.escape(best.dataset.path)}"]`);
      if (input) input.classList.add("invalid");
    } else general.append(item);
  }
}

function updateCounts() {
  const live = S.live;
  const saved = new Set((S.saved ? S.saved.lines : []).map((l) => l.id));
  for (const node of document.querySelectorAll("[data-count]")) {
    const [id, dir] = node.dataset.count.split(":");
    const value = live && saved.has(id) && live.lines[id] ? live.lines[id][dir] : null;
    node.textContent = value === null ? "not saved yet" : String(value);
  }
  const zones = new Set((S.saved ? S.saved.zones : []).map((z) => z.id));
  for (const node of document.querySelectorAll("[data-occupancy]")) {
    const id = node.dataset.occupancy;
    const value = live && zones.has(id) && live.zones[id] ? live.zones[id].inside : null;
    node.textContent = value === null ? "not saved yet" : String(value);
  }
}

// -- saving --------------------------------------------------------------------------

async function save() {
  const button = $("save");
  button.disabled = true;
  $("save-message").textContent = "Saving…";
  $("save-message").className = "message";
  const edit = copy(S.edit);
  try {
    const r = await api(`/api/cameras/${encodeURIComponent(S.cam)}/geometry`, { method: "POST", json: edit });
    const data = await body(r);
    if (r.ok) {
      S.saved = edit;
      S.problems = [];
      const cam = S.cameras.find((c) => c.id === S.cam);
      if (cam) cam.geometry = copy(edit);
      $("save-message").textContent =
        data.status === "applied"
          ? "Saved. The camera restarted with these settings: its counts start again from 0."
          : data.message || "Saved.";
      $("save-message").className = "message ok";
      hint();
    } else {
      S.problems = data.problems || [{ path: "", message: data.error || "not saved" }];
      $("save-message").textContent = "Not saved: fix what is marked in red (nothing was changed on the unit).";
      $("save-message").className = "message bad";
    }
  } catch (e) {
    $("save-message").textContent = "Not saved: the unit did not answer.";
    $("save-message").className = "message bad";
  }
  renderAll();
}

function discard() {
  S.edit = copy(S.saved);
  S.problems = [];
  S.selected = null;
  setMode("select");
  $("save-message").textContent = "";
  renderAll();
}

// -- live updates --------------------------------------------------------------------

const watching = () => S.session !== null && S.tab === "cameras" && S.cam !== null && document.visibilityState === "visible";

async function frameLoop() {
  let url = null;
  for (;;) {
    const interval = 1000 / ((S.session && S.session.view_fps) || 4);
    if (watching()) {
      try {
        const cam = S.cam;
        const r = await fetch(`/api/cameras/${encodeURIComponent(cam)}/frame.jpg`, { credentials: "same-origin", cache: "no-store" });
        if (r.status === 401) showLogin("Your session has ended: log in again.");
        else if (r.ok && cam === S.cam) {
          const blob = await r.blob();
          const next = URL.createObjectURL(blob);
          const img = $("frame");
          img.onload = () => {
            if (url) URL.revokeObjectURL(url);
            url = next;
            render();
          };
          img.src = next;
          img.dataset.frame = r.headers.get("X-Frame-Index") || "";
          $("cam-frame").textContent = `frame ${img.dataset.frame}`;
        }
      } catch (e) {
        /* the next round tries again */
      }
    }
    await sleep(interval);
  }
}

async function liveLoop() {
  for (;;) {
    if (watching()) {
      try {
        const cam = S.cam;
        const r = await api(`/api/cameras/${encodeURIComponent(cam)}/live`);
        if (r.ok && cam === S.cam) {
          const live = await r.json();
          S.live = live;
          const badge = $("cam-state");
          badge.textContent = live.state;
          badge.className = `badge state-${live.state}`;
          $("cam-rates").textContent = `capture ${live.capture_fps} fps · processed ${live.processed_fps} fps · inference ${live.inference_ms} ms`;
          // Saved elsewhere (MQTT set_config, another console): show it unless editing.
          if (!dirty() && JSON.stringify(live.geometry) !== JSON.stringify(S.saved) && !S.drag && !S.draft) {
            S.saved = copy(live.geometry);
            S.edit = copy(live.geometry);
            renderItems();
          }
          updateCounts();
          render();
        }
      } catch (e) {
        /* shown as stale; the next round tries again */
      }
    }
    await sleep(1000);
  }
}

// -- status --------------------------------------------------------------------------

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 && i ? 1 : 0)} ${units[i]}`;
}

function fmtAge(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function card(title, rows, state) {
  return el("div", { class: "card status-card" }, [
    el("h2", {}, [title, state ? el("span", { class: `badge state-${state}`, text: state }) : null]),
    el(
      "table",
      { class: "kv" },
      rows.map(([k, v]) => el("tr", {}, [el("th", { text: k }), el("td", { text: v === null || v === undefined ? "–" : String(v) })])),
    ),
  ]);
}

const CAMERA_STATE = { streaming: "ok", stalled: "stalled", connecting: "reconnecting", backoff: "reconnecting" };

async function loadStatus() {
  if (S.tab !== "status" || !S.session) return;
  const r = await api("/api/status");
  const data = await body(r);
  const h = data.health;
  if (!h) return;
  const grid = $("status-grid");
  const cards = [];
  const sys = h.system;
  cards.push(
    card("Unit", [
      ["unit", data.unit],
      ["version", data.version],
      ["up for", fmtAge(h.uptime_s)],
      ["CPU", `${sys.cpu_percent} % (load ${sys.load_1m})`],
      ["temperature", sys.cpu_temp_c === null ? "no sensor" : `${sys.cpu_temp_c} °C`],
      ["memory", `${fmtBytes(sys.mem_used_bytes)} of ${fmtBytes(sys.mem_total_bytes)} (${sys.mem_percent} %)`],
      ["disk free", fmtBytes(sys.disk_free_bytes)],
      ["events lost (all causes)", h.dropped_events],
    ]),
  );
  const m = h.mqtt;
  cards.push(
    card(
      "MQTT",
      [
        ["state", m.state],
        ["protocol", m.protocol],
        ["connects", m.connects],
        ["subscribed to commands", m.subscribed ? "yes" : "no"],
        ["last error", m.last_error],
      ],
      m.state === "connected" ? "ok" : m.state,
    ),
  );
  const o = h.outbox;
  const lossRows = Object.entries(o)
    .filter(([k]) => k === "dropped" || k.startsWith("lost_") || k === "accepted_unsubscribed")
    .map(([k, v]) => [k.replaceAll("_", " "), v]);
  cards.push(
    card("Outbox", [
      ["waiting", o.depth],
      ["oldest waiting", fmtAge(o.oldest_age_s)],
      ["in flight", o.inflight],
      ["on disk", `${fmtBytes(o.disk_bytes)} of ${fmtBytes(o.limit_bytes)}`],
      ...lossRows,
      ["recovered damage", o.damaged],
    ]),
  );
  for (const [id, c] of Object.entries(h.cameras)) {
    cards.push(
      card(
        `Camera ${id}`,
        [
          ["processed", `${c.fps} fps`],
          ["captured", c.capture_fps === undefined ? "–" : `${c.capture_fps} fps`],
          ["inference", `${c.inference_ms} ms`],
          ["frames", c.frames_captured],
          ["skipped frames", c.skipped_frames],
          ["reconnects", c.reconnects],
          ["stalls", c.stalls],
          ["errors", c.errors],
          ["last error", c.last_error],
        ],
        CAMERA_STATE[c.state] || c.state,
      ),
    );
  }
  for (const [id, s] of Object.entries(h.sensors)) {
    const reading = data.readings[id];
    const values = reading ? Object.entries(reading.values).map(([k, v]) => [k, v]) : [["latest reading", "none yet"]];
    const counters = Object.entries(s)
      .filter(([k]) => k !== "state" && k !== "last_error")
      .map(([k, v]) => [k.replaceAll("_", " "), v]);
    cards.push(
      card(
        `Sensor ${id}`,
        [
          ...(reading ? [["reading age", fmtAge(reading.age_s)], ["protocol", reading.protocol]] : []),
          ...values,
          ...counters,
          ["last error", s.last_error || null],
        ],
        s.state,
      ),
    );
  }
  grid.replaceChildren(...cards);
}

async function loadConfig() {
  const r = await api("/api/config");
  const data = await body(r);
  $("config-view").textContent = JSON.stringify(data.config, null, 2);
}

function renderDoctor(data) {
  const table = $("doctor-table");
  const rows = ((data.result && data.result.checks) || []).map((c) =>
    el("tr", { class: `check-${c.status}` }, [
      el("td", { class: "status", text: c.status }),
      el("td", { text: c.name }),
      el("td", {}, [c.detail, c.fix ? el("div", { class: "fix", text: `fix: ${c.fix}` }) : null]),
    ]),
  );
  if (data.running) rows.push(el("tr", {}, [el("td", { colspan: 3, text: "running…" })]));
  if (data.error) rows.push(el("tr", { class: "check-fail" }, [el("td", { colspan: 3, text: data.error })]));
  if (!rows.length) rows.push(el("tr", {}, [el("td", { colspan: 3, class: "muted", text: "Not run yet." })]));
  table.replaceChildren(...rows);
  $("doctor-run").disabled = data.running || !canEdit();
}

async function loadDoctor() {
  const r = await api("/api/doctor");
  renderDoctor(await body(r));
}

async function runDoctor() {
  const r = await api("/api/doctor", { method: "POST" });
  let data = await body(r);
  renderDoctor(data);
  while (data.running) {
    await sleep(700);
    data = await body(await api("/api/doctor"));
    renderDoctor(data);
  }
}

// -- models --------------------------------------------------------------------------

async function loadModels() {
  const r = await api("/api/models");
  const data = await body(r);
  $("models-store").textContent = data.store ? `Store: ${data.store}` : data.error || "";
  const inUse = new Set(data.in_use || []);
  const head = el("tr", {}, ["name", "SHA-256", "size", "layout", "from", ""].map((t) => el("th", { text: t })));
  const rows = (data.models || []).map((m) =>
    el("tr", {}, [
      el("td", { text: m.name }),
      el("td", { class: "mono", text: m.sha256 }),
      el("td", { text: fmtBytes(m.size) }),
      el("td", { text: m.model_type }),
      el("td", { text: m.source }),
      el("td", { text: inUse.has(m.name) ? "in use" : "" }),
    ]),
  );
  if (!rows.length) rows.push(el("tr", {}, [el("td", { colspan: 6, class: "muted", text: "The store is empty." })]));
  $("models-table").replaceChildren(head, ...rows);
  $("import-card").hidden = !canEdit();
  $("models-verify").disabled = !canEdit();
}

async function verifyModels() {
  let data = await body(await api("/api/models/verify", { method: "POST" }));
  const list = $("verify-results");
  list.replaceChildren(el("li", { text: "verifying…" }));
  while (data.running) {
    await sleep(700);
    data = await body(await api("/api/models/verify"));
  }
  const items = (data.result || []).map((v) => el("li", { class: v.ok ? "ok" : "bad", text: `${v.ok ? "ok" : "FAILED"} ${v.name}: ${v.detail}` }));
  if (data.error) items.push(el("li", { class: "bad", text: data.error }));
  if (!items.length) items.push(el("li", { text: "nothing to verify" }));
  list.replaceChildren(...items);
}

function importModel(event) {
  event.preventDefault();
  const file = $("import-file").files[0];
  const name = $("import-name").value.trim();
  if (!file || !name) return;
  const message = $("import-message");
  const progress = $("import-progress");
  const xhr = new XMLHttpRequest();
  xhr.open("PUT", `/api/models/${encodeURIComponent(name)}`);
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.setRequestHeader("X-CSRF-Token", S.session.csrf);
  const sha = $("import-sha").value.trim().toLowerCase();
  if (sha) xhr.setRequestHeader("X-Expected-SHA256", sha);
  progress.hidden = false;
  progress.value = 0;
  message.textContent = `Uploading ${file.name}…`;
  message.className = "message";
  $("import-submit").disabled = true;
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) progress.value = e.loaded / e.total;
  };
  xhr.onloadend = () => {
    $("import-submit").disabled = false;
    progress.hidden = true;
    let data = {};
    try {
      data = JSON.parse(xhr.responseText);
    } catch (e) {
      data = { error: `the unit answered ${xhr.status}` };
    }
    if (xhr.status === 401) showLogin("Your session has ended: log in again.");
    else if (xhr.status === 200) {
      message.textContent = `Imported ${data.model.name}: SHA-256 ${data.model.sha256}`;
      message.className = "message ok";
      loadModels();
    } else {
      message.textContent = data.error || "not imported";
      message.className = "message bad";
    }
  };
  xhr.send(file);
}

// -- logs ----------------------------------------------------------------------------

async function logLoop() {
  for (;;) {
    if (S.session && S.tab === "logs" && document.visibilityState === "visible") {
      try {
        const data = await body(await api(`/api/logs?after=${S.logAfter}`));
        const pre = $("log-lines");
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        for (const [seq, text] of data.lines || []) {
          S.logAfter = seq;
          pre.append(`${text}\n`);
        }
        while (pre.childNodes.length > 1000) pre.firstChild.remove();
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      } catch (e) {
        /* next round */
      }
    }
    await sleep(2000);
  }
}

async function statusLoop() {
  for (;;) {
    if (S.session && S.tab === "status" && document.visibilityState === "visible") {
      try {
        await loadStatus();
      } catch (e) {
        /* next round */
      }
    }
    await sleep(3000);
  }
}

// -- start ---------------------------------------------------------------------------

function wire() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  for (const b of document.querySelectorAll("#tabs .tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("add-line").addEventListener("click", () => setMode(S.mode === "line" ? "select" : "line"));
  $("add-zone").addEventListener("click", () => setMode(S.mode === "zone" ? "select" : "zone"));
  $("add-speed").addEventListener("click", () => setMode(S.mode === "speed" ? "select" : "speed"));
  $("save").addEventListener("click", save);
  $("discard").addEventListener("click", discard);
  const svg = $("overlay");
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("dblclick", () => {
    if (S.mode === "zone") finishZone();
  });
  document.addEventListener("keydown", onKey);
  new ResizeObserver(() => render()).observe($("frame"));
  $("doctor-run").addEventListener("click", runDoctor);
  $("models-verify").addEventListener("click", verifyModels);
  $("import-form").addEventListener("submit", importModel);
  $("import-file").addEventListener("change", () => {
    const f = $("import-file").files[0];
    if (f && !$("import-name").value) $("import-name").value = f.name.replace(/\.onnx$/i, "").replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64);
  });
  window.addEventListener("beforeunload", (e) => {
    if (dirty()) e.preventDefault();
  });
}

async function main() {
  wire();
  frameLoop();
  liveLoop();
  logLoop();
  statusLoop();
  try {
    const r = await fetch("/api/session", { credentials: "same-origin", cache: "no-store" });
    if (r.ok) await startSession(await r.json());
    else showLogin("");
  } catch (e) {
    showLogin("the unit did not answer");
  }
}

main();
