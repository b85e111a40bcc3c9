// What a verifier needs from a document signer certificate (DSC), read with asn1js: the public key,
// the validity period, the subject's country, the extended key usage (read tolerantly, as
// passport/_der.py does for DSCs that strict parsers refuse), and the parts that a CSCA signed.
import { fromBER } from 'asn1js'

export class CertificateError extends Error {}

const UNIVERSAL = 1
const CONTEXT = 3
const SEQUENCE = 16
const OID = 6
const OCTET_STRING = 4
const BIT_STRING = 3
const UTC_TIME = 23
const GENERALIZED_TIME = 24
const EKU = '2.5.29.37'
const COUNTRY = '2.5.4.6'

const PARSE = { parseEmbedded: false, maxDepth: 64, maxNodes: 20000 }

function parse (bytes, what) {
  const parsed = fromBER(bytes, PARSE)
  if (parsed.offset === -1 || parsed.result.error) {
    throw new CertificateError(`${what}: ${parsed.result.error || 'not DER'}`)
  }
  return parsed.result
}

const tagOf = (node) => node.idBlock
const is = (node, tagClass, number) => tagOf(node).tagClass === tagClass && tagOf(node).tagNumber === number
const isSequence = (node) => is(node, UNIVERSAL, SEQUENCE)
const childrenOf = (node) => (node.valueBlock && Array.isArray(node.valueBlock.value)) ? node.valueBlock.value : []
const rawOf = (node) => node.valueBeforeDecodeView
const oidOf = (node) => node.valueBlock.toString()

function contentBytes (node) {
  const view = node.valueBlock.valueHexView
  if (!(view instanceof Uint8Array)) throw new CertificateError('expected a primitive value')
  return view
}

// UTCTime YYMMDDHHMM[SS]Z and GeneralizedTime YYYYMMDDHHMMSS[.fff]Z as milliseconds since the epoch.
function timeOf (node) {
  const text = new TextDecoder('latin1').decode(contentBytes(node))
  let m
  if (is(node, UNIVERSAL, UTC_TIME) && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?Z$/.exec(text))) {
    const year = Number(m[1]) < 50 ? 2000 + Number(m[1]) : 1900 + Number(m[1])
    return Date.UTC(year, m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0))
  }
  if (is(node, UNIVERSAL, GENERALIZED_TIME) && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:[.,](\d+))?Z$/.exec(text))) {
    return Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6])
  }
  throw new CertificateError(`unreadable time ${JSON.stringify(text)}`)
}

function extendedKeyUsage (extensions) {
  const list = childrenOf(extensions)[0]
  if (!list || !isSequence(list)) throw new CertificateError('extensions are not a SEQUENCE')
  for (const extension of childrenOf(list)) {
    if (!isSequence(extension)) throw new CertificateError('an extension is not a SEQUENCE')
    const parts = childrenOf(extension)
    if (!parts.length || !is(parts[0], UNIVERSAL, OID)) throw new CertificateError('an extension has no OID')
    if (oidOf(parts[0]) !== EKU) continue
    const octets = parts.slice(1).find((part) => is(part, UNIVERSAL, OCTET_STRING))
    if (!octets) throw new CertificateError('the extended key usage has no value')
    const usages = parse(contentBytes(octets), 'extended key usage')
    if (!isSequence(usages)) throw new CertificateError('the extended key usage is not a SEQUENCE')
    return childrenOf(usages).filter((item) => is(item, UNIVERSAL, OID)).map(oidOf)
  }
  return null
}

function countryOf (name) {
  for (const set of childrenOf(name)) {
    for (const attribute of childrenOf(set)) {
      const [type, value] = childrenOf(attribute)
      if (type && value && is(type, UNIVERSAL, OID) && oidOf(type) === COUNTRY) {
        return new TextDecoder().decode(contentBytes(value))
      }
    }
  }
  return null
}

const CURVES = { '1.2.840.10045.3.1.7': 'P-256', '1.3.132.0.34': 'P-384', '1.3.132.0.35': 'P-521' }
const EC_PUBLIC_KEY = '1.2.840.10045.2.1'
const RSA = '1.2.840.113549.1.1.1'

function keyInfo (spki) {
  const [algorithm, bits] = childrenOf(spki)
  if (!algorithm || !isSequence(algorithm) || !bits || !is(bits, UNIVERSAL, BIT_STRING)) {
    throw new CertificateError('unreadable SubjectPublicKeyInfo')
  }
  const [oid, parameters] = childrenOf(algorithm)
  const keyOid = oidOf(oid)
  if (keyOid === EC_PUBLIC_KEY) {
    const curveOid = parameters && is(parameters, UNIVERSAL, OID) ? oidOf(parameters) : null
    return { type: 'EC', curve: CURVES[curveOid] || curveOid || 'unknown', bits: null }
  }
  if (keyOid === RSA) {
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    const key = parse(contentBytes(bits), 'RSA public key') // asn1js leaves out the unused-bits byte
    let modulus = contentBytes(childrenOf(key)[0])
    while (modulus.length && modulus[0] === 0) modulus = modulus.subarray(1)
    const size = modulus.length ? (modulus.length - 1) * 8 + (32 - Math.clz32(modulus[0])) : 0
    return { type: 'RSA', curve: null, bits: size }
  }
  return { type: keyOid, curve: null, bits: null }
}

/**
 * Read a certificate.
 * @param {Uint8Array} der
 * @returns {{der: Uint8Array, tbs: Uint8Array, issuer: Uint8Array, subject: Uint8Array, spki: Uint8Array,
 *   key: {type: string, curve: string|null, bits: number|null}, notBefore: number, notAfter: number,
 *   country: string|null, eku: string[]|null, ekuError: string|null, signatureAlgorithm: string,
 *   signatureParameters: any, signature: Uint8Array}}
 * @throws {CertificateError} when the certificate or its public key cannot be read
 */
export function readCertificate (der) {
  const certificate = parse(der, 'certificate')
  const [tbs, signatureAlgorithm, signature] = childrenOf(certificate)
  if (!isSequence(certificate) || !tbs || !isSequence(tbs) || !signatureAlgorithm || !signature) {
    throw new CertificateError('not a certificate')
  }
  let fields = childrenOf(tbs)
  if (fields.length && is(fields[0], CONTEXT, 0)) fields = fields.slice(1) // version
  const [, , issuer, validity, subject, spki] = fields
  if (!spki || !isSequence(validity) || !isSequence(spki)) throw new CertificateError('unreadable TBSCertificate')
  const [start, end] = childrenOf(validity)
  const extensions = fields.slice(6).find((field) => is(field, CONTEXT, 3))
  let eku = null
  let ekuError = null
  if (extensions) {
    try {
      eku = extendedKeyUsage(extensions)
    } catch (error) {
      ekuError = error.message
    }
  }
  const [algorithmOid, algorithmParameters] = childrenOf(signatureAlgorithm)
  const bits = contentBytes(signature)
  return {
    der,
    tbs: rawOf(tbs),
    issuer: rawOf(issuer),
    subject: rawOf(subject),
    spki: rawOf(spki),
    key: keyInfo(spki),
    notBefore: timeOf(start),
    notAfter: timeOf(end),
    country: countryOf(subject),
    eku,
    ekuError,
    signatureAlgorithm: algorithmOid ? oidOf(algorithmOid) : '',
    signatureParameters: algorithmParameters || null,
    signature: bits
  }
}

/** An ECDSA DER signature (SEQUENCE of two INTEGERs) as r||s of ``size`` bytes each, or null. */
export function ecdsaRaw (der, size) {
  let sequence
  try {
    sequence = parse(der, 'signature')
  } catch {
    return null
  }
  const parts = childrenOf(sequence)
  if (parts.length !== 2) return null
  const out = new Uint8Array(2 * size)
  for (const [index, part] of parts.entries()) {
    let value = contentBytes(part)
    while (value.length > size && value[0] === 0) value = value.subarray(1)
    if (value.length > size) return null
    out.set(value, (index + 1) * size - value.length)
  }
  return out
}
