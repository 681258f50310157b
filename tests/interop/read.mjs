// Independent C2PA reader (c2pa-ts, pure TypeScript): prints a JSON summary of the active manifest.
import * as fs from 'node:fs/promises';
import { JPEG, PNG } from '@trustnxt/c2pa-ts/asset';
import { SuperBox } from '@trustnxt/c2pa-ts/jumbf';
import { ManifestStore, ValidationResult } from '@trustnxt/c2pa-ts/manifest';
const buf = await fs.readFile(process.argv[2]);
const asset = JPEG.canRead(buf) ? new JPEG(buf) : PNG.canRead(buf) ? new PNG(buf) : null;
if (!asset) { console.log(JSON.stringify({error: 'unsupported format'})); process.exit(2); }
const jumbf = asset.getManifestJUMBF();
if (!jumbf) { console.log(JSON.stringify({found: false})); process.exit(0); }
let result, labels = [], active;
try {
  const store = ManifestStore.read(SuperBox.fromBuffer(jumbf));
  active = store.getActiveManifest();
  labels = (active?.assertions?.assertions ?? []).map(a => a.label);
  result = await store.validate(asset);
} catch (e) { result = ValidationResult.fromError(e); }
console.log(JSON.stringify({found: true, valid: result.isValid, label: active?.label,
  assertions: labels, codes: result.statusEntries.map(s => s.code)}));
