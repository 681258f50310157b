// What the console's in-browser checks share: a button that fetches the server's proofs, runs
// a check on them in this browser, and says the outcome in a live region. The check returns
// `{ ok, text }`; a fetch that fails, or a check that throws, is a "Not verified" with why.
// The key a person pasted (pinned out of band) is used instead of the one the server serves.

import { parseVerifierKey } from './verify.js';

export function pinnedOr(pinned, served) {
  const own = pinned.value.trim();
  return { verifierKey: own || served, own: Boolean(own) };
}

// JSON with sorted keys: two parsed values are equal when their canonical texts are.
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

// The members (of `members`, or of either object) in which what a page shows differs from
// the proven entry; an absent member reads as null on both sides, as Python's dict.get does.
export function differences(shown, proven, members = null) {
  const keys = members || [...new Set([...Object.keys(shown), ...Object.keys(proven)])];
  const at = (object, key) => (Object.hasOwn(object, key) ? object[key] : null);
  return keys.filter((key) => canonical(at(shown, key)) !== canonical(at(proven, key))).sort();
}

// A page's JSON data attribute, or undefined when it is missing or not JSON (a refusal).
export function shownData(element, name) {
  try {
    return JSON.parse(element.dataset[name]);
  } catch (error) {
    return undefined;
  }
}

// The first [data-fact] element inside `scope` whose text is not the expected value's (as
// the template prints it: a missing value as nothing), so that a page cannot carry true data
// attributes beside false text. Returns the fact's name, or null when all agree.
export function textMismatch(scope, expected) {
  for (const element of scope.querySelectorAll('[data-fact]')) {
    const fact = element.dataset.fact;
    if (!Object.hasOwn(expected, fact)) return fact; // a fact this check does not know
    const value = expected[fact];
    const text = value === null || value === undefined ? '' : String(value);
    if (element.textContent.trim() !== text) return fact;
  }
  return null;
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
