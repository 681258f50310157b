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

// The console's words for a verdict code (guard/web/wording.py's, tied by a unit test): the page
// shows them beside the raw code, and both are compared with the proven entry.
export const VERDICT_WORDS = {
  allow: 'allowed',
  allow_with_conditions: 'allowed, with conditions',
  deny: 'refused',
};

export function verdictWords(verdict) {
  return Object.hasOwn(VERDICT_WORDS, verdict) ? VERDICT_WORDS[verdict] : String(verdict ?? '');
}

// A value as the templates print it: a missing one as nothing.
const printed = (value) => (value === null || value === undefined ? '' : String(value));

// Whether the [data-fact] elements inside `scope` say exactly `expected`, which the calling
// script builds with a fixed set of names: a name maps to one value (exactly one element must
// carry that fact) or to a list (exactly that many elements, in order: a member a page may show
// none of, such as reasons, or a decision link that only decisions have). A fact the page shows
// that the script does not expect fails too. The set of names comes from the script, never from
// the page, so a server that drops `data-fact` from a cell leaves that fact missing, which
// fails, rather than unchecked. Returns the first failing fact's name, or null when all agree.
export function textMismatch(scope, expected) {
  const shown = new Map();
  for (const element of scope.querySelectorAll('[data-fact]')) {
    const fact = element.dataset.fact;
    if (!Object.hasOwn(expected, fact)) return fact; // a fact this check does not know
    if (!shown.has(fact)) shown.set(fact, []);
    shown.get(fact).push(element.textContent.trim());
  }
  for (const [fact, value] of Object.entries(expected)) {
    const want = (Array.isArray(value) ? value : [value]).map(printed);
    const got = shown.get(fact) || [];
    if (got.length !== want.length || got.some((text, at) => text !== want[at])) return fact;
  }
  return null;
}

// A value only when it is present: the one-or-none list `textMismatch` reads as optional.
export const optional = (value) => (value === null || value === undefined ? [] : [value]);

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

// A page's data-index as a leaf index: digits only, a safe integer; null for anything else
// (Number() would read "0x5", " 5" and "5e0" as 5, letting a row name an entry it does not
// print).
export function leafIndex(text) {
  if (typeof text !== 'string' || !/^[0-9]+$/.test(text)) return null;
  const index = Number(text);
  return Number.isSafeInteger(index) ? index : null;
}
