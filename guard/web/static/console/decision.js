// The decision page's "Verify inclusion": fetch the receipt, check it in this browser with
// verify.js (the server is the party being checked, so the maths runs here), then check that
// the entry the receipt proves is the decision this page shows, with the verdict it shows.
// A key pasted into the page (pinned out of band) is used instead of the server's.

import { parseVerifierKey, verifyReceipt } from './verify.js';

const section = document.getElementById('verify-inclusion');
const button = document.getElementById('verify-button');
const result = document.getElementById('verify-result');
const pinned = document.getElementById('pinned-key');

function show(ok, text) {
  result.textContent = text;
  result.className = ok ? 'notice' : 'problem';
}

async function keyName(vkey) {
  try {
    return (await parseVerifierKey(vkey)).name;
  } catch (error) {
    return 'an unreadable key';
  }
}

async function verify() {
  button.disabled = true;
  result.className = '';
  result.textContent = 'Checking…';
  try {
    const response = await fetch(section.dataset.receiptUrl, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
    if (!response.ok) {
      show(false, `Not verified: the receipt could not be fetched (HTTP ${response.status})`);
      return;
    }
    const body = await response.json();
    const own = pinned.value.trim();
    const verifierKey = own || body.verifier_key;
    const checked = await verifyReceipt({
      entryText: body.entry_text, receipt: body.receipt, verifierKey,
    });
    if (!checked.ok) {
      show(false, `Not verified: ${checked.reason}`);
      return;
    }
    let entry;
    try {
      entry = JSON.parse(body.entry_text);
    } catch (error) {
      show(false, 'Not verified: the entry is not JSON');
      return;
    }
    if (entry.decision_id !== section.dataset.decisionId) {
      show(false, `Not verified: the proven entry is decision ${entry.decision_id}, not this one`);
      return;
    }
    if (entry.verdict !== section.dataset.verdict) {
      show(false, `Not verified: the proven entry's verdict is ${entry.verdict}, not the one shown`);
      return;
    }
    const name = await keyName(verifierKey);
    const index = body.receipt.leaf_index;
    show(true, `Verified: entry ${index} is in the log of size ${checked.checkpoint.size} `
      + `signed by ${name}${own ? ' (your pinned key)' : ''} at ${checked.checkpoint.time}`);
  } catch (error) {
    show(false, `Not verified: ${error.message || error}`);
  } finally {
    button.disabled = false;
  }
}

if (section && button && result && pinned) {
  button.hidden = false;
  button.addEventListener('click', verify);
}
