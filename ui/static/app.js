// Rampart UI: an alert list, an alert detail view and the approval inbox over
// /api/v1.
"use strict";

const $ = (sel) => document.querySelector(sel);
let cursor = "";

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

async function loadAlerts(append) {
  const params = new URLSearchParams(new FormData($("#filters")));
  for (const [k, v] of [...params]) if (!v) params.delete(k);
  if (append && cursor) params.set("cursor", cursor);
  const page = await api("/api/v1/alerts?" + params);
  const tbody = $("#alerts");
  if (!append) tbody.replaceChildren();
  for (const a of page.alerts) {
    const tr = document.createElement("tr");
    tr.append(
      text("td", new Date(a.received_at).toLocaleString()),
      text("td", a.severity, "sev-" + a.severity_id),
      text("td", a.title),
      text("td", a.source),
      text("td", a.status, "status-" + a.status),
      text("td", a.summary || "", "why"),
      text("td", a.duplicate_count),
    );
    tr.addEventListener("click", () => { location.hash = a.id; });
    tbody.append(tr);
  }
  cursor = page.next_cursor || "";
  $("#more").hidden = !cursor;
}

function stepTable(steps) {
  const table = document.createElement("table");
  for (const s of steps) {
    const tr = document.createElement("tr");
    tr.append(text("td", s.name), text("td", s.status, "status-" + s.status),
      text("td", s.duration_ms != null ? s.duration_ms + " ms" : ""), text("td", s.error || ""));
    table.append(tr);
  }
  return table;
}

async function showAlert(id) {
  const d = await api("/api/v1/alerts/" + encodeURIComponent(id));
  const view = $("#detail");
  view.replaceChildren(
    text("h2", d.title),
    text("p", `${d.severity} · ${d.source} · ${d.status} · ${d.duplicate_count} duplicates · workflow ${d.temporal.workflow_id}`),
    text("p", d.summary || "", "why"),
    text("h3", "Steps"),
  );
  view.append(stepTable(d.steps));
  for (const p of d.playbooks || []) {
    // A finished run says how it ended (succeeded, failed) and why; one in flight, that it runs.
    const heading = text("h3", `Playbook ${p.playbook} v${p.version}${p.dry_run ? " (dry run)" : ""}: ${p.result ? p.result.status : p.run.status}`);
    heading.id = "playbook-" + p.playbook;
    view.append(heading, text("p", (p.result && p.result.message) || p.run.error || "", "why"), stepTable(p.steps));
  }
  view.append(text("h3", "Decision"), text("pre", JSON.stringify(d.decision, null, 2)),
    text("h3", "Actions"), text("pre", JSON.stringify(d.actions, null, 2)),
    text("h3", "Enrichment"), text("pre", JSON.stringify(d.enrichment, null, 2)),
    text("h3", "Alert"), text("pre", JSON.stringify(d.alert, null, 2)));
  show("detail");
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

async function decide(a, decision, cell) {
  const reason = prompt(`${decision === "approve" ? "Approve" : "Deny"} ${a.operation} (${a.playbook} · ${a.step})? Reason, for the audit trail:`);
  if (reason === null) return;
  const body = { decision, reason };
  const by = decider();
  if (by) body.by = by;
  else if (!sessionStorage.getItem(tokenKey)) return;
  cell.replaceChildren(text("span", "sending…"));
  try {
    const done = await api("/api/v1/approvals/" + encodeURIComponent(a.id) + ":decide", "POST", body);
    cell.replaceChildren(text("span", `${done.status} by ${done.decided_by}`, "status-" + done.status));
  } catch (e) {
    cell.replaceChildren(text("span", e.message, "status-failed"));
  }
}

async function loadApprovals() {
  const page = await api("/api/v1/approvals?status=pending");
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
    const actions = document.createElement("td");
    for (const decision of ["approve", "deny"]) {
      const b = text("button", decision === "approve" ? "Approve" : "Deny", decision);
      b.addEventListener("click", () => decide(a, decision, actions));
      actions.append(b);
    }
    tr.append(
      text("td", new Date(a.requested_at).toLocaleString()),
      text("td", a.deadline ? new Date(a.deadline).toLocaleString() : ""),
      alertCell,
      text("td", `${a.playbook} · ${a.step}`),
      text("td", a.operation),
      text("td", JSON.stringify(a.inputs)),
      text("td", (a.approvers || []).join(", ")),
      actions,
    );
    tbody.append(tr);
  }
  $("#approvals-empty").hidden = page.approvals.length > 0;
}

function show(section) {
  for (const id of ["list", "detail", "approvals"]) $("#" + id).hidden = id !== section;
}

function route() {
  const id = location.hash.slice(1);
  if (id === "approvals") {
    show("approvals");
    loadApprovals().catch((e) => alert(e.message));
  } else if (id) {
    showAlert(id).catch((e) => alert(e.message));
  } else {
    show("list");
    loadAlerts(false).catch((e) => alert(e.message));
  }
}

$("#filters").addEventListener("change", () => loadAlerts(false));
$("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadAlerts(false); });
$("#more").addEventListener("click", () => loadAlerts(true));
window.addEventListener("hashchange", route);
route();
