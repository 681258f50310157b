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
  differences, keyName, leafIndex, offerCheck, optional, pinnedOr, shownData, textMismatch,
  verdictWords,
} from './checking.js';

const section = document.getElementById('verify-all');
const button = document.getElementById('verify-all-button');
const result = document.getElementById('verify-all-result');
const pinned = document.getElementById('verify-all-key');

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

// The rows of the page's table: each shows the members of its proven entry it claims to.
function checkRows(proven, members, facts) {
  const rows = document.querySelectorAll('[data-verify-rows] tr[data-index]');
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
    const wrongText = textMismatch(row, facts(index, found));
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
function checkCertificate(proven, note) {
  const printed = document.getElementById('checkpoint-note');
  if (printed.textContent !== note) {
    fail('the checkpoint printed on the certificate is not the one the entries were proven against');
  }
  for (const card of document.querySelectorAll('.proof[data-index]')) {
    const index = indexOf(card);
    const found = proven.get(index);
    if (!found) fail(`the certificate prints a proof of entry ${card.dataset.index}, not proven`);
    const wrong = textMismatch(card, {
      entry: index,
      kind: found.entry.kind,
      index,
      leaf_hash: found.leafHex,
      step: found.receipt.inclusion_proof,
    });
    if (wrong) {
      fail(`the certificate's printed proof of entry ${index} is not the one that verified (${
        wrong})`);
    }
  }
  if (document.querySelectorAll('.proof[data-index]').length !== proven.size) {
    fail('the certificate does not print one proof per listed entry');
  }
  const refs = [...new Set([...proven.values()].flatMap(({ entry }) => (
    Array.isArray(entry.grant_refs) ? entry.grant_refs.map(String) : [])))].sort();
  const shownRefs = [...document.querySelectorAll('#grant-refs li')].map((li) => li.textContent);
  if (shownRefs.join('\n') !== refs.join('\n')) {
    fail('the grant references shown are not those in the proven entries');
  }
  const facts = document.getElementById('erasure-act');
  const act = shownData(facts, 'act');
  const acts = [...proven.entries()].filter(([, p]) => ERASURE_KINDS.includes(p.entry.kind));
  if (act === null) {
    if (acts.length) fail(`entry ${acts[acts.length - 1][0]} is the erasure, but the page names none`);
    const claimed = textMismatch(facts, {});
    if (claimed) fail(`the certificate names no erasure entry, yet shows its ${claimed}`);
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
    index: lastIndex,
    kind: last.entry.kind,
    leaf_hash: last.leafHex,
    by: BY_WORDS[last.entry.kind],
    count: count === undefined || count === null ? 'not recorded' : String(count),
  });
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
    sameEntries(shownData(section, 'indices'), proven);
    for (const [index, { entry }] of proven) {
      // An array only: `.includes` on a string would accept any substring of it.
      if (!Array.isArray(entry.subject_refs) || !entry.subject_refs.includes(reference)) {
        fail(`entry ${index} does not carry this subject's reference`);
      }
      if (entry.tenant !== section.dataset.tenant) fail(`entry ${index} is another tenant's`);
    }
    for (const shown of document.querySelectorAll('.shown-ref')) {
      if (shown.textContent.trim() !== reference) {
        fail('the keyed reference shown is not the one the entries were checked for');
      }
    }
    const certificate = document.getElementById('erasure-act') !== null;
    checkRows(
      proven,
      certificate ? ERASURE_ROW : SUBJECT_ROW,
      certificate ? ERASURE_FACTS : SUBJECT_FACTS,
    );
    if (certificate) checkCertificate(proven, note);
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
