// Verify an audit-log receipt in the browser: the compliance console's "Verify inclusion".
//
// The same checks as guard/audit/receipts.py::verify_receipt, step for step: the C2SP verifier
// key (checkpoint.py), the checkpoint's Ed25519 signed note, its body and origin, the entry's
// leaf hash and the RFC 9162 inclusion proof (merkle.py). No dependencies: WebCrypto does the
// hashing and the signature. Every failure is a plain-English reason an auditor can read, and
// verifyReceipt never throws: bad input of any shape is {ok: false, reason}.

const DASH = '\u2014'; // the em dash that starts a signed note's signature line
const LEGACY_ORIGIN = 'likeness-guard/audit/v1';
const ORIGIN_PREFIX = 'likeness-guard/';
const encoder = new TextEncoder();

// A failure whose message is meant for the auditor (anything else is a bug or a browser gap).
class Refusal extends Error {}
const refuse = (reason) => { throw new Refusal(reason); };

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// Strict decoders, as Python's bytes.fromhex and b64decode(validate=True): null when malformed.
function fromHex(text) {
  if (typeof text !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(text)) return null;
  return Uint8Array.from(text.match(/../g) || [], (pair) => parseInt(pair, 16));
}

function fromBase64(text) {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

// RFC 6962 §2.1: leaves and interior nodes are hashed with distinct prefixes.
export const leafHash = (entry) => sha256(Uint8Array.of(0), entry);
const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

// RFC 9162 §2.1.3.2. BigInt throughout: JS bitwise operators truncate to 32 bits, and a log's
// indices may not. `index` and `size` are BigInts; hashes are Uint8Arrays.
export async function rootFromInclusion(index, size, leaf, proof) {
  if (!(index >= 0n && index < size)) {
    refuse(`the receipt's leaf index ${index} is outside the checkpoint's tree of ${size} entries`);
  }
  if (![leaf, ...proof].every((h) => h.length === 32)) {
    refuse('a hash in the receipt is not 32 bytes long');
  }
  let fn = index, sn = size - 1n, r = leaf;
  for (const p of proof) {
    if (sn === 0n) refuse('the inclusion proof is too long');
    if ((fn & 1n) || fn === sn) {
      r = await nodeHash(p, r);
      while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) refuse('the inclusion proof is too short');
  return r;
}

// `<name>+<key id hex>+<base64(0x01 || Ed25519 public key)>`; the key id is the first four bytes
// of SHA-256(name || "\n" || 0x01 || key) and must match, so a mistyped key never "verifies".
export async function parseVerifierKey(vkey) {
  const text = typeof vkey === 'string' ? vkey.trim() : '';
  const first = text.indexOf('+'), second = text.indexOf('+', first + 1);
  const raw = first < 0 || second < 0 ? null : fromBase64(text.slice(second + 1));
  if (raw === null) refuse('the verifier key is not a C2SP verifier key (name+id+key)');
  const name = text.slice(0, first), keyIdHex = text.slice(first + 1, second);
  const keyId = raw.length === 33 && raw[0] === 1
    ? (await sha256(encoder.encode(name + '\n'), raw)).slice(0, 4) : null;
  if (keyId === null || toHex(keyId) !== keyIdHex) {
    refuse('the verifier key is not an Ed25519 key, or its key id does not match the key');
  }
  const publicKey = raw.slice(1);
  let cryptoKey;
  try {
    cryptoKey = await crypto.subtle.importKey(
      'raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    refuse('this browser cannot check Ed25519 signatures (its WebCrypto lacks Ed25519)');
  }
  // The log this key signs for: checkpoint.py::log_origin.
  const origin = ORIGIN_PREFIX + toHex(await sha256(publicKey)).slice(0, 16);
  return { name, keyId, publicKey, cryptoKey, origin };
}

// Python's str.splitlines, which checkpoint.py uses on the signature block.
const LINE_BREAKS = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;

// The body lines: origin, size (decimal, no leading zeros), root (base64 of 32 bytes), then
// extension lines, of which a `time <UTC>` one is required (Checkpoint.parse_body).
function parseBody(body) {
  const lines = body.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '') {
    refuse('the checkpoint body is not origin, size and root hash, one per line');
  }
  const [origin, size, root, ...extensions] = lines.slice(0, -1);
  const time = extensions.find((line) => line.startsWith('time '))?.slice(5);
  const rootBytes = fromBase64(root);
  if (!/^(?:0|[1-9][0-9]*)$/.test(size)) {
    refuse('the checkpoint\'s tree size is not a decimal number');
  }
  if (rootBytes === null || rootBytes.length !== 32) {
    refuse('the checkpoint\'s root is not a base64 SHA-256 hash');
  }
  if (time === undefined) refuse('the checkpoint has no time line');
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}Z$/.test(time) || Number.isNaN(Date.parse(time))) {
    refuse('the checkpoint\'s time is not a UTC timestamp');
  }
  return { origin, size: BigInt(size), root: rootBytes, time };
}

// CheckpointVerifier.verify: the first signature line with this key's name and key id must
// verify over the body (UTF-8, up to and including the newline before the empty line), and the
// body must name this key's log (or the legacy shared origin its early checkpoints carry).
export async function verifyCheckpoint(note, key) {
  if (typeof note !== 'string') refuse('the checkpoint is not text');
  const split = note.indexOf('\n\n');
  if (split < 0) {
    refuse('the checkpoint is not a signed note (no empty line before its signatures)');
  }
  const body = note.slice(0, split + 1);
  for (const line of note.slice(split + 2).split(LINE_BREAKS)) {
    const parts = line.split(' ');
    if (parts.length !== 3 || parts[0] !== DASH || parts[1] !== key.name) continue;
    const blob = fromBase64(parts[2]);
    if (blob === null || !equal(blob.slice(0, 4), key.keyId)) continue;
    const signature = blob.slice(4);
    const valid = signature.length === 64 &&
      await crypto.subtle.verify('Ed25519', key.cryptoKey, signature, encoder.encode(body));
    if (!valid) refuse('the checkpoint\'s signature does not verify with this key');
    const checkpoint = parseBody(body);
    if (checkpoint.origin !== key.origin && checkpoint.origin !== LEGACY_ORIGIN) {
      refuse(`the checkpoint names another log (${checkpoint.origin}), `
        + `not this key's (${key.origin})`);
    }
    return checkpoint;
  }
  return refuse(`the checkpoint carries no signature by this key (${key.name})`);
}

function receiptParts(receipt) {
  const index = receipt.leaf_index;
  if (!Number.isSafeInteger(index)) refuse('the receipt\'s leaf index is not a whole number');
  const leaf = fromHex(receipt.leaf_hash);
  const steps = receipt.inclusion_proof;
  const proof = Array.isArray(steps) ? steps.map(fromHex) : [null];
  if (leaf === null) refuse('the receipt\'s leaf hash is not hexadecimal');
  if (proof.includes(null)) {
    refuse('the receipt\'s inclusion proof is not a list of hexadecimal hashes');
  }
  return { index: BigInt(index), leaf, proof };
}

export async function verifyReceipt({ entryText, receipt, verifierKey } = {}) {
  try {
    if (receipt === null || typeof receipt !== 'object') refuse('the receipt is not an object');
    if (typeof entryText !== 'string') refuse('the entry is not text');
    const key = await parseVerifierKey(verifierKey);
    const checkpoint = await verifyCheckpoint(receipt.checkpoint, key);
    const { index, leaf, proof } = receiptParts(receipt);
    // The stored canonical JSON exactly as the server hashed it: never re-serialised here, as
    // key order, escapes and number spelling would all change the bytes.
    if (!equal(await leafHash(encoder.encode(entryText)), leaf)) {
      refuse('the entry\'s bytes do not hash to the receipt\'s leaf');
    }
    const root = await rootFromInclusion(index, checkpoint.size, leaf, proof);
    if (!equal(root, checkpoint.root)) {
      refuse('the inclusion proof does not lead to the checkpoint\'s root');
    }
    return {
      ok: true,
      reason: `entry ${index} is in the log ${checkpoint.origin} of ${checkpoint.size} entries`,
      // The leaf hash just checked against the entry's bytes: what a page's shown hash must be.
      leafHex: toHex(leaf),
      checkpoint: {
        origin: checkpoint.origin,
        size: Number(checkpoint.size), // exact below 2**53 entries
        rootHex: toHex(checkpoint.root),
        time: checkpoint.time,
      },
    };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, reason: error.message };
    return { ok: false, reason: `the receipt could not be checked: ${error}` };
  }
}
