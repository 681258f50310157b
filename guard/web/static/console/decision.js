// The decision page's "Verify inclusion": fetch the receipt, check it in this browser with
// verify.js (the server is the party being checked, so the maths runs here), then check that
// the entry the receipt proves is the decision this page shows: the page carries the entry it
// was rendered from (data-shown), and every member of it must equal the proven entry's; and
// every fact the page displays (data-fact: verdict, reasons, operation, time, policy, faces,
// ...) must be the proven entry's, with the names this script requires held here, not taken
// from the page. So a server cannot prove one entry and show another's reasons, requester,
// policy or faces, in its data or in its text. The same for the Release section (each release
// entry proven too) and the Audit receipts table (leaf hashes and the checkpoint size), all
// against one signed checkpoint. On success the answer states the key facts from the proof.
// A key pasted into the page (pinned out of band) is used instead of the server's.

import { verifyReceipt } from './verify.js';
import {
  allFactsChecked, bodyRows, differences, keyName, leafIndex, offerCheck, optional, pinnedOr,
  shownData, single, textMismatch, verdictWords,
} from './checking.js';

// One of each (see single): the data read, the key used and the answer written are the ones
// the auditor sees.
const section = single('verify-inclusion');
const button = single('verify-button');
const result = single('verify-result');
const pinned = single('pinned-key');

// The release entry members the Release section shows (decision.py's RELEASE_SHOWN).
const RELEASE_SHOWN = ['decision_id', 'output_sha256', 'watermark_record_id', 'manifest_label'];

// The words the page gives each reason code and face kind (decision.py's REASON_WORDS and
// KIND_WORDS, tied by a unit test): the words are compared too, not only the codes.
const REASON_WORDS = {
  public_figure: 'a face is a public figure on the blocklist',
  no_consent: 'no consent on record for a face',
  consent_expired: 'the consent had expired',
  consent_not_yet_valid: 'the consent was not yet in force',
  consent_revoked: 'the consent was revoked',
  scope_not_granted: 'the consent does not cover this operation',
  consent_not_confirmed: 'the person had not confirmed the consent themselves',
  operation_not_permitted: 'the policy does not permit this operation',
  prompt_names_public_figure: 'the prompt names a public figure',
  output_public_figure: 'a public figure appeared in the output',
  identity_drift: 'the edited face is no longer the consented person',
  nsfw_real_person: 'explicit output of a real person',
  unavailable: 'the guard could not decide (a store was unavailable), so it refused',
  consent_granted: 'the person consented to this use',
  public_figure_own_consent: 'a public figure consented through a verified link',
  unknown_face_allowed: 'the policy allows faces nobody enrolled',
  no_faces: 'no faces in the image',
  identity_preserved: 'the edited face is still the consented person',
  allowed_by_policy: 'the policy allows it',
  new_face_in_output: 'a new face appeared in the output (noted)',
  unreadable_face: 'a face was too small or blurred to read (noted)',
};
const KIND_WORDS = {
  consented_subject: 'consented person',
  public_figure: 'public figure',
  unknown: 'unknown face',
};

// The words the page prints beside a stage code (decision.html's).
const STAGE_WORDS = {
  input: 'before the edit',
  output: 'scan of the output',
};
// The sentence the Faces section prints instead of a table: decision.py's NOT_RECORDED when the
// entry recorded no positions, this when it recorded none found (decision.html's).
const NOT_RECORDED = 'Face positions were not recorded for this decision.';
const NO_FACES = 'No faces were found in this image.';

// decision.py's _stage_words: a string stage only (hasOwn would read ['input'] as 'input').
const stageWords = (stage) => (typeof stage === 'string' && Object.hasOwn(STAGE_WORDS, stage)
  ? STAGE_WORDS[stage] : null);

// Python's _texts: the strings of a list member, nothing for anything else.
const texts = (value) => (Array.isArray(value) ? value.filter((v) => typeof v === 'string') : []);
const reasonWords = (code) => (Object.hasOwn(REASON_WORDS, code)
  ? REASON_WORDS[code] : code.replaceAll('_', ' '));
const member = (object, key) => (object !== null && typeof object === 'object'
  && !Array.isArray(object) && Object.hasOwn(object, key) ? object[key] : null);

// The faces as decision.py's outline_of reads them: null when the entry recorded no positions
// in the form it draws (the page then says they were not recorded), else each as recorded.
function placedFaces(entry) {
  const { image, faces } = entry;
  const number = (v) => typeof v === 'number' && Number.isFinite(v);
  if (!Array.isArray(image) || image.length !== 2 || !image.every(number)
      || !Array.isArray(faces)) return null;
  const readable = faces.every((face) => Array.isArray(member(face, 'box'))
    && face.box.length === 4 && face.box.every(number));
  return readable ? faces : null;
}

// The faces the page's table lists: none when it shows a sentence instead.
const shownFaces = (entry) => placedFaces(entry) || [];

// The sentence the Faces section prints in place of a table, as decision.html chooses it.
function facesNote(entry) {
  const faces = placedFaces(entry);
  if (faces === null) return NOT_RECORDED;
  return faces.length ? null : NO_FACES;
}

// Every fact the decision page displays, as the proven entry states it: the names are this
// script's fixed list (see textMismatch), one value each or a list for what repeats.
function decisionFacts(entry, index) {
  const codes = texts(entry.reason_codes);
  return {
    verdict_words: verdictWords(entry.verdict),
    verdict: entry.verdict,
    reason_code: codes,
    reason_words: codes.map(reasonWords),
    operation: entry.operation,
    stage: entry.stage,
    stage_words: optional(stageWords(entry.stage)),
    time: entry.time,
    tenant: entry.tenant,
    policy_id: member(entry.policy, 'id'),
    policy_version: member(entry.policy, 'version'),
    condition: texts(entry.conditions),
    consent_level: texts(entry.consent_levels),
    input_sha256: entry.input_sha256 || 'no input image',
    index,
  };
}

// One row of the faces table, as the proven entry records the face.
function faceRow(face, at) {
  const kind = String(member(face, 'kind') ?? '');
  return {
    face_number: at + 1,
    face_kind: kind,
    face_taken_for: Object.hasOwn(KIND_WORDS, kind) ? KIND_WORDS[kind] : kind,
    face_verdict: String(member(face, 'verdict') ?? ''),
    face_box: face.box.map((v) => String(Math.trunc(v))).join(', '),
  };
}

// The Faces section as the proven entry records the faces: the table's facts in order, or the
// sentence that stands in for it.
function faceFacts(entry) {
  const rows = shownFaces(entry).map(faceRow);
  const column = (name) => rows.map((row) => row[name]);
  return {
    face_number: column('face_number'),
    face_kind: column('face_kind'),
    face_taken_for: column('face_taken_for'),
    face_verdict: column('face_verdict'),
    face_box: column('face_box'),
    faces_note: optional(facesNote(entry)),
  };
}

// The faces table row by row, each row with its own face's facts: a row that carries no
// data-fact (or another face's) would otherwise add a face the columns do not count.
function checkFaceRows(faces, entry, checked) {
  const table = faces.querySelector('table');
  const shown = shownFaces(entry);
  const rows = table === null ? [] : bodyRows(table);
  if (rows === null || faces.querySelectorAll('table').length > 1
      || rows.length !== shown.length) {
    fail('the faces table does not list the proven entry\'s faces, one row each');
  }
  rows.forEach((row, at) => {
    const wrong = textMismatch(row, faceRow(shown[at], at), checked);
    if (wrong) fail(`the faces table shows another ${wrong} than the proven entry`);
  });
}

// The decision the page's address names (/console/decisions/<id>): the server chooses the
// page's content, not which address the auditor opened.
function addressedDecision() {
  const found = /^\/console\/decisions\/([^/]+)$/.exec(window.location.pathname);
  if (!found) return null;
  try {
    return decodeURIComponent(found[1]);
  } catch (error) {
    return null;
  }
}

// What the answer says the proof states: read from the proven entry, not from the page, so
// the auditor reads the key facts from the proof itself.
function provenSummary(entry) {
  const codes = texts(entry.reason_codes);
  return `the proven entry says decision ${entry.decision_id}: ${entry.verdict}`
    + ` (${codes.length ? codes.join(', ') : 'no reason codes'}), operation ${entry.operation},`
    + ` policy ${member(entry.policy, 'id')} version ${member(entry.policy, 'version')},`
    + ` time ${entry.time}`;
}

class Mismatch extends Error {}
const fail = (why) => { throw new Mismatch(why); };
const refused = (why) => ({ ok: false, text: `Not verified: ${why}` });

// An element's data-index, read strictly (see leafIndex).
function indexOf(element) {
  const index = leafIndex(element.dataset.index);
  return index === null ? fail(`the page shows an unreadable index ${element.dataset.index}`) : index;
}

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
function checkReleases(releases, decision, checked) {
  const shown = [...document.querySelectorAll('.release')];
  if (shown.some((block) => block.dataset.index === undefined)) {
    fail('the page shows a release entry without its index');
  }
  const proven = new Map(releases.map((r) => [r.index, r]));
  if (proven.size !== releases.length) fail('the server proved a release entry twice');
  if (shown.length !== proven.size) {
    fail(`the page shows ${shown.length} release entries, the server proved ${proven.size}`);
  }
  for (const block of shown) {
    const found = proven.get(indexOf(block));
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
    const wrong = textMismatch(block, {
      index,
      output_sha256: entry.output_sha256,
      watermark_record_id: entry.watermark_record_id,
      manifest_label: entry.manifest_label,
    }, checked);
    if (wrong) fail(`release entry ${index} shows another ${wrong} than the proven entry`);
  }
}

// The Audit receipts table: one row per proven entry, with its verified leaf hash and the
// size of the checkpoint everything was proven against.
function checkReceiptsTable(all, size, checked) {
  const table = single('audit-receipts');
  const rows = table === null ? null : bodyRows(table);
  if (rows === null || document.querySelectorAll('.receipt-row').length !== rows.length
      || rows.some((row) => !row.matches('.receipt-row[data-index]'))) {
    fail('the receipts table has a row that is not an entry\'s receipt');
  }
  const proven = new Map(all.map((p) => [p.index, p]));
  if (rows.length !== proven.size) fail('the receipts table does not list the proven entries');
  for (const row of rows) {
    const found = proven.get(indexOf(row));
    if (!found) fail(`the receipts table lists entry ${row.dataset.index}, which was not proven`);
    const wrong = textMismatch(row, {
      index: found.index, kind: found.entry.kind, leaf_hash: found.leafHex, size,
    }, checked);
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
    if (entry.decision_id !== addressedDecision()) {
      fail('the proven entry is another decision than the one this page\'s address names');
    }
    // The heading: one decision id, in the page's one h1, which says nothing else.
    const shownId = single('shown-decision-id');
    const headings = document.querySelectorAll('h1');
    const checked = new Set();
    if (!shownId || headings.length !== 1 || shownId.parentElement !== headings[0]
        || textMismatch(headings[0], { decision_id: entry.decision_id }, checked)
        || headings[0].textContent.trim() !== `Decision ${entry.decision_id}`) {
      fail('the page\'s heading names another decision than the proven entry');
    }
    const facts = single('decision-facts');
    const faces = single('faces');
    if (!facts || !faces) fail('the page does not show the decision\'s facts where they are checked');
    const wrong = textMismatch(facts, decisionFacts(entry, index), checked);
    if (wrong) fail(`the page shows another ${wrong} than the proven entry`);
    const wrongFace = textMismatch(faces, faceFacts(entry), checked);
    if (wrongFace) fail(`the faces table shows another ${wrongFace} than the proven entry`);
    checkFaceRows(faces, entry, checked);
    const size = decision.checked.checkpoint.size;
    checkReleases(releases, entry, checked);
    checkReceiptsTable([decision, ...releases], size, checked);
    if (!allFactsChecked(checked)) {
      fail('the page shows a fact outside the places this check compares');
    }
  } catch (error) {
    if (error instanceof Mismatch) return refused(error.message);
    throw error;
  }
  const { checkpoint } = decision.checked;
  return {
    ok: true,
    text: `Verified: entry ${decision.index} is in the log of size ${checkpoint.size} `
      + `signed by ${await keyName(verifierKey)}${own ? ' (your pinned key)' : ''} `
      + `at ${checkpoint.time}; ${provenSummary(decision.entry)}`,
  };
}

if (section && button && result && pinned) {
  offerCheck({ button, result, url: section.dataset.receiptUrl, check });
}
