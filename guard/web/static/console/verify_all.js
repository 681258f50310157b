// "Verify every entry" on a subject's report and an erasure certificate: fetch the receipts of
// the entries the page lists, check each in this browser with verify.js (the server is the
// party being checked), and check that the proven entries are exactly the ones listed and each
// carries the subject's keyed reference shown on the page. A pasted key (pinned out of band)
// is used instead of the server's.

import { verifyReceipt } from './verify.js';
import { keyName, offerCheck, pinnedOr } from './checking.js';

const section = document.getElementById('verify-all');
const button = document.getElementById('verify-all-button');
const result = document.getElementById('verify-all-result');
const pinned = document.getElementById('verify-all-key');

// Why the proven entries do not match the page, or null when they do.
function mismatch(listed, proven, reference) {
  const shown = new Set(listed);
  const seen = new Set(proven.map((p) => p.index));
  if (seen.size !== proven.length) return 'the server proved an entry twice';
  for (const index of shown) {
    if (!seen.has(index)) return `entry ${index} is listed but was not proven`;
  }
  for (const { index, entry } of proven) {
    if (!shown.has(index)) return `entry ${index} was proven but is not listed`;
    if (!(entry.subject_refs || []).includes(reference)) {
      return `entry ${index} does not carry this subject's reference`;
    }
  }
  return null;
}

async function check(body, progress) {
  const { verifierKey, own } = pinnedOr(pinned, body.verifier_key);
  const proven = [];
  let checkpoint = null;
  for (const [number, item] of body.entries.entries()) {
    progress(`Checking entry ${number + 1} of ${body.entries.length}…`);
    const checked = await verifyReceipt({
      entryText: item.entry_text, receipt: item.receipt, verifierKey,
    });
    if (!checked.ok) {
      return { ok: false, text: `Not verified: entry ${item.receipt.leaf_index}: ${checked.reason}` };
    }
    checkpoint = checked.checkpoint;
    proven.push({ index: item.receipt.leaf_index, entry: JSON.parse(item.entry_text) });
  }
  const wrong = mismatch(JSON.parse(section.dataset.indices), proven, section.dataset.reference);
  if (wrong) return { ok: false, text: `Not verified: ${wrong}` };
  const where = checkpoint
    ? ` in the log of size ${checkpoint.size}, signed at ${checkpoint.time}` : '';
  return {
    ok: true,
    text: `Verified: all ${proven.length} entries listed carry this subject's reference and are`
      + `${where} by ${await keyName(verifierKey)}${own ? ' (your pinned key)' : ''}`,
  };
}

if (section && button && result && pinned) {
  offerCheck({ button, result, url: section.dataset.receiptsUrl, check });
}
