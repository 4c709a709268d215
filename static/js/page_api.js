// JSON requests from the site's own pages: the session cookie, the page's CSRF token, and
// errors in words a person can read (the server's own sentence where it gave one).

import { interpolate } from "./format.js";

/**
 * Returns `api(method, url, body)`, which resolves to the JSON answer or throws
 * `makeError(message, status)`. `strings` holds the page's `networkError` and
 * `serverError` (with `{status}`).
 */
export function jsonApi({ csrfToken, strings, makeError }) {
  return async function api(method, url, body) {
    const init = {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw makeError(strings.networkError, 0);
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const first = data.errors && Object.values(data.errors).flat()[0];
      const message =
        data.error || first || interpolate(strings.serverError, { status: response.status });
      throw makeError(message, response.status);
    }
    return data;
  };
}
