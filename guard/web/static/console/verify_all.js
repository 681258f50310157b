// "Verify every entry" on a subject's report and an erasure certificate: fetch the receipts of
// the entries the page lists, check each in this browser with verify.js (the server is the
// party being checked), and check that the proven entries are exactly the ones listed and each
// carries the subject's keyed reference shown on the page. A pasted key (pinned out of band)
// is used instead of the server's.

import { parseVerifierKey, verifyReceipt } from './verify.js';

const section = document.getElementById('verify-all');
const button = document.getElementById('verify-all-button');
const result = document.getElementById('verify-all-result');
const pinned = document.getElementById('verify-all-key');

function show(ok, text) {
  result.textContent = text;
  result.className = ok ? 'notice' : 'problem';
}

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

async function verifyAll() {
  button.disabled = true;
  result.className = '';
  result.textContent = 'Checking…';
  try {
    const response = await fetch(section.dataset.receiptsUrl, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
    if (!response.ok) {
      show(false, `Not verified: the receipts could not be fetched (HTTP ${response.status})`);
      return;
    }
    const body = await response.json();
    const own = pinned.value.trim();
    const verifierKey = own || body.verifier_key;
    const proven = [];
    let checkpoint = null;
    for (const [number, item] of body.entries.entries()) {
      result.textContent = `Checking entry ${number + 1} of ${body.entries.length}…`;
      const checked = await verifyReceipt({
        entryText: item.entry_text, receipt: item.receipt, verifierKey,
      });
      if (!checked.ok) {
        show(false, `Not verified: entry ${item.receipt.leaf_index}: ${checked.reason}`);
        return;
      }
      checkpoint = checked.checkpoint;
      proven.push({ index: item.receipt.leaf_index, entry: JSON.parse(item.entry_text) });
    }
    const listed = JSON.parse(section.dataset.indices);
    const wrong = mismatch(listed, proven, section.dataset.reference);
    if (wrong) {
      show(false, `Not verified: ${wrong}`);
      return;
    }
    let name = 'an unreadable key';
    try {
      name = (await parseVerifierKey(verifierKey)).name;
    } catch (error) {
      // verifyReceipt accepted the key, so it parses; kept for a clear message all the same
    }
    const where = checkpoint ? ` in the log of size ${checkpoint.size}, signed at ${checkpoint.time}` : '';
    show(true, `Verified: all ${proven.length} entries listed carry this subject's reference and are${where} `
      + `by ${name}${own ? ' (your pinned key)' : ''}`);
  } catch (error) {
    show(false, `Not verified: ${error.message || error}`);
  } finally {
    button.disabled = false;
  }
}

if (section && button && result && pinned) {
  button.hidden = false;
  button.addEventListener('click', verifyAll);
}
