// Decode and verify EU DCCs with dcc-utils (npm), an implementation HoSo did not write.
// stdin: {"certificate": "<DSC PEM>", "items": [{"hc1": "HC1:..."} | {"image": "/path/qr.png"}]}
// stdout: one JSON array, per item {"ok": true, "payload": {...}, "kid": "<base64>"} or {"ok": false, "error": "..."}
// dcc-utils inflates with Node's zlib, decodes the COSE_Sign1 with cbor and verifies it with cose-js against
// the certificate's public key (jsrsasign); fromImage reads the QR code itself (jimp + jsQR).
'use strict';
const { DCC } = require('dcc-utils');

async function check(item, certificate) {
  try {
    const dcc = item.image ? await DCC.fromImage(item.image) : await DCC.fromRaw(item.hc1);
    // cose-js resolves with the payload when the signature verifies and throws when it does not.
    const verified = await dcc.checkSignatureWithCertificate(certificate);
    if (!verified) return { ok: false, error: 'signature not verified' };
    return { ok: true, payload: dcc.payload, kid: dcc.kid, raw: dcc.raw };
  } catch (error) {
    return { ok: false, error: String(error && error.message ? error.message : error) };
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const results = [];
  for (const item of request.items) results.push(await check(item, request.certificate));
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(2);
});
