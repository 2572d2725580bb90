// Rampart UI: an alert list and an alert detail view over /api/v1.
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

async function api(path) {
  for (;;) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(tokenKey);
    if (token) headers.Authorization = "Bearer " + token;
    const res = await fetch(path, { headers });
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
    text("h3", "Steps"),
  );
  view.append(stepTable(d.steps));
  for (const p of d.playbooks || []) {
    view.append(
      text("h3", `Playbook ${p.playbook} v${p.version}${p.dry_run ? " (dry run)" : ""}: ${p.run.status}`),
      text("p", p.run.error || ""),
      stepTable(p.steps),
    );
  }
  view.append(text("h3", "Decision"), text("pre", JSON.stringify(d.decision, null, 2)),
    text("h3", "Actions"), text("pre", JSON.stringify(d.actions, null, 2)),
    text("h3", "Enrichment"), text("pre", JSON.stringify(d.enrichment, null, 2)),
    text("h3", "Alert"), text("pre", JSON.stringify(d.alert, null, 2)));
  view.hidden = false;
  $("#list").hidden = true;
}

function route() {
  const id = location.hash.slice(1);
  if (id) {
    showAlert(id).catch((e) => alert(e.message));
  } else {
    $("#detail").hidden = true;
    $("#list").hidden = false;
    loadAlerts(false).catch((e) => alert(e.message));
  }
}

$("#filters").addEventListener("change", () => loadAlerts(false));
$("#more").addEventListener("click", () => loadAlerts(true));
window.addEventListener("hashchange", route);
route();
