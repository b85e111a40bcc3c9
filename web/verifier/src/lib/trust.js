// The trust list (GET /api/v1/passport/trust-list) and revocation list (GET /api/v1/passport/revocations),
// read as passport/trust.py and passport/revocation.py read them.
import { CertificateError, ecdsaRaw, readCertificate } from './x509.js'

export class TrustListError extends Error {}
export class RevocationListError extends Error {}

const subtle = () => globalThis.crypto.subtle

export function b64decode (text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new Error('not base64')
  }
  const binary = atob(text)
  const out = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
  return out
}

export function b64encode (bytes) {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

export const sameBytes = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i])

export async function sha256 (bytes) {
  return new Uint8Array(await subtle().digest('SHA-256', bytes))
}

// Both arcs occur in real DSCs: the registered one and an older one with an extra ".0".
const EKU_TYPES = new Map()
for (const arc of ['', '.0']) {
  for (const [number, kind] of [[1, 'test'], [2, 'vaccination'], [3, 'recovery']]) {
    EKU_TYPES.set(`1.3.6.1.4.1${arc}.1847.2021.1.${number}`, kind)
  }
}

function usage (certificate) {
  if (certificate.ekuError) return { allowed: new Set(), note: `extended key usage unreadable: ${certificate.ekuError}` }
  if (certificate.eku === null) return { allowed: null, note: 'no extended key usage: may sign any type' }
  const kinds = new Set(certificate.eku.filter((oid) => EKU_TYPES.has(oid)).map((oid) => EKU_TYPES.get(oid)))
  if (!kinds.size) return { allowed: null, note: 'no DCC extended key usage: may sign any type' }
  return { allowed: kinds, note: 'extended key usage: ' + [...kinds].sort().join(', ') }
}

const iso = (ms) => new Date(ms).toISOString().replace('.000Z', '+00:00')

async function importKey (certificate) {
  const { key, spki } = certificate
  try {
    if (key.type === 'EC' && key.curve === 'P-256') {
      return await subtle().importKey('spki', spki, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify'])
    }
    if (key.type === 'RSA') {
      return await subtle().importKey('spki', spki, { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['verify'])
    }
  } catch {
    return null
  }
  return null
}

/**
 * A DSC prepared for verification: kid, public key, validity and key usage are read once.
 * @param {Uint8Array} der
 * @param {string|null} country the publishing country, when known
 */
export async function trustedCertificate (der, country = null) {
  let certificate
  try {
    certificate = readCertificate(der)
  } catch (error) {
    throw new TrustListError(`unreadable certificate: ${error.message}`)
  }
  const kid = (await sha256(der)).slice(0, 8)
  const { allowed, note } = usage(certificate)
  return {
    kid,
    kidText: b64encode(kid),
    der,
    certificate,
    key: certificate.key,
    cryptoKey: await importKey(certificate),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    country: country ?? certificate.country,
    allowedTypes: allowed,
    usageNote: note,
    validityText: `the DSC is valid from ${iso(certificate.notBefore)} to ${iso(certificate.notAfter)}`
  }
}

const HASHES = {
  '1.2.840.10045.4.3.2': 'SHA-256',
  '1.2.840.10045.4.3.3': 'SHA-384',
  '1.2.840.10045.4.3.4': 'SHA-512',
  '1.2.840.113549.1.1.11': 'SHA-256',
  '1.2.840.113549.1.1.12': 'SHA-384',
  '1.2.840.113549.1.1.13': 'SHA-512'
}
const SIZES = { 'P-256': 32, 'P-384': 48, 'P-521': 66 }

/** Whether ``csca`` signed ``dsc`` (names match and the signature verifies). */
export async function issuedBy (dsc, csca) {
  if (!sameBytes(dsc.issuer, csca.subject)) return false
  const hash = HASHES[dsc.signatureAlgorithm]
  if (!hash) return false
  try {
    if (csca.key.type === 'EC' && SIZES[csca.key.curve] && dsc.signatureAlgorithm.startsWith('1.2.840.10045.4.3.')) {
      const raw = ecdsaRaw(dsc.signature, SIZES[csca.key.curve])
      if (!raw) return false
      const key = await subtle().importKey('spki', csca.spki, { name: 'ECDSA', namedCurve: csca.key.curve }, false, ['verify'])
      return await subtle().verify({ name: 'ECDSA', hash }, key, raw, dsc.tbs)
    }
    if (csca.key.type === 'RSA' && dsc.signatureAlgorithm.startsWith('1.2.840.113549.1.1.')) {
      const key = await subtle().importKey('spki', csca.spki, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['verify'])
      return await subtle().verify('RSASSA-PKCS1-v1_5', key, dsc.signature, dsc.tbs)
    }
  } catch {
    return false
  }
  return false
}

export class TrustList {
  constructor (entries, cscas = []) {
    this.entries = entries
    this.cscas = cscas
    this.byKid = new Map()
    for (const entry of entries) {
      const list = this.byKid.get(entry.kidText) || []
      list.push(entry)
      this.byKid.set(entry.kidText, list)
    }
  }

  get size () { return this.entries.length }

  /** The trusted certificates with this kid (possibly none). */
  candidates (kid) {
    return this.byKid.get(b64encode(kid)) || []
  }

  /**
   * Read the trust list JSON; kids are checked against the certificates and, when CSCAs of a DSC's
   * country are listed, that DSC must have been issued by one of them.
   * @throws {TrustListError}
   */
  static async fromJson (document) {
    if (!document || typeof document !== 'object' || Array.isArray(document) ||
        !Array.isArray(document.dsc ?? []) || !Array.isArray(document.csca ?? [])) {
      throw new TrustListError("a trust list is an object with 'dsc' and 'csca' lists")
    }
    const cscas = []
    for (const [index, item] of (document.csca ?? []).entries()) {
      try {
        cscas.push(readCertificate(certificateBytes(item, `csca[${index}]`)))
      } catch (error) {
        if (error instanceof TrustListError) throw error
        throw new TrustListError(`csca[${index}]: unreadable certificate: ${error.message}`)
      }
    }
    const entries = []
    for (const [index, item] of (document.dsc ?? []).entries()) {
      const where = `dsc[${index}]`
      const country = item && typeof item === 'object' ? item.country ?? null : null
      if (country !== null && typeof country !== 'string') throw new TrustListError(`${where}: 'country' must be a string`)
      const entry = await trustedCertificate(certificateBytes(item, where), country)
      if (item.kid !== undefined && item.kid !== null) {
        let declared
        try { declared = b64decode(item.kid) } catch { throw new TrustListError(`${where}.kid: not base64`) }
        if (!sameBytes(declared, entry.kid)) throw new TrustListError(`${where}: 'kid' is not the SHA-256 prefix of the certificate`)
      }
      // CSCAs of the DSC's own country vouch for it; DSCs of other countries (imported from the EU DCC
      // Gateway, which checked them against their CSCAs) are taken as listed (as TrustList.from_json).
      const own = cscas.filter(csca => entry.country === null || csca.country === null || csca.country === entry.country)
      if (own.length) {
        let issued = false
        for (const csca of own) {
          if (await issuedBy(entry.certificate, csca)) { issued = true; break }
        }
        if (!issued) throw new TrustListError(`${where}: not issued by a listed CSCA`)
      }
      entries.push(entry)
    }
    return new TrustList(entries, cscas)
  }
}

function certificateBytes (item, where) {
  if (!item || typeof item !== 'object' || !('certificate' in item)) {
    throw new TrustListError(`${where}: expected an object with 'certificate'`)
  }
  try {
    return b64decode(item.certificate)
  } catch {
    throw new TrustListError(`${where}.certificate: not base64`)
  }
}

export const HASH_TYPES = ['UCI', 'COUNTRYCODEUCI', 'SIGNATURE']

function decodeHashes (values, where) {
  if (!Array.isArray(values)) throw new RevocationListError(`${where} must be a list of base64 strings`)
  const out = new Set()
  for (const value of values) {
    let raw = null
    try { raw = b64decode(value) } catch { raw = null }
    if (!raw || raw.length !== 16) throw new RevocationListError(`${where}: each entry must be 16 bytes in base64`)
    out.add(b64encode(raw))
  }
  return out
}

export class RevocationList {
  constructor (hashes = {}, byKid = new Map()) {
    this.hashes = hashes
    this.byKid = byKid
  }

  /** About how many certificates are revoked: the longest list of one hash type (each lists them all). */
  get revokedCount () {
    let count = 0
    for (const kind of HASH_TYPES) {
      let size = this.hashes[kind]?.size || 0
      for (const scoped of this.byKid.values()) size += scoped[kind]?.size || 0
      count = Math.max(count, size)
    }
    return count
  }

  /** @throws {RevocationListError} */
  static fromJson (document) {
    if (!document || typeof document !== 'object' || Array.isArray(document)) {
      throw new RevocationListError('a revocation list is a JSON object')
    }
    const unknown = Object.keys(document).filter((key) => !HASH_TYPES.includes(key) && key !== 'kids')
    if (unknown.length) throw new RevocationListError(`unknown keys ${JSON.stringify(unknown.sort())}`)
    const hashes = {}
    for (const kind of HASH_TYPES) if (kind in document) hashes[kind] = decodeHashes(document[kind], kind)
    const kids = document.kids ?? {}
    if (!kids || typeof kids !== 'object' || Array.isArray(kids)) {
      throw new RevocationListError("'kids' must map base64 kids to hash lists")
    }
    const byKid = new Map()
    for (const [kidText, entry] of Object.entries(kids)) {
      let kid
      try { kid = b64decode(kidText) } catch { throw new RevocationListError(`kid ${kidText} is not base64`) }
      if (!entry || typeof entry !== 'object' || Object.keys(entry).some((key) => !HASH_TYPES.includes(key))) {
        throw new RevocationListError(`kid ${kidText}: expected an object of hash lists`)
      }
      const scoped = {}
      for (const kind of Object.keys(entry)) scoped[kind] = decodeHashes(entry[kind], `${kidText}/${kind}`)
      byKid.set(b64encode(kid), scoped)
    }
    return new RevocationList(hashes, byKid)
  }

  /** The first hash type under which a certificate is revoked, or null. */
  match (hashes, kid) {
    const scoped = kid ? this.byKid.get(b64encode(kid)) || {} : {}
    for (const kind of HASH_TYPES) {
      const value = b64encode(hashes[kind])
      if (this.hashes[kind]?.has(value) || scoped[kind]?.has(value)) return kind
    }
    return null
  }
}

/** The three 16-byte revocation hashes (for ES256 only r, the signature's first half, is hashed). */
export async function revocationHashes (uci, country, signature, algorithm) {
  const encoder = new TextEncoder()
  const signed = algorithm === -7 ? signature.subarray(0, Math.floor(signature.length / 2)) : signature
  return {
    UCI: (await sha256(encoder.encode(uci))).slice(0, 16),
    COUNTRYCODEUCI: (await sha256(encoder.encode(country + uci))).slice(0, 16),
    SIGNATURE: (await sha256(signed)).slice(0, 16)
  }
}

export { CertificateError }
