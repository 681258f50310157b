// What the console's in-browser checks share: a button that fetches the server's proofs, runs
// a check on them in this browser, and says the outcome in a live region. The check returns
// `{ ok, text }`; a fetch that fails, or a check that throws, is a "Not verified" with why.
// The key a person pasted (pinned out of band) is used instead of the one the server serves.

import { parseVerifierKey } from './verify.js';

export function pinnedOr(pinned, served) {
  const own = pinned.value.trim();
  return { verifierKey: own || served, own: Boolean(own) };
}

export async function keyName(verifierKey) {
  try {
    return (await parseVerifierKey(verifierKey)).name;
  } catch (error) {
    return 'an unreadable key';
  }
}

export function offerCheck({ button, result, url, check }) {
  const say = (ok, text) => {
    result.textContent = text;
    result.className = ok ? 'notice' : 'problem';
  };
  async function run() {
    button.disabled = true;
    result.className = '';
    result.textContent = 'Checking…';
    try {
      const response = await fetch(url, {
        credentials: 'same-origin',
        headers: { Accept: 'application/json' },
      });
      if (!response.ok) {
        say(false, `Not verified: the proofs could not be fetched (HTTP ${response.status})`);
        return;
      }
      const outcome = await check(await response.json(), (text) => { result.textContent = text; });
      say(outcome.ok, outcome.text);
    } catch (error) {
      say(false, `Not verified: ${error.message || error}`);
    } finally {
      button.disabled = false;
    }
  }
  button.hidden = false;
  button.addEventListener('click', run);
}
