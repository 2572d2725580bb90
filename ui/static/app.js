// Rampart UI: an alert list, an alert detail view and the approval inbox over
// /api/v1.
"use strict";

const $ = (sel) => document.querySelector(sel);
let cursor = "";
let pages = 0; // pages of the alert list on screen

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value == null ? "" : String(value);
  if (cls) el.className = cls;
  return el;
}

// The API token, when the server asks for one: kept for this tab only.
const tokenKey = "rampart.apiToken";

async function api(path, method, body) {
  for (;;) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(tokenKey);
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method: method || "GET", headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 401) {
      const entered = prompt("This Rampart needs an API token (RAMPART_API_TOKEN_<NAME> on the server):");
      if (!entered) throw new Error("an API token is needed");
      sessionStorage.setItem(tokenKey, entered.trim());
      continue;
    }
    return answer(res);
  }
}

async function answer(res) {
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
  return body;
}

// The loaders below take an optional stillWanted(): a refresh passes one, and
// the answer is dropped if the analyst acted while it was on its way.

async function loadAlerts(append, stillWanted) {
  const params = new URLSearchParams(new FormData($("#filters")));
  for (const [k, v] of [...params]) if (!v) params.delete(k);
  if (append && cursor) params.set("cursor", cursor);
  const page = await api("/api/v1/alerts?" + params);
  if (stillWanted && !stillWanted()) return;
  const tbody = $("#alerts");
  if (!append) tbody.replaceChildren();
  for (const a of page.alerts) {
    const tr = document.createElement("tr");
    tr.append(
      text("td", new Date(a.received_at).toLocaleString()),
      text("td", a.severity, "sev-" + a.severity_id),
      text("td", a.title),
      text("td", [a.hostname, a.user].filter(Boolean).join(" · "), "subject"),
      text("td", a.source),
      text("td", a.stalled ? a.status + " (stalled)" : a.status, a.stalled ? "status-stalled" : "status-" + a.status),
      text("td", a.timings && a.timings.time_to_outcome_ms != null ? spoken(a.timings.time_to_outcome_ms) : "", "took"),
      text("td", a.summary || "", "why"),
      text("td", a.duplicate_count),
    );
    tr.addEventListener("click", () => { location.hash = a.id; });
    tbody.append(tr);
  }
  cursor = page.next_cursor || "";
  $("#more").hidden = !cursor;
  pages = append ? pages + 1 : 1;
}

// spoken says a duration in milliseconds as the API's summaries do: 850 ms,
// 2.4 s, 3 min 5 s, 2 h 10 min, 6 days 4 h.
function spoken(ms) {
  const s = Math.floor(ms / 1000), min = Math.floor(s / 60), h = Math.floor(min / 60);
  if (ms < 1000) return `${ms} ms`;
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  if (min < 60) return `${min} min ${s % 60} s`;
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} days ${h % 24} h`;
}

// rowTable is a table under the column headings, with one row per item, its
// cells made by cells(item); the row is named by rowID(item) when given.
function rowTable(headings, items, cells, rowID) {
  const table = document.createElement("table");
  const head = document.createElement("tr");
  head.append(...headings.map((h) => text("th", h)));
  table.createTHead().append(head);
  const body = table.createTBody();
  for (const item of items) {
    const tr = document.createElement("tr");
    if (rowID) tr.id = rowID(item);
    tr.append(...cells(item));
    body.append(tr);
  }
  return table;
}

// jsonDetails folds a record away under a summary line, shown as indented JSON.
function jsonDetails(summary, value) {
  const box = document.createElement("details");
  box.append(text("summary", summary), text("pre", JSON.stringify(value, null, 2)));
  return box;
}

// stepTable lists steps by name (data-step), with what each was given and
// returned folded away in its last cell. The table is named (data-steps) for
// whose steps they are.
function stepTable(steps, whose) {
  const table = rowTable(["Step", "Status", "Took", "Error or note", "Data"], steps, (s) => {
    const data = document.createElement("td");
    if (s.input != null) data.append(jsonDetails("input", s.input));
    if (s.output != null) data.append(jsonDetails("output", s.output));
    return [text("td", s.name), text("td", s.status, "status-" + s.status),
      text("td", s.duration_ms != null ? spoken(s.duration_ms) : "", "took"), text("td", [s.error, s.note].filter(Boolean).join(" — ")), data];
  });
  table.tBodies[0].querySelectorAll("tr").forEach((tr, i) => { tr.dataset.step = steps[i].name; });
  table.className = "steps";
  table.dataset.steps = whose;
  return table;
}

// actionTable lists the vendor actions taken: which, on what, how they ended.
function actionTable(actions) {
  const table = rowTable(["Action", "Target", "Status", "Vendor", "Calls", "Error or note"], actions, (a) => {
    const vendor = [a.vendor_status, a.vendor_id].filter(Boolean).join(" ");
    return [
      text("td", `${a.integration}.${a.operation}`),
      text("td", a.target),
      text("td", a.status, "status-" + a.status),
      text("td", vendor ? "vendor " + vendor : ""),
      text("td", (a.attempts > 1 ? `${a.attempts} attempts, ` : "") + `${a.vendor_calls} vendor call(s)`),
      text("td", [a.error, a.note].filter(Boolean).join(" — ")),
    ];
  });
  table.id = "actions";
  return table;
}

// shownAlert is the alert on the detail page, as last shown.
let shownAlert = null;

// detailsKey names a folded record on the alert's page, so a refresh can unfold
// again what the analyst had unfolded.
function detailsKey(box) {
  const table = box.closest("table[data-steps]");
  const row = box.closest("tr[data-step]");
  return [table ? table.dataset.steps : "", row ? row.dataset.step : "", box.querySelector("summary").textContent].join("/");
}

// What the alert is about, in the lines an analyst reads first, as `rampart alert
// show` prints them; a line the alert has nothing for is left out.
function alertFacts(d) {
  const a = d.alert || {};
  const join = (sep, ...parts) => parts.filter(Boolean).join(sep);
  const when = (t) => (t && !t.startsWith("0001-") ? new Date(t).toLocaleString() : "");
  const device = a.device || {}, user = a.user || {}, file = a.file || {}, process = a.process || {};
  const attack = (a.attacks || []).map((x) => join(" ", x.technique && x.technique.uid, x.technique && x.technique.name));
  return [
    ["Received", join(" · ", when(d.received_at), when(d.event_time) && "event time " + when(d.event_time))],
    ["Timing", d.timings ? d.timings.summary : ""],
    ["Rule", join(" · ", d.rule, d.confidence ? `confidence ${d.confidence}` : "")],
    ["Device", join(" · ", device.hostname, device.ip, device.id)],
    ["User", join(" · ", user.name, user.email)],
    ["File", join(" · ", file.name, file.sha256 || file.sha1 || file.md5)],
    ["Process", join(" · ", process.name, process.cmd_line)],
    ["Network", join(" → ", a.src_ip, a.dst_ip)],
    ["Domain", join(" · ", a.domain, a.url)],
    ["ATT&CK", attack.filter(Boolean).join("; ")],
    ["Duplicates", d.duplicate_count > 0 ? `${d.duplicate_count}, the last at ${when(d.last_seen_at)}` : ""],
  ];
}

async function showAlert(id, stillWanted) {
  const d = await api("/api/v1/alerts/" + encodeURIComponent(id));
  if (location.hash.slice(1) !== id || stillWanted && !stillWanted()) return; // the analyst went elsewhere meanwhile
  const view = $("#detail");
  const unfolded = new Set([...view.querySelectorAll("details[open]")].map(detailsKey));
  const form = view.querySelector(`#run-playbook[data-alert="${CSS.escape(id)}"]`);
  const picked = form && {
    playbook: form.elements.playbook.value, dry: form.querySelector("input[type=checkbox]").checked,
    result: form.querySelector(".run-result").textContent, resultClass: form.querySelector(".run-result").className,
  };
  shownAlert = d;
  view.replaceChildren(
    text("h2", d.status === "received" ? "An alert not recorded yet" : d.title),
    text("p", `${d.severity} · ${d.source} · ${d.status} · ${d.duplicate_count} duplicates · workflow ${d.temporal.workflow_id}`),
    text("p", d.summary || "", "why"),
  );
  // A run none of whose code runs (a bad deploy): say so first, it is why nothing moves.
  for (const r of d.stalled_runs || []) view.append(text("p", stallLine(r), "stalled"));
  const facts = document.createElement("dl");
  facts.id = "facts";
  for (const [name, value] of [...alertFacts(d), ["Enrichment", d.enrichment_summary], ["Decision", d.decision_summary]]) {
    if (value) facts.append(text("dt", name), text("dd", value));
  }
  view.append(facts);
  if (d.approvals && d.approvals.length) view.append(text("h3", "Approvals"), approvalTable(d.approvals));
  const reverts = pendingReverts(d);
  if (reverts.length) view.append(text("h3", "Timed reverts"), revertBox(d.id, reverts));
  view.append(text("h3", "Steps"), stepTable(d.steps, "alert"));
  for (const p of d.playbooks || []) {
    // A finished run says how it ended (succeeded, failed) and why; one in flight, that it runs.
    const mode = p.note ? ` (${p.note})` : "";
    const heading = text("h3", `Playbook ${p.playbook} v${p.version}${mode}: ${p.result ? p.result.status : p.run.status}`);
    // The first run of a playbook is #playbook-<name>; later ones add their run id.
    heading.id = "playbook-" + p.playbook + (view.querySelector(`[id="playbook-${p.playbook}"]`) ? "-" + p.run_id : "");
    view.append(heading, text("p", (p.result && p.result.message) || p.run.error || "", "why"));
    if (inFlight(p)) view.append(liveBox(p));
    view.append(stepTable(p.steps, heading.id));
  }
  if (d.actions.length) view.append(text("h3", "Actions"), actionTable(d.actions));
  if (d.run) view.append(text("h3", "Run a playbook"), runForm(d.id, picked));
  // The records as stored, for whoever needs more than the lines above.
  for (const [name, value] of [["Decision", d.decision], ["Enrichment", d.enrichment], ["Detection", d.detection],
    ["Alert", d.alert], ["Payload as received", d.raw]]) {
    if (value != null) view.append(jsonDetails(name + " (JSON)", value));
  }
  for (const box of view.querySelectorAll("details")) if (unfolded.has(detailsKey(box))) box.open = true;
  show("detail");
  if ((d.playbooks || []).some(inFlight)) askLive(d);
}

// Where an alert's playbook runs in flight are now, as they last answered (GET
// /api/v1/alerts/{id}/state). The page shows the last answer at once, and the next
// when it comes: a run that takes its time to answer (no worker polls, say)
// holds nothing else up.
let live = { alert: "", playbooks: [] };
let askingLive = false;

const inFlight = (p) => !p.result && p.run.status === "running";
const runKey = (p) => p.workflow_id + "/" + (p.run_id || "");

// liveBox is a playbook run's live line: where it is and what its variables hold.
function liveBox(p) {
  const box = document.createElement("div");
  box.className = "live";
  box.dataset.run = runKey(p);
  fillLive(box);
  return box;
}

function fillLive(box) {
  const answer = live.alert === shownAlert.id ? live.playbooks.find((v) => runKey(v) === box.dataset.run) : null;
  const open = box.querySelector("details[open]") !== null;
  if (!answer) {
    box.replaceChildren(text("span", "Asking the run where it is…"));
  } else if (!answer.state) {
    box.replaceChildren(text("span", "Where it is could not be asked: " + (answer.error || "no answer")));
  } else {
    const s = answer.state;
    const at = s.position && s.position.length ? "Now at " + s.position.join(", ") : "Between steps";
    box.replaceChildren(text("span", [at, `${s.steps} step(s) started`, s.waiting].filter(Boolean).join(" · ")));
    if (s.vars && Object.keys(s.vars).length) box.append(jsonDetails("variables", s.vars));
  }
  const vars = box.querySelector("details");
  if (vars) vars.open = open;
}

async function askLive(d) {
  if (askingLive) return;
  askingLive = true;
  try {
    let playbooks;
    try {
      playbooks = (await api(`/api/v1/alerts/${encodeURIComponent(d.id)}/state`)).playbooks;
    } catch (e) {
      playbooks = d.playbooks.map((p) => ({ workflow_id: p.workflow_id, run_id: p.run_id, error: e.message }));
    }
    live = { alert: d.id, playbooks };
    if (shownAlert && shownAlert.id === d.id) for (const box of $("#detail").querySelectorAll("div.live")) fillLive(box);
  } finally {
    askingLive = false;
  }
}

// stallLine says what is wrong with a stalled run, and since when.
function stallLine(r) {
  const since = r.since ? ` since ${new Date(r.since).toLocaleString()}` : "";
  const attempts = r.attempts ? ` (${r.attempts} attempts${since})` : "";
  return `Stalled: ${r.workflow_type} ${r.workflow_id}: ${r.problem}${attempts}${r.error ? ": " + r.error : ""}. ` +
    "It carries on once a worker can run it again.";
}

// The decider's name, asked once per tab when the API is open. With a token the
// server names the token's holder, and the body leaves "by" out.
const userKey = "rampart.user";

function decider() {
  if (sessionStorage.getItem(tokenKey)) return "";
  let name = sessionStorage.getItem(userKey);
  if (!name) {
    name = (prompt("Your name, recorded as who decided:") || "").trim();
    if (name) sessionStorage.setItem(userKey, name);
  }
  return name;
}

// askWhy asks the reason for a decision, and who makes it while the API is open:
// the body of a decision, or null when the analyst cancels.
function askWhy(question) {
  const reason = prompt(question + " Reason, for the audit trail:");
  if (reason === null) return null;
  const body = { reason };
  const by = decider();
  if (by) body.by = by;
  else if (!sessionStorage.getItem(tokenKey)) return null;
  return body;
}

// acting counts the analyst's requests in flight (a decision, a keep, a run), and
// acts all of them ever started: the page does not refresh under them, nor with
// what it read before one.
let acting = 0;
let acts = 0;

async function act(request) {
  acting++;
  acts++;
  try {
    return await request();
  } finally {
    acting--;
  }
}

async function decide(a, decision, cell) {
  const body = askWhy(`${decision === "approve" ? "Approve" : "Deny"} ${a.operation} (${a.playbook} · ${a.step})?`);
  if (!body) return;
  body.decision = decision;
  cell.replaceChildren(text("span", "sending…"));
  try {
    const done = await act(() => api("/api/v1/approvals/" + encodeURIComponent(a.id) + ":decide", "POST", body));
    cell.replaceChildren(outcome(done));
  } catch (e) {
    cell.replaceChildren(text("span", e.message, "status-failed"));
  }
}

// outcome is how a decided approval ended: by whom, and why.
function outcome(a) {
  const who = a.decided_by ? ` by ${a.decided_by}` : "";
  return text("span", a.status + who + (a.reason ? `: ${a.reason}` : ""), "status-" + a.status);
}

// decideCell holds a pending approval's Approve and Deny buttons, or how a
// decided one ended.
function decideCell(a) {
  const cell = document.createElement("td");
  if (a.status !== "pending") {
    cell.append(outcome(a));
    return cell;
  }
  for (const decision of ["approve", "deny"]) {
    const b = text("button", decision === "approve" ? "Approve" : "Deny", decision);
    b.addEventListener("click", () => decide(a, decision, cell));
    cell.append(b);
  }
  return cell;
}

// inputsCell shows an action's inputs one to a line, as the analyst reads them
// before deciding: the name, then the value (as JSON when it is not text).
function inputsCell(inputs) {
  const cell = document.createElement("td");
  cell.className = "inputs";
  for (const [name, value] of Object.entries(inputs || {})) {
    const line = document.createElement("div");
    line.append(text("span", name + ": ", "input-name"), typeof value === "string" ? value : JSON.stringify(value));
    cell.append(line);
  }
  return cell;
}

// approvalTable lists an alert's approvals: what each asked to do, and its
// buttons or its outcome.
function approvalTable(approvals) {
  const table = rowTable(["Requested", "Playbook · step", "Action", "Inputs", "Decision"], approvals, (a) => [
    text("td", new Date(a.requested_at).toLocaleString()),
    text("td", `${a.playbook} · ${a.step}`),
    text("td", a.operation),
    inputsCell(a.inputs),
    decideCell(a),
  ], (a) => "alert-approval-" + a.id);
  table.id = "alert-approvals";
  return table;
}

// playbookList is the playbooks the run form offers, asked once per alert page:
// the page's refreshes reuse it.
let playbookList = null;

function playbooksFor(alertID) {
  if (!playbookList || playbookList.alertID !== alertID) {
    playbookList = { alertID, page: api("/api/v1/playbooks") };
    playbookList.page.catch(() => { playbookList = null; }); // asked again next time
  }
  return playbookList.page;
}

// runForm starts a playbook version on the alert now: a dry run unless the
// analyst unticks it. The run records who started it, and why. A refresh of the
// page keeps what the analyst had picked, and the last run's answer.
function runForm(alertID, before) {
  const form = document.createElement("form");
  form.id = "run-playbook";
  form.dataset.alert = alertID;
  const choice = document.createElement("select");
  choice.name = "playbook";
  const dry = document.createElement("input");
  dry.type = "checkbox";
  dry.checked = before ? before.dry : true;
  const dryLabel = document.createElement("label");
  dryLabel.append(dry, " dry run (record contain and notify actions, make none)");
  const result = text("span", before ? before.result : "", before ? before.resultClass : "run-result");
  form.append(choice, " ", dryLabel, " ", text("button", "Run", "run"), " ", result);
  playbooksFor(alertID).then((page) => {
    for (const p of page.playbooks) {
      const option = text("option", `${p.name} v${p.latest_version}${p.enabled ? "" : " (disabled)"}`);
      option.value = p.name;
      choice.append(option);
    }
    if (before && before.playbook) choice.value = before.playbook;
  }).catch((e) => { result.textContent = e.message; });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = askWhy(`Run ${choice.value} on this alert ${dry.checked ? "as a dry run" : "LIVE: its actions will be made"}?`);
    if (!body) return;
    Object.assign(body, { playbook: choice.value, dry_run: dry.checked });
    try {
      const started = await act(() => api("/api/v1/alerts/" + encodeURIComponent(alertID) + ":run", "POST", body));
      result.textContent = `started ${started.workflow_id}`;
      result.className = "run-result status-approved";
    } catch (err) {
      result.textContent = err.message;
      result.className = "run-result status-failed";
    }
  });
  return form;
}

// pendingReverts are the alert's actions whose timed revert (revert_after) is
// still to come, as [playbook run, revert step] pairs.
function pendingReverts(d) {
  const out = [];
  for (const p of d.playbooks || []) {
    for (const s of p.steps) if (s.status === "pending" && s.name.endsWith(".revert")) out.push([p, s]);
  }
  return out;
}

// revertBox lists the pending reverts with a Keep button that cancels them all,
// so the containment stays until someone lifts it.
function revertBox(alertID, reverts) {
  const box = document.createElement("div");
  box.id = "reverts";
  const table = rowTable(["Playbook · step", "Undoes", "When"], reverts, ([p, s]) => {
    const out = s.output || {};
    return [
      text("td", `${p.playbook} · ${s.name.slice(0, -".revert".length)}`),
      text("td", out.operation || ""),
      text("td", out.revert_at ? "reverts " + new Date(out.revert_at).toLocaleString() : ""),
    ];
  });
  const result = text("span", "", "kept");
  const keep = text("button", "Keep", "keep");
  keep.addEventListener("click", async () => {
    const body = askWhy("Keep these actions in place (cancel their timed reverts)?");
    if (!body) return;
    keep.disabled = true;
    try {
      const k = await act(() => api("/api/v1/alerts/" + encodeURIComponent(alertID) + ":keep", "POST", body));
      result.textContent = k.kept.length ? `kept by ${k.by}: ${k.kept.join(", ")}` : "no revert was pending any more";
      result.className = "kept status-approved";
    } catch (e) {
      keep.disabled = false;
      result.textContent = e.message;
      result.className = "kept status-failed";
    }
  });
  box.append(table, keep, " ", result);
  return box;
}

// loadApprovals lists the approvals with the chosen status: by default the
// inbox of those waiting for a decision, else the record of how others ended.
async function loadApprovals(stillWanted) {
  const status = $("#approval-status").value;
  const page = await api("/api/v1/approvals?status=" + encodeURIComponent(status));
  if (stillWanted && !stillWanted()) return;
  const tbody = $("#approval-rows");
  tbody.replaceChildren();
  for (const a of page.approvals) {
    const tr = document.createElement("tr");
    tr.id = "approval-" + a.id;
    // The inputs name hosts by the vendor's ids: the alert says what is at stake.
    const link = document.createElement("a");
    link.href = "#" + a.alert_id;
    const al = a.alert;
    link.textContent = al ? [al.hostname, al.user, al.title].filter(Boolean).join(" · ") : a.alert_id || "";
    const alertCell = document.createElement("td");
    alertCell.append(link);
    if (al) alertCell.append(" ", text("span", al.severity, "sev-" + al.severity_id));
    tr.append(
      text("td", new Date(a.requested_at).toLocaleString()),
      text("td", a.deadline ? new Date(a.deadline).toLocaleString() : ""),
      alertCell,
      text("td", `${a.playbook} · ${a.step}`),
      text("td", a.operation),
      inputsCell(a.inputs),
      text("td", (a.approvers || []).join(", ")),
      decideCell(a),
    );
    tbody.append(tr);
  }
  const empty = $("#approvals-empty");
  empty.textContent = status === "pending" ? "Nothing is waiting for a decision." : "No approvals to show.";
  empty.hidden = page.approvals.length > 0;
}

// loadStalled lists the runs Temporal reports cannot progress, each linked to its alert.
async function loadStalled(stillWanted) {
  const page = await api("/api/v1/stalled"); // the first 50, each explained: enough to see the pattern
  if (stillWanted && !stillWanted()) return;
  const tbody = $("#stalled-rows");
  tbody.replaceChildren();
  for (const r of page.runs) {
    const alertCell = document.createElement("td");
    if (r.alert_id) {
      const link = document.createElement("a");
      link.href = "#" + r.alert_id;
      link.textContent = r.alert_id;
      alertCell.append(link);
    }
    const tr = document.createElement("tr");
    tr.append(
      alertCell,
      text("td", `${r.workflow_type} ${r.workflow_id}`),
      text("td", r.since ? new Date(r.since).toLocaleString() : ""),
      text("td", r.attempts || ""),
      text("td", r.problem + (r.cause ? ` (${r.cause})` : "")),
      text("td", r.error || "", "why"),
    );
    tbody.append(tr);
  }
  $("#stalled-empty").hidden = page.total > 0;
  const more = $("#stalled-more");
  more.textContent = `… and ${page.total - page.runs.length} more.`;
  more.hidden = page.total <= page.runs.length;
}

function show(section) {
  for (const id of ["list", "detail", "approvals", "stalled"]) $("#" + id).hidden = id !== section;
}

// say keeps an element of the header in step with an API answer: words turns
// the answer into its text, "" hiding it. An API that cannot answer hides it
// too; the page's own requests say why.
async function say(selector, path, words) {
  const el = $(selector);
  try {
    const said = words(await api(path));
    el.textContent = said;
    el.hidden = !said;
  } catch {
    el.hidden = true;
  }
}

// countStalled shows in the header, when there are any, how many runs cannot
// progress: the one thing wrong that no alert's status says by itself.
const countStalled = () => say("#nav-stalled", "/api/v1/stalled?limit=0", (page) => page.total ? `Stalled (${page.total})` : "");

// sayIfNoWorker says, under the header, when no worker polls the task queue:
// alerts are then accepted and wait in Temporal, and nothing else on the page
// would show why nothing moves.
const sayIfNoWorker = () => say("#no-workers", "/api/v1/workers", (w) => {
  if (w.polling > 0) return "";
  const last = w.workers.length ? ` since ${new Date(w.workers[0].last_poll).toLocaleString()}` : "";
  return `No worker has polled task queue ${w.task_queue}${last}: alerts are accepted and wait ` +
    "in Temporal until one runs (rampart worker).";
});

// refusedLately is how recent a source's last refused delivery must be for
// every page to mention it.
const refusedLately = 15 * 60 * 1000;

// sayIfRefused says, under the header, which webhook sources had a delivery
// refused lately, and the answer their tool got: a rotated secret or a changed
// payload otherwise shows only in the tool's own logs, as alerts that never come.
const sayIfRefused = () => say("#refused", "/api/v1/sources", (list) => list.sources
  .filter((s) => s.last_refusal && Date.now() - new Date(s.last_refusal.at) < refusedLately)
  .map((s) => {
    const r = s.last_refusal;
    const total = Object.values(s.refused).reduce((a, b) => a + b, 0);
    return `Webhook source ${s.name} had a delivery refused at ${new Date(r.at).toLocaleTimeString()}: ` +
      `${r.status} ${r.code}, ${r.message} (${total} refused since ${new Date(list.since).toLocaleString()}; rampart alert sources).`;
  }).join(" "));

// countWaiting shows in the header how many approvals wait for a decision,
// whichever page is open. It is the last request of a refresh: when it answers,
// the page is up to date.
async function countWaiting() {
  const page = await api("/api/v1/approvals?status=pending&limit=1");
  await countStalled(); // after, not beside: a token the server refuses is asked for once
  await sayIfNoWorker();
  await sayIfRefused();
  $("#nav-approvals").textContent = page.total ? `Approvals (${page.total})` : "Approvals";
  stale(null);
}

// stale says, under the header, that the page could not be brought up to date
// and why (the database is down, say); null takes it away.
function stale(e) {
  const note = $("#stale");
  note.textContent = e ? `Not up to date: ${e.message}. The page shows what it last read.` : "";
  note.hidden = !e;
}

// loaded says the page's last load worked: a page that failed (no token given,
// say) waits for the analyst rather than asking again by itself.
let loaded = false;

function route() {
  loaded = false;
  playbookList = null;
  const id = location.hash.slice(1);
  let load;
  if (id === "approvals") {
    show("approvals");
    load = loadApprovals();
  } else if (id === "stalled") {
    show("stalled");
    load = loadStalled();
  } else if (id) {
    load = showAlert(id);
  } else {
    show("list");
    load = loadAlerts(false);
  }
  // After the page's own request, so a token is asked for once.
  load.then(() => { loaded = true; }, (e) => alert(e.message)).then(() => countWaiting()).catch(() => {});
}

// refresh brings the page on screen up to date, every few seconds: the list's
// first page, the inbox, the header's count, and an alert's page while the alert
// is in progress. It holds off while the analyst acts or picks in a form. One
// that fails says so under the header (stale) until one works again.
const refreshEvery = 5000;

async function refresh() {
  if (document.hidden || acting || !loaded || document.activeElement?.matches("#detail select, #detail input")) return;
  const id = location.hash.slice(1);
  const before = acts;
  const quiet = () => !acting && acts === before;
  if (id === "approvals") {
    await loadApprovals(quiet);
  } else if (id === "stalled") {
    await loadStalled(quiet);
  } else if (id) {
    if (shownAlert && shownAlert.id === id && ["received", "processing"].includes(shownAlert.status)) await showAlert(id, quiet);
  } else if (pages === 1) {
    await loadAlerts(false, quiet);
  }
  await countWaiting();
}

$("#filters").addEventListener("change", () => loadAlerts(false));
$("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadAlerts(false); });
$("#more").addEventListener("click", () => loadAlerts(true));
$("#approval-status").addEventListener("change", () => loadApprovals().catch((e) => alert(e.message)));
window.addEventListener("hashchange", route);
route();
setInterval(() => refresh().catch(stale), refreshEvery);
