// The one way the map talks to the server: GraphQL at /graphql, with the API key the person
// typed (kept in this tab's sessionStorage) when the server asks for one (HTTP 401).

const KEY = "cmdb-graph.api-key";

export class ApiError extends Error {}

/** Run one GraphQL operation; returns `data`. Asks for a key and retries on 401. */
export async function gql(query, variables = {}) {
  for (;;) {
    const key = sessionStorage.getItem(KEY);
    const headers = { "content-type": "application/json" };
    if (key) headers.authorization = `Bearer ${key}`;
    const resp = await fetch("/graphql", {
      method: "POST", headers, body: JSON.stringify({ query, variables }),
    });
    if (resp.status === 401) {
      const detail = (await resp.json().catch(() => ({}))).detail || "";
      await askForKey(key ? "That key was refused. " + detail : "");
      continue;
    }
    const body = await resp.json().catch(() => null);
    if (!body) throw new ApiError(`HTTP ${resp.status}`);
    if (body.errors?.length) throw new ApiError(body.errors.map((e) => e.message).join("; "));
    return body.data;
  }
}

/** The payload of a `X | UserError` union field, or an ApiError with the user error. */
export function unwrap(result) {
  if (result && result.__typename === "UserError") {
    throw new ApiError(`${result.code}: ${result.message}`);
  }
  return result;
}

export function hasKey() {
  return Boolean(sessionStorage.getItem(KEY));
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

let asking = null; // one prompt for every request refused at once

function askForKey(message) {
  asking ??= prompt(message).finally(() => { asking = null; });
  return asking;
}

function prompt(message) {
  const dialog = document.getElementById("key-dialog");
  document.getElementById("key-error").textContent = message;
  const input = document.getElementById("key");
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      sessionStorage.setItem(KEY, input.value.trim());
      document.getElementById("forget-key").hidden = false;
      resolve();
    }, { once: true });
    dialog.showModal();
  });
}
