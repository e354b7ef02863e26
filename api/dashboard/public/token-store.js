// @ts-check
/**
 * The API token lives in sessionStorage only: it survives a reload but not
 * closing the tab, is never put in a URL and never written to a cookie (so
 * no request carries it unless the page adds it on purpose).
 */
const TOKEN_KEY = 'plinth.apiToken';

/** @returns {string | null} */
export function loadToken() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string} token */
export function saveToken(token) {
  window.sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  window.sessionStorage.removeItem(TOKEN_KEY);
}
