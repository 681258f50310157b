// "Verify every entry" on a subject's report and an erasure certificate: fetch the receipts of
// the entries the page lists, check each in this browser with verify.js (the server is the
// party being checked), all against one signed checkpoint, then check that the proven entries
// are exactly the ones listed, that each carries the subject's keyed reference shown on the
// page, and that every fact a row shows (data-shown, and the text of its data-fact cells) is
// the proven entry's: a server cannot list an index beside another entry's kind, time, verdict,
// requester or decision. The facts each row (and each certificate section) must print are this
// script's fixed lists, not the page's: a cell that drops its data-fact fails, it is not
// skipped. On a certificate also the erasure entry it names (by whom, how many templates), the
// grant references, the printed proofs and the printed checkpoint.
// A pasted key (pinned out of band) is used instead of the server's.

import { verifyReceipt } from './verify.js';
import {
  allFactsChecked, bodyRows, differences, keyName, leafIndex, offerCheck, optional, pinnedOr,
  readsAsShown, shownData, single, textMismatch, verdictWords,
} from './checking.js';

// One of each (see single): the data read, the key used and the answer written are the ones
// the auditor sees.
const section = single('verify-all');
const button = single('verify-all-button');
const result = single('verify-all-result');
const pinned = single('verify-all-key');

// The entry members each row displays (subjects.py's SUBJECT_ROW and ERASURE_ROW): a row
// whose data-shown leaves one out is compared as if it showed null, so it cannot skip one.
const SUBJECT_ROW = ['kind', 'time', 'verdict', 'requester', 'decision_id'];
const ERASURE_ROW = ['kind', 'time'];
// The erasure entry's members the certificate's first section displays (subjects.py's
// ACT_SHOWN), besides its index.
const ACT_SHOWN = ['kind', 'count'];

// What each row prints (its data-fact cells), from the proven entry: the raw time (the words
// beside it are the console's reading of it), the verdict's code and words, the keyed
// requester reference, the decision link; a member the entry lacks is printed by no cell.
const SUBJECT_FACTS = (index, { entry }) => ({
  index,
  kind: entry.kind,
  time: entry.time,
  verdict: optional(entry.verdict),
  verdict_words: optional(entry.verdict === null || entry.verdict === undefined
    ? null : verdictWords(entry.verdict)),
  requester: optional(entry.requester),
  decision_id: optional(decisionOf(entry)),
});
const ERASURE_FACTS = (index, { entry, leafHex }) => ({
  index, kind: entry.kind, time: entry.time, leaf_hash: leafHex,
});
const ERASURE_KINDS = ['subject_erased', 'subject_erased_by_person'];
const BY_WORDS = {
  subject_erased: 'the integrator, through the API',
  subject_erased_by_person: 'the person, on their own page',
};
// What a certificate that names no erasure entry prints for "By" (erasure.html's): its list
// is cut before the erasure entry, or no listed entry is one. And for the templates count.
const NOT_LISTED = 'not among the listed entries';
const NOT_LOGGED = 'not recorded in the audit log';
const NO_COUNT = 'not recorded';

class Mismatch extends Error {}
const fail = (why) => { throw new Mismatch(why); };

// Every listed index proven once, nothing proven that is not listed, oldest first.
function sameEntries(listed, proven) {
  if (!Array.isArray(listed) || !listed.every(Number.isSafeInteger)) {
    fail('the page\'s list of entries is unreadable');
  }
  if (listed.some((index, at) => at > 0 && index <= listed[at - 1])) {
    fail('the page does not list its entries oldest first, each once');
  }
  for (const index of listed) {
    if (!proven.has(index)) fail(`entry ${index} is listed but was not proven`);
  }
  for (const index of proven.keys()) {
    if (!listed.includes(index)) fail(`entry ${index} was proven but is not listed`);
  }
}

// A decision entry's id (what its row links to), null for any other entry.
function decisionOf(entry) {
  return entry.kind === 'decision' && entry.decision_id ? String(entry.decision_id) : null;
}

// An element's data-index, read strictly (see leafIndex).
function indexOf(element) {
  const index = leafIndex(element.dataset.index);
  return index === null ? fail(`the page shows an unreadable index ${element.dataset.index}`) : index;
}

// The rows of the page's table: each shows the members of its proven entry it claims to. Every
// row but the header must be one (a row without data-index would be shown and never compared).
function checkRows(proven, members, facts, checked) {
  const tables = document.querySelectorAll('[data-verify-rows]');
  const rows = tables.length === 1 ? bodyRows(tables[0]) : null;
  if (rows === null || rows.some((row) => row.dataset.index === undefined)) {
    fail('the page shows a row of entries that is not one of the listed entries');
  }
  const seen = new Set();
  for (const row of rows) {
    const index = indexOf(row);
    const found = proven.get(index);
    if (!found) fail(`the page shows a row for entry ${row.dataset.index}, which was not proven`);
    seen.add(index);
    const shown = shownData(row, 'shown');
    if (shown === null || typeof shown !== 'object' || Array.isArray(shown)) {
      fail(`the page's row for entry ${index} does not say what it shows`);
    }
    const differing = differences(shown, found.entry, members);
    if (differing.length) {
      fail(`the page's row for entry ${index} differs from the proven entry in `
        + differing.join(', '));
    }
    const wrongText = textMismatch(row, facts(index, found), checked);
    if (wrongText) fail(`the page's row for entry ${index} shows another ${wrongText}`);
    const decisionId = decisionOf(found.entry);
    for (const link of row.querySelectorAll('a[href]')) {
      if (link.getAttribute('href') !== `/console/decisions/${decisionId}`) {
        fail(`the page's row for entry ${index} links another decision`);
      }
    }
  }
  if (seen.size !== proven.size || rows.length !== proven.size) {
    fail('the page\'s rows are not the listed entries, one row each');
  }
}

// The certificate's own statements: the erasure entry it names, the grant references, the
// proofs it prints and the checkpoint it prints (the one every receipt must be against).
function checkCertificate(proven, note, checked) {
  const printed = single('checkpoint-note');
  if (!printed || !readsAsShown(printed, ['PRE']) || printed.textContent !== note) {
    fail('the checkpoint printed on the certificate is not the one the entries were proven against');
  }
  const cards = document.querySelectorAll('.proof');
  for (const card of cards) {
    if (card.dataset.index === undefined) fail('the certificate prints a proof without its index');
    const index = indexOf(card);
    const found = proven.get(index);
    if (!found) fail(`the certificate prints a proof of entry ${card.dataset.index}, not proven`);
    const wrong = textMismatch(card, {
      entry: index,
      kind: found.entry.kind,
      index,
      leaf_hash: found.leafHex,
      step: found.receipt.inclusion_proof,
    }, checked);
    if (wrong) {
      fail(`the certificate's printed proof of entry ${index} is not the one that verified (${
        wrong})`);
    }
  }
  if (cards.length !== proven.size) {
    fail('the certificate does not print one proof per listed entry');
  }
  const refs = [...new Set([...proven.values()].flatMap(({ entry }) => (
    Array.isArray(entry.grant_refs) ? entry.grant_refs.map(String) : [])))].sort();
  const list = single('grant-refs');
  const items = list === null ? [] : [...list.querySelectorAll('li')];
  const shownRefs = items.map((li) => li.textContent);
  if (list === null || !items.every((li) => readsAsShown(li))
      || shownRefs.join('\n') !== refs.join('\n')) {
    fail('the grant references shown are not those in the proven entries');
  }
  const facts = single('erasure-act');
  if (!facts) fail('the certificate does not show the erasure where it is checked');
  const act = shownData(facts, 'act');
  const acts = [...proven.entries()].filter(([, p]) => ERASURE_KINDS.includes(p.entry.kind));
  if (act === null) {
    if (acts.length) fail(`entry ${acts[acts.length - 1][0]} is the erasure, but the page names none`);
    // The page's fixed wording for an erasure the listed entries do not record; "not among
    // the listed entries" only where the page says its list is cut.
    const claimed = textMismatch(facts, {
      tenant: section.dataset.tenant,
      by: single('entries-cut') ? NOT_LISTED : NOT_LOGGED,
      count: NO_COUNT,
    }, checked);
    if (claimed) fail(`the certificate names no erasure entry, yet shows another ${claimed}`);
    return;
  }
  const [lastIndex, last] = acts.length ? acts[acts.length - 1] : [null, null];
  if (act === undefined || typeof act !== 'object' || act.index !== lastIndex) {
    fail('the erasure entry the certificate names is not the last erasure entry proven');
  }
  const differing = differences(act, { ...last.entry, index: lastIndex }, ['index', ...ACT_SHOWN]);
  if (differing.length) {
    fail(`the erasure entry shown differs from the proven one in ${differing.join(', ')}`);
  }
  const count = last.entry.count;
  const wrongText = textMismatch(facts, {
    tenant: section.dataset.tenant,
    index: lastIndex,
    kind: last.entry.kind,
    leaf_hash: last.leafHex,
    by: BY_WORDS[last.entry.kind],
    count: count === undefined || count === null ? NO_COUNT : String(count),
  }, checked);
  if (wrongText) {
    fail(`the certificate says of the erasure entry what the proven entry does not (${
      wrongText})`);
  }
}

async function check(body, progress) {
  const { verifierKey, own } = pinnedOr(pinned, body.verifier_key);
  const items = Array.isArray(body.entries) ? body.entries : [];
  const proven = new Map();
  let checkpoint = null;
  let note = null;
  let twice = false;
  for (const [number, item] of items.entries()) {
    progress(`Checking entry ${number + 1} of ${items.length}…`);
    const receipt = item && item.receipt;
    const checked = await verifyReceipt({ entryText: item && item.entry_text, receipt, verifierKey });
    const index = receipt && receipt.leaf_index;
    if (!checked.ok) return { ok: false, text: `Not verified: entry ${index}: ${checked.reason}` };
    // One signed note for all: receipts against different checkpoints would each verify, yet
    // the page's "in the log of size S" would name only one of them.
    if (note !== null && receipt.checkpoint !== note) {
      return { ok: false, text: `Not verified: entry ${index} is proven against another checkpoint` };
    }
    note = receipt.checkpoint;
    checkpoint = checked.checkpoint;
    let entry;
    try {
      entry = JSON.parse(item.entry_text);
    } catch (error) {
      return { ok: false, text: `Not verified: entry ${index} is not JSON` };
    }
    if (entry === null || typeof entry !== 'object') {
      return { ok: false, text: `Not verified: entry ${index} is not a JSON object` };
    }
    twice = twice || proven.has(index);
    proven.set(index, { entry, receipt, leafHex: checked.leafHex });
  }
  const reference = section.dataset.reference;
  try {
    if (twice) fail('the server proved an entry twice');
    const listed = shownData(section, 'indices');
    sameEntries(listed, proven);
    // An empty list proves nothing: no success to report.
    if (listed.length === 0) {
      return { ok: false, text: 'Nothing to verify: this page lists no entries' };
    }
    for (const [index, { entry }] of proven) {
      // An array only: `.includes` on a string would accept any substring of it.
      if (!Array.isArray(entry.subject_refs) || !entry.subject_refs.includes(reference)) {
        fail(`entry ${index} does not carry this subject's reference`);
      }
      if (entry.tenant !== section.dataset.tenant) fail(`entry ${index} is another tenant's`);
    }
    const shownRefs = document.querySelectorAll('.shown-ref');
    if (shownRefs.length !== 1 || !readsAsShown(shownRefs[0])
        || shownRefs[0].textContent.trim() !== reference) {
      fail('the keyed reference shown is not the one the entries were checked for');
    }
    // Which page this is comes from its address, which the server does not choose: a
    // certificate that left out its erasure section would otherwise be read as a report.
    const certificate = /^\/console\/erasures\/[^/]+$/.test(window.location.pathname);
    const checked = new Set();
    checkRows(
      proven,
      certificate ? ERASURE_ROW : SUBJECT_ROW,
      certificate ? ERASURE_FACTS : SUBJECT_FACTS,
      checked,
    );
    if (certificate) checkCertificate(proven, note, checked);
    else if (document.querySelectorAll('#erasure-act').length) fail('a report names an erasure');
    if (!allFactsChecked(checked)) {
      fail('the page shows a fact outside the places this check compares');
    }
  } catch (error) {
    if (error instanceof Mismatch) return { ok: false, text: `Not verified: ${error.message}` };
    throw error;
  }
  const where = checkpoint
    ? ` in the log of size ${checkpoint.size}, signed at ${checkpoint.time}` : '';
  return {
    ok: true,
    text: `Verified: all ${proven.size} entries listed carry this subject's reference, say what`
      + ` the page shows of them and are${where} by ${await keyName(verifierKey)}`
      + `${own ? ' (your pinned key)' : ''}`,
  };
}

if (section && button && result && pinned) {
  offerCheck({ button, result, url: section.dataset.receiptsUrl, check });
}
