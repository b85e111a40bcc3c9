// Verification of an HC1 text, step for step as passport/verify.py does it (same check names, same
// order, same rules), so that this page and `python -m passport verify` give the same verdict.
import { decodeBase45 } from './base45.js'
import { CborDate, Tagged, decodeLeading, errorName } from './cbor.js'
import {
  ALGORITHM_NAMES, ES256, HEADER_ALG, HEADER_KID, decodeSign1, isBytes, isMap, sigStructure
} from './cose.js'
import { inflateZlib } from './inflate.js'
import { validatePayload } from './schema.js'
import { b64encode, revocationHashes } from './trust.js'

export const PREFIX = 'HC1:'
export const MAX_TEXT = 8192
const CLAIM_ISS = 1
const CLAIM_EXP = 4
const CLAIM_IAT = 6
const CLAIM_HCERT = -260
const P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n
const MIN_RSA_BITS = 2048
const TYPES = { v: 'vaccination', t: 'test', r: 'recovery' }
export const CHECK_NAMES = ['prefix', 'base45', 'zlib', 'cose', 'algorithm', 'kid', 'signature', 'claims',
  'issued_at', 'expiry', 'dsc_validity', 'key_usage', 'schema', 'revocation']
const CURVE_NAMES = { 'P-256': 'secp256r1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }
// What Python's str.strip() removes (str.isspace), which is not quite JavaScript's trim().
const SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const STRIP = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'g')

class Report {
  constructor () {
    this.checks = []
    this.failed = false
    this.signatureOk = false
  }

  ok (name, reason) { this.checks.push({ name, status: 'ok', reason }) }
  fail (name, reason) { this.failed = true; this.checks.push({ name, status: 'failed', reason }) }
  skip (name, reason) { this.checks.push({ name, status: 'skipped', reason }) }
  skipRest (names, reason) { for (const name of names) this.skip(name, reason) }
}

const isoSeconds = (ms) => {
  const date = new Date(ms)
  const text = date.toISOString()
  const fraction = ms % 1000 ? text.slice(19, 23) + '000' : ''
  return text.slice(0, 19) + fraction + '+00:00'
}

/** A CWT time claim (integer, float seen in the wild, or a CBOR date) as milliseconds, or null. */
function instant (value) {
  if (value instanceof CborDate) return value.ms
  if (typeof value === 'number' && Number.isFinite(value) && Math.abs(value) < 2 ** 40) {
    return Math.trunc(value) * 1000
  }
  return null
}

const text = (value) => typeof value === 'string' ? value : null
const integer = (value) => Number.isInteger(value) && typeof value === 'number' ? value : null

/**
 * The payload as JSON data: CBOR date-times become their RFC 3339 text (as verify.py's _jsonable does);
 * anything JSON has no type for (byte strings, other tags, non-text map keys, undefined) makes it null.
 */
export function toJson (value) {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return { ok: true, value }
  if (typeof value === 'number') return Number.isFinite(value) ? { ok: true, value } : { ok: false }
  if (typeof value === 'bigint') return { ok: true, value: Number(value) }
  if (value instanceof CborDate) return { ok: true, value: value.iso }
  if (Array.isArray(value)) {
    const out = []
    for (const item of value) {
      const converted = toJson(item)
      if (!converted.ok) return converted
      out.push(converted.value)
    }
    return { ok: true, value: out }
  }
  if (isMap(value)) {
    const out = {}
    for (const [key, item] of value) {
      if (typeof key !== 'string') return { ok: false }
      const converted = toJson(item)
      if (!converted.ok) return converted
      Object.defineProperty(out, key, { value: converted.value, enumerable: true, writable: true, configurable: true })
    }
    return { ok: true, value: out }
  }
  return { ok: false }
}

async function signatureProblem (entry, algorithm, signed, signature) {
  const { key, cryptoKey } = entry
  const subtle = globalThis.crypto.subtle
  if (algorithm === ES256) {
    if (key.type !== 'EC') return 'ES256 needs an EC key; the certificate\'s key is not one'
    if (key.curve !== 'P-256') return `ES256 needs a P-256 key; the certificate's key is on ${CURVE_NAMES[key.curve] || key.curve}`
    if (signature.length !== 64) return `an ES256 signature is 64 bytes, this one is ${signature.length}`
    const r = BigInt('0x' + hex(signature.subarray(0, 32)))
    const s = BigInt('0x' + hex(signature.subarray(32)))
    if (!(r > 0n && r < P256_ORDER && s > 0n && s < P256_ORDER)) return 'the ES256 signature values are out of range'
    const ok = cryptoKey && await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, cryptoKey, signature, signed)
    return ok ? null : 'the signature does not verify with the certificate\'s key'
  }
  if (key.type !== 'RSA') return 'PS256 needs an RSA key; the certificate\'s key is not one'
  if (key.bits < MIN_RSA_BITS) return `the RSA key has ${key.bits} bits, fewer than ${MIN_RSA_BITS}`
  const size = Math.ceil(key.bits / 8)
  if (signature.length !== size) return `a PS256 signature for this key is ${size} bytes, not ${signature.length}`
  const ok = cryptoKey && await subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, cryptoKey, signature, signed)
  return ok ? null : 'the signature does not verify with the certificate\'s key'
}

const hex = (bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')

/**
 * Verify an HC1 text.
 * @param {string} input the QR text
 * @param {import('./trust.js').TrustList|null} trustList the trusted DSCs (null: structure only, never valid)
 * @param {number} now the verification time, milliseconds since the epoch
 * @param {import('./trust.js').RevocationList|null} revocations null skips the revocation check
 * @returns {Promise<{valid: boolean, reasons: string[], checks: {name: string, status: string, reason: string}[],
 *   holder: object|null, certificate: object|null, payload: object|null}>}
 */
export async function verifyHc1 (input, trustList, now, revocations = null) {
  const report = new Report()
  const state = {}
  try {
    await run(String(input), trustList, now, revocations, report, state)
  } catch (error) {
    const recorded = new Set(report.checks.map((check) => check.name))
    report.fail('internal', `unexpected ${error && error.name ? error.name : 'error'} while verifying`)
    for (const name of CHECK_NAMES) if (!recorded.has(name)) report.skip(name, 'not run after an internal error')
  }
  const decoded = state.decoded || null
  return {
    valid: report.signatureOk && !report.failed,
    reasons: report.checks.filter((check) => check.status === 'failed').map((check) => `${check.name}: ${check.reason}`),
    checks: report.checks,
    holder: decoded ? holderOf(decoded) : null,
    certificate: decoded ? summaryOf(decoded) : null,
    payload: decoded ? decoded.json : null
  }
}

async function run (input, trustList, now, revocations, report, state) {
  const stripped = input.replace(STRIP, '')
  // Transport: prefix, Base45, zlib.
  if ([...stripped].length > MAX_TEXT) {
    report.fail('prefix', `the text is longer than ${MAX_TEXT} characters`)
    return report.skipRest(CHECK_NAMES.slice(1), 'needs a valid prefix')
  }
  if (!stripped.startsWith(PREFIX)) {
    report.fail('prefix', `unknown prefix '${[...stripped].slice(0, 4).join('')}' (expected 'HC1:')`)
    return report.skipRest(CHECK_NAMES.slice(1), 'needs a valid prefix')
  }
  report.ok('prefix', 'HC1:')
  let compressed
  try {
    compressed = decodeBase45(stripped.slice(PREFIX.length))
  } catch (error) {
    report.fail('base45', error.message)
    return report.skipRest(CHECK_NAMES.slice(2), 'needs valid Base45')
  }
  report.ok('base45', `${compressed.length} bytes`)
  let message
  try {
    message = inflateZlib(compressed)
  } catch (error) {
    report.fail('zlib', error.message)
    return report.skipRest(CHECK_NAMES.slice(3), 'needs a valid zlib stream')
  }
  report.ok('zlib', `${message.length} bytes`)

  // COSE structure and headers.
  let sign1
  try {
    sign1 = decodeSign1(message)
  } catch (error) {
    report.fail('cose', error.message)
    return report.skipRest(CHECK_NAMES.slice(4), 'needs a COSE_Sign1 message')
  }
  report.ok('cose', `COSE_Sign1, ${sign1.envelope}`)

  const algorithm = sign1.protected.get(HEADER_ALG)
  let algorithmOk = false
  if (algorithm === undefined) {
    const where = sign1.unprotected.has(HEADER_ALG) ? 'only in the unprotected header' : 'missing'
    report.fail('algorithm', `'alg' is ${where}; it must be protected`)
  } else if (typeof algorithm !== 'number' || !Number.isInteger(algorithm) || !ALGORITHM_NAMES.has(algorithm)) {
    report.fail('algorithm', `algorithm ${String(algorithm).slice(0, 20)} is not accepted (ES256, PS256)`)
  } else {
    algorithmOk = true
    report.ok('algorithm', ALGORITHM_NAMES.get(algorithm))
  }

  let kid = sign1.protected.has(HEADER_KID) ? sign1.protected.get(HEADER_KID) : sign1.unprotected.get(HEADER_KID)
  let candidates = []
  let kidOk = false
  if (!isBytes(kid)) {
    report.fail('kid', 'no kid byte string in either header')
    kid = null
  } else if (kid.length !== 8) {
    report.fail('kid', `the kid is ${kid.length} bytes, not 8`)
  } else if (trustList === null) {
    report.fail('kid', 'no trust list given: there is no key to check the signature with')
  } else {
    candidates = trustList.candidates(kid)
    if (candidates.length) {
      kidOk = true
      const where = sign1.protected.has(HEADER_KID) ? 'protected' : 'unprotected'
      report.ok('kid', `${candidates[0].kidText} (${where} header), ${candidates.length} trusted certificate(s)`)
    } else {
      report.fail('kid', `kid ${b64encode(kid)} is not in the trust list`)
    }
  }

  let signer = null
  if (algorithmOk && kidOk) {
    const signed = sigStructure(sign1.protectedBytes, sign1.payload)
    const problems = []
    for (const candidate of candidates) {
      const problem = await signatureProblem(candidate, algorithm, signed, sign1.signature)
      if (problem === null) { signer = candidate; break }
      problems.push(problem)
    }
    if (signer) {
      report.signatureOk = true
      report.ok('signature', `verified with the DSC of ${signer.country || 'unknown country'}`)
    } else {
      report.fail('signature', [...new Set(problems)].join('; '))
    }
  } else {
    report.skip('signature', 'needs an accepted algorithm and a trusted kid')
  }
  const certificate = signer || candidates[0] || null

  // Claims: decoded even when the signature failed, so that the report can say what was presented.
  let claims = null
  let payload = null
  let decoded = null
  let decodedOk = true
  try {
    decoded = decodeLeading(sign1.payload) // the signed bytes: anything after the map is signed too
  } catch (error) {
    report.fail('claims', `the payload is not CBOR (${errorName(error)})`)
    decodedOk = false
  }
  if (decodedOk) {
    const hcert = isMap(decoded) ? decoded.get(CLAIM_HCERT) : undefined
    const inner = isMap(hcert) ? hcert.get(1) : undefined
    if (!isMap(decoded)) {
      report.fail('claims', 'the CWT claims are not a map')
    } else if (!isMap(inner)) {
      report.fail('claims', 'no DCC payload under claim -260 / 1')
    } else {
      claims = decoded
      payload = inner
      const ver = payload.has('ver') ? describe(payload.get('ver')) : 'None'
      report.ok('claims', `CWT claims with a DCC payload (ver ${ver.slice(0, 12)})`)
    }
  }
  if (claims === null) return report.skipRest(CHECK_NAMES.slice(8), 'needs decoded claims')

  const issued = instant(claims.get(CLAIM_IAT))
  const expires = instant(claims.get(CLAIM_EXP))
  if (issued === null) report.fail('issued_at', "no usable 'iat' claim")
  else if (issued > now) report.fail('issued_at', `issued in the future (${isoSeconds(issued)})`)
  else report.ok('issued_at', isoSeconds(issued))
  if (expires === null) report.fail('expiry', "no usable 'exp' claim")
  else if (now > expires) report.fail('expiry', `expired at ${isoSeconds(expires)}`) // inclusive, as the EU vectors expect
  else report.ok('expiry', `valid until ${isoSeconds(expires)}`)

  if (!certificate) report.skip('dsc_validity', 'no trusted certificate for this kid')
  else if (!(certificate.notBefore <= now && now <= certificate.notAfter)) {
    report.fail('dsc_validity', `outside the DSC's validity (${certificate.validityText})`)
  } else report.ok('dsc_validity', certificate.validityText)

  const kinds = ['v', 't', 'r'].filter((key) => payload.has(key)).map((key) => TYPES[key])
  const kind = kinds.length === 1 ? kinds[0] : null
  if (!certificate) report.skip('key_usage', 'no trusted certificate for this kid')
  else if (kind === null) report.fail('key_usage', 'the payload does not hold exactly one of v, t, r')
  else if (certificate.allowedTypes !== null && !certificate.allowedTypes.has(kind)) {
    report.fail('key_usage', `the DSC may not sign ${kind} certificates (${certificate.usageNote})`)
  } else report.ok('key_usage', `${kind}: ${certificate.usageNote}`)

  // Formats are not asserted (JSON Schema 2020-12 makes "format" an annotation), as in verify.py.
  const json = toJson(payload)
  const schema = json.ok
    ? validatePayload(json.value)
    : { ok: false, message: 'not JSON data (the payload holds values JSON has no type for)' }
  if (schema.ok) report.ok('schema', schema.message)
  else report.fail('schema', schema.message)

  const issuerCountry = claims.get(CLAIM_ISS)
  state.decoded = { payload, json: json.ok ? json.value : null, kind, iss: issuerCountry, issued, expires, kid }

  if (revocations === null) {
    report.skip('revocation', 'no revocation list given')
    return
  }
  const entries = kind ? payload.get(kind[0]) : undefined
  const uvci = Array.isArray(entries) && entries.length && isMap(entries[0]) ? entries[0].get('ci') : undefined
  if (typeof uvci !== 'string') {
    report.fail('revocation', 'the certificate has no UVCI to look up')
  } else {
    const hashes = await revocationHashes(uvci, text(issuerCountry) || '', sign1.signature,
      typeof algorithm === 'number' ? algorithm : ES256)
    const matched = revocations.match(hashes, kid)
    if (matched) report.fail('revocation', `revoked (matched by its ${matched} hash)`)
    else report.ok('revocation', 'not on the revocation list')
  }
}

function describe (value) {
  if (typeof value === 'string') return value
  if (value instanceof CborDate) return value.iso
  if (value instanceof Tagged) return `CBORTag(${value.tag}, ...)`
  return String(value)
}

function holderOf (decoded) {
  const { payload } = decoded
  const nam = isMap(payload.get('nam')) ? payload.get('nam') : new Map()
  return {
    fn: text(nam.get('fn')),
    fnt: text(nam.get('fnt')),
    gn: text(nam.get('gn')),
    gnt: text(nam.get('gnt')),
    dob: text(payload.get('dob'))
  }
}

function summaryOf (decoded) {
  const { kind, payload } = decoded
  const entries = kind ? payload.get(kind[0]) : undefined
  const entry = Array.isArray(entries) && entries.length && isMap(entries[0]) ? entries[0] : new Map()
  const vaccination = kind === 'vaccination'
  return {
    uvci: text(entry.get('ci')),
    type: kind,
    tg: text(entry.get('tg')),
    vp: vaccination ? text(entry.get('vp')) : null,
    mp: vaccination ? text(entry.get('mp')) : null,
    ma: text(entry.get('ma')),
    dn: integer(entry.get('dn')),
    sd: integer(entry.get('sd')),
    dt: text(entry.get('dt')),
    co: text(entry.get('co')),
    is: text(entry.get('is')),
    iss: text(decoded.iss),
    iat: decoded.issued === null ? null : isoSeconds(decoded.issued),
    exp: decoded.expires === null ? null : isoSeconds(decoded.expires),
    kid: decoded.kid ? b64encode(decoded.kid) : null,
    // test and recovery certificates: what a screen shows of them
    sc: text(entry.get('sc')),
    tr: text(entry.get('tr')),
    fr: text(entry.get('fr')),
    du: text(entry.get('du'))
  }
}
