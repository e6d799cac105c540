// The catalog's only script. Pages are rendered by the registry and work without it; it
// exists for what only the browser can do: hold the write token for the session and drive
// the pipeline form through the JSON API (validate as you type, register).
// Server text is only ever inserted with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "weft-token";
// One cookie per port: browsers send a host's cookies to all its ports (see access.rs).
const COOKIE = "weft_token_" + (location.port || "default");

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

// The cookie lets the registry serve catalog pages when reads need a token (auth_reads):
// a session cookie, sent only to /ui of this origin.
function keepToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  document.cookie = COOKIE + "=" + encodeURIComponent(token) + "; path=/ui; SameSite=Strict";
  markToken();
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  document.cookie = COOKIE + "=; path=/ui; SameSite=Strict; max-age=0";
  markToken();
}

function markToken() {
  const link = document.getElementById("token-link");
  if (link) link.textContent = storedToken() ? "token ✓" : "token";
}

function authHeaders() {
  const headers = { "Content-Type": "application/json" };
  const token = storedToken();
  if (token) headers["Authorization"] = "Bearer " + token;
  return headers;
}

// The API's error body is {error_code, message}; anything else is shown by its status.
async function errorText(response) {
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") return body.message;
  } catch (_) { /* not JSON */ }
  return "HTTP " + response.status;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function setupTokenPage() {
  const form = document.getElementById("token-form");
  if (!form) return;
  const status = document.getElementById("token-status");
  status.textContent = storedToken() ? "A token is kept for this session." : "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = document.getElementById("token-input").value.trim();
    if (!value) return;
    keepToken(value);
    const next = new URLSearchParams(location.search).get("next");
    // Only back into the catalog: never an open redirect.
    if (next && next.startsWith("/ui") && !next.startsWith("//")) {
      location.assign(next);
    } else {
      status.textContent = "Kept for this session.";
    }
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    forgetToken();
    status.textContent = "Forgotten.";
  });
}

function setupPipelineForm() {
  const form = document.getElementById("pipeline-form");
  if (!form) return;
  const field = (id) => document.getElementById(id);
  const validation = field("validation");
  const error = field("form-error");
  const result = field("form-result");
  const tokenRow = field("token-row");
  tokenRow.hidden = Boolean(storedToken());

  function body(nameFallback) {
    const out = {
      name: field("pf-name").value.trim() || nameFallback,
      description: field("pf-description").value,
      definition: field("pf-definition").value,
    };
    const cluster = field("pf-cluster").value.trim();
    if (cluster) out.cluster = cluster;
    return out;
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  function renderReport(report) {
    validation.replaceChildren();
    const ok = report.valid;
    const links = report.links || [];
    const verdict = !ok ? "Not valid yet."
      : links.length ? "Valid: every link checks."
      : "Valid (no schema link to check: these plugins take the schema they receive).";
    validation.append(el("p", verdict, ok ? "ok" : "error"));
    const list = el("ul");
    for (const problem of report.errors || []) list.append(el("li", problem, "error"));
    for (const link of links) {
      const item = el("li", link.from + " → " + link.to + ": " + link.status, "link " + link.status);
      for (const p of link.problems || []) item.append(el("div", p, "problem"));
      list.append(item);
    }
    validation.append(list);
  }

  let generation = 0;
  async function validate() {
    if (!field("pf-definition").value.trim()) {
      validation.replaceChildren();
      return;
    }
    const mine = ++generation;
    const response = await fetch("/v1/pipelines/validate", {
      method: "POST",
      headers: authHeaders(),
      body: JSON.stringify(body("draft")),
    });
    if (mine !== generation) return; // a newer keystroke's answer wins
    if (response.ok) {
      renderReport(await response.json());
    } else {
      validation.replaceChildren(el("p", await errorText(response), "error"));
    }
  }

  let timer;
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => validate().catch((e) => showError(String(e))), 400);
  });
  field("pf-validate").addEventListener("click", () => validate().catch((e) => showError(String(e))));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    result.hidden = true;
    const typed = field("pf-token").value.trim();
    if (typed) keepToken(typed);
    if (!storedToken()) {
      tokenRow.hidden = false;
      field("pf-token").focus();
      showError("Registering needs a registry token: enter it once for this session.");
      return;
    }
    const payload = body("");
    const response = await fetch("/v1/pipelines/" + encodeURIComponent(payload.name), {
      method: "PUT",
      headers: authHeaders(),
      body: JSON.stringify(payload),
    });
    if (response.ok) {
      const stored = await response.json();
      result.replaceChildren(
        document.createTextNode(response.status === 201 ? "Registered " : "Replaced "),
        Object.assign(el("a", stored.name), { href: "/ui/pipelines/" + encodeURIComponent(stored.name) }),
      );
      result.hidden = false;
      return;
    }
    if (response.status === 401 || response.status === 403) {
      forgetToken();
      tokenRow.hidden = false;
    }
    showError(await errorText(response));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  markToken();
  setupTokenPage();
  setupPipelineForm();
});
