// The decision page's "Verify inclusion": fetch the receipt, check it in this browser with
// verify.js (the server is the party being checked, so the maths runs here), then check that
// the entry the receipt proves is the decision this page shows: the page carries the entry it
// was rendered from (data-shown), and every member of it must equal the proven entry's, so a
// server cannot prove one entry and show another's reasons, requester, policy or faces.
// A key pasted into the page (pinned out of band) is used instead of the server's.

import { parseVerifierKey, verifyReceipt } from './verify.js';

const section = document.getElementById('verify-inclusion');
const button = document.getElementById('verify-button');
const result = document.getElementById('verify-result');
const pinned = document.getElementById('pinned-key');

// JSON with sorted keys: two parsed values are equal when their canonical texts are.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function differences(shown, proven) {
  const keys = new Set([...Object.keys(shown), ...Object.keys(proven)]);
  return [...keys].filter((key) => canonical(shown[key]) !== canonical(proven[key])).sort();
}

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
    const differing = differences(JSON.parse(section.dataset.shown), entry);
    if (differing.length) {
      show(false, `Not verified: the proven entry differs from this page in ${differing.join(', ')}`);
      return;
    }
    if (String(body.receipt.leaf_index) !== section.dataset.index) {
      show(false, `Not verified: the receipt proves entry ${body.receipt.leaf_index}, `
        + `not entry ${section.dataset.index} shown here`);
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
