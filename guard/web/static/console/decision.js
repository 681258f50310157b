// The decision page's "Verify inclusion": fetch the receipt, check it in this browser with
// verify.js (the server is the party being checked, so the maths runs here), then check that
// the entry the receipt proves is the decision this page shows: the page carries the entry it
// was rendered from (data-shown), and every member of it must equal the proven entry's, so a
// server cannot prove one entry and show another's reasons, requester, policy or faces.
// A key pasted into the page (pinned out of band) is used instead of the server's.

import { verifyReceipt } from './verify.js';
import { keyName, offerCheck, pinnedOr } from './checking.js';

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

const refused = (why) => ({ ok: false, text: `Not verified: ${why}` });

async function check(body) {
  const { verifierKey, own } = pinnedOr(pinned, body.verifier_key);
  const checked = await verifyReceipt({
    entryText: body.entry_text, receipt: body.receipt, verifierKey,
  });
  if (!checked.ok) return refused(checked.reason);
  let entry;
  try {
    entry = JSON.parse(body.entry_text);
  } catch (error) {
    return refused('the entry is not JSON');
  }
  if (entry.decision_id !== section.dataset.decisionId) {
    return refused(`the proven entry is decision ${entry.decision_id}, not this one`);
  }
  if (entry.verdict !== section.dataset.verdict) {
    return refused(`the proven entry's verdict is ${entry.verdict}, not the one shown`);
  }
  const differing = differences(JSON.parse(section.dataset.shown), entry);
  if (differing.length) {
    return refused(`the proven entry differs from this page in ${differing.join(', ')}`);
  }
  const index = body.receipt.leaf_index;
  if (String(index) !== section.dataset.index) {
    return refused(`the receipt proves entry ${index}, not entry ${section.dataset.index} shown here`);
  }
  return {
    ok: true,
    text: `Verified: entry ${index} is in the log of size ${checked.checkpoint.size} `
      + `signed by ${await keyName(verifierKey)}${own ? ' (your pinned key)' : ''} `
      + `at ${checked.checkpoint.time}`,
  };
}

if (section && button && result && pinned) {
  offerCheck({ button, result, url: section.dataset.receiptUrl, check });
}
