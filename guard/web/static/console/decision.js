// The decision page's "Verify inclusion": fetch the receipt, check it in this browser with
// verify.js (the server is the party being checked, so the maths runs here), then check that
// the entry the receipt proves is the decision this page shows: the page carries the entry it
// was rendered from (data-shown), and every member of it must equal the proven entry's, so a
// server cannot prove one entry and show another's reasons, requester, policy or faces. The
// same for the Release section (each release entry proven too) and the Audit receipts table
// (leaf hashes and the checkpoint size), all against one signed checkpoint.
// A key pasted into the page (pinned out of band) is used instead of the server's.

import { verifyReceipt } from './verify.js';
import {
  differences, keyName, offerCheck, pinnedOr, shownData, textMismatch,
} from './checking.js';

const section = document.getElementById('verify-inclusion');
const button = document.getElementById('verify-button');
const result = document.getElementById('verify-result');
const pinned = document.getElementById('pinned-key');

// The release entry members the Release section shows (decision.py's RELEASE_SHOWN).
const RELEASE_SHOWN = ['decision_id', 'output_sha256', 'watermark_record_id', 'manifest_label'];

class Mismatch extends Error {}
const fail = (why) => { throw new Mismatch(why); };
const refused = (why) => ({ ok: false, text: `Not verified: ${why}` });

// One receipt checked in this browser and its entry parsed: {index, entry, leafHex, checked}.
async function prove(item, verifierKey, what) {
  const receipt = item && item.receipt;
  const checked = await verifyReceipt({ entryText: item && item.entry_text, receipt, verifierKey });
  if (!checked.ok) fail(`${what}: ${checked.reason}`);
  let entry;
  try {
    entry = JSON.parse(item.entry_text);
  } catch (error) {
    fail(`${what} is not JSON`);
  }
  if (entry === null || typeof entry !== 'object') fail(`${what} is not a JSON object`);
  return { index: receipt.leaf_index, entry, leafHex: checked.leafHex, checked };
}

// The Release section: exactly the proven release entries, each of this decision, each
// showing what its proven entry says.
function checkReleases(releases, decision) {
  const shown = [...document.querySelectorAll('.release[data-index]')];
  const proven = new Map(releases.map((r) => [r.index, r]));
  if (proven.size !== releases.length) fail('the server proved a release entry twice');
  if (shown.length !== proven.size) {
    fail(`the page shows ${shown.length} release entries, the server proved ${proven.size}`);
  }
  for (const block of shown) {
    const found = proven.get(Number(block.dataset.index));
    if (!found) fail(`release entry ${block.dataset.index} is shown but was not proven`);
    const { index, entry } = found;
    if (entry.kind !== 'release') fail(`entry ${index} is not a release entry`);
    if (entry.decision_id !== decision.decision_id) {
      fail(`release entry ${index} releases decision ${entry.decision_id}, not this one`);
    }
    if (entry.tenant !== decision.tenant) fail(`release entry ${index} is another tenant's`);
    const facts = shownData(block, 'shown');
    if (facts === null || typeof facts !== 'object') {
      fail(`the page's release entry ${index} does not say what it shows`);
    }
    const differing = differences(facts, entry, RELEASE_SHOWN);
    if (differing.length) {
      fail(`release entry ${index} differs from this page in ${differing.join(', ')}`);
    }
    const wrong = textMismatch(block, { ...entry, index });
    if (wrong) fail(`release entry ${index} shows another ${wrong} than the proven entry`);
  }
}

// The Audit receipts table: one row per proven entry, with its verified leaf hash and the
// size of the checkpoint everything was proven against.
function checkReceiptsTable(all, size) {
  const rows = [...document.querySelectorAll('.receipt-row[data-index]')];
  const proven = new Map(all.map((p) => [p.index, p]));
  if (rows.length !== proven.size) fail('the receipts table does not list the proven entries');
  for (const row of rows) {
    const found = proven.get(Number(row.dataset.index));
    if (!found) fail(`the receipts table lists entry ${row.dataset.index}, which was not proven`);
    const wrong = textMismatch(row, {
      index: found.index, kind: found.entry.kind, leaf_hash: found.leafHex, size,
    });
    if (wrong) fail(`the receipts table shows another ${wrong} for entry ${found.index}`);
  }
}

async function check(body) {
  const { verifierKey, own } = pinnedOr(pinned, body.verifier_key);
  let decision;
  try {
    decision = await prove(body, verifierKey, 'the decision\'s entry');
    const releases = [];
    for (const item of Array.isArray(body.releases) ? body.releases : fail('no release list')) {
      const release = await prove(item, verifierKey, `release entry ${item?.receipt?.leaf_index}`);
      // One signed note for everything on the page: a receipt against another checkpoint
      // would verify on its own, yet not be the tree the page's table names.
      if (item.receipt.checkpoint !== body.receipt.checkpoint) {
        fail(`release entry ${release.index} is proven against another checkpoint`);
      }
      releases.push(release);
    }
    const { entry, index } = decision;
    if (entry.decision_id !== section.dataset.decisionId) {
      fail(`the proven entry is decision ${entry.decision_id}, not this one`);
    }
    if (entry.verdict !== section.dataset.verdict) {
      fail(`the proven entry's verdict is ${entry.verdict}, not the one shown`);
    }
    const differing = differences(JSON.parse(section.dataset.shown), entry);
    if (differing.length) fail(`the proven entry differs from this page in ${differing.join(', ')}`);
    if (String(index) !== section.dataset.index) {
      fail(`the receipt proves entry ${index}, not entry ${section.dataset.index} shown here`);
    }
    const size = decision.checked.checkpoint.size;
    checkReleases(releases, entry);
    checkReceiptsTable([decision, ...releases], size);
  } catch (error) {
    if (error instanceof Mismatch) return refused(error.message);
    throw error;
  }
  const { checkpoint } = decision.checked;
  return {
    ok: true,
    text: `Verified: entry ${decision.index} is in the log of size ${checkpoint.size} `
      + `signed by ${await keyName(verifierKey)}${own ? ' (your pinned key)' : ''} `
      + `at ${checkpoint.time}`,
  };
}

if (section && button && result && pinned) {
  offerCheck({ button, result, url: section.dataset.receiptUrl, check });
}
