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

// The elements a data-fact may be: those the templates print facts in, each holding text only.
// Any other (an <input> shows its value, not its text; an <img> its alt) could show one thing
// while its text says another.
const FACT_TAGS = new Set(['SPAN', 'TD', 'DD', 'A', 'LI', 'P']);

// Whether an element shows its text as it reads: text only (an element inside, such as a
// <bdo dir="rtl">, could reorder or hide what is read), no text direction of its own or from an
// element around it (one override reverses "12" into "21"), not hidden and rendered visibly.
// Styles that draw other text (generated content, fonts) are beyond what a page can check.
// `also`: tag names allowed besides FACT_TAGS, for a statement checked on its own (a <pre>).
export function readsAsShown(element, also = []) {
  const tag = element.tagName;
  if (!(FACT_TAGS.has(tag) || also.includes(tag)) || element.children.length !== 0) return false;
  if (element.closest('bdo, [dir], [hidden]') !== null) return false;
  return element.checkVisibility({ opacityProperty: true, visibilityProperty: true });
}

// Whether the [data-fact] elements inside `scope` say exactly `expected`, which the calling
// script builds with a fixed set of names: a name maps to one value (exactly one element must
// carry that fact) or to a list (exactly that many elements, in order: a member a page may show
// none of, such as reasons, or a decision link that only decisions have). A fact the page shows
// that the script does not expect fails too, as does one that does not read as it is shown
// (see readsAsShown). The set of names comes from the script, never from the page, so a server
// that drops `data-fact` from a cell leaves that fact missing, which fails, rather than
// unchecked. Each element compared is added to `checked` (when given), so that the caller can
// tell whether the page shows facts outside what it compared. Returns the first failing fact's
// name, or null when all agree.
export function textMismatch(scope, expected, checked = null) {
  const shown = new Map();
  for (const element of scope.querySelectorAll('[data-fact]')) {
    const fact = element.dataset.fact;
    if (!Object.hasOwn(expected, fact)) return fact; // a fact this check does not know
    if (!readsAsShown(element)) return fact;
    if (checked) checked.add(element);
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

// Whether every [data-fact] element of the page is one a check compared: a fact printed
// outside the checked places (a row without its data-index, a second block) is not read as
// checked.
export function allFactsChecked(checked) {
  return [...document.querySelectorAll('[data-fact]')].every((element) => checked.has(element));
}

// The one element with this id, or null when the page has none or several: getElementById
// would return the first, and a second could be the one a reader sees.
export function single(id) {
  const found = document.querySelectorAll(`#${CSS.escape(id)}`);
  return found.length === 1 ? found[0] : null;
}

// The rows of a table other than its one header row: each must be a row a check reads (a row
// that lacks the marker a check selects by would otherwise be shown and never compared).
// Returns null when the table has more than one header row.
export function bodyRows(table) {
  const rows = [...table.querySelectorAll('tr')];
  const head = rows.filter((row) => row.closest('thead') !== null);
  if (head.length > 1) return null;
  return rows.filter((row) => row.closest('thead') === null);
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
  // The answer is shown whatever the page did to its region: a result a server rendered hidden
  // would leave the auditor without the "Not verified".
  const say = (ok, text) => {
    result.hidden = false;
    result.removeAttribute('hidden');
    result.textContent = text;
    result.className = ok ? 'notice' : 'problem';
  };
  async function run() {
    button.disabled = true;
    result.hidden = false;
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
