// COSE_Sign1 (RFC 9052) as the DCC uses it, decoded as strictly as passport/cose.py decodes it.
import { CborDate, Tagged, decodeLeading, decodeWithRest, errorName } from './cbor.js'

export const ES256 = -7
export const PS256 = -37
export const ALGORITHM_NAMES = new Map([[ES256, 'ES256'], [PS256, 'PS256']])
export const HEADER_ALG = 1
export const HEADER_KID = 4
const TAG_SIGN1 = 18
const TAG_CWT = 61

export class CoseFormatError extends Error {}

export const isMap = (value) => value instanceof Map
export const isBytes = (value) => value instanceof Uint8Array

/**
 * Decode a COSE_Sign1: tagged 18, untagged, or tag 18 inside the CWT tag 61.
 * @param {Uint8Array} data
 * @returns {{protectedBytes: Uint8Array, protected: Map, unprotected: Map, payload: Uint8Array,
 *            signature: Uint8Array, envelope: string}}
 */
export function decodeSign1 (data) {
  let item, rest
  try {
    [item, rest] = decodeWithRest(data)
  } catch (error) {
    throw new CoseFormatError(`not CBOR (${errorName(error)})`)
  }
  if (rest.length) throw new CoseFormatError(`${rest.length} bytes after the CBOR item`)
  let envelope = 'untagged'
  if (item instanceof Tagged && item.tag === TAG_CWT) {
    if (!(item.value instanceof Tagged && item.value.tag === TAG_SIGN1)) {
      throw new CoseFormatError('CWT tag 61 does not wrap a COSE_Sign1 tag 18')
    }
    item = item.value
    envelope = 'tag 61 + tag 18'
  }
  if (item instanceof CborDate || typeof item === 'bigint') {
    throw new CoseFormatError('COSE_Sign1 is not an array of 4 items')
  }
  if (item instanceof Tagged) {
    if (item.tag !== TAG_SIGN1) throw new CoseFormatError(`CBOR tag ${item.tag} is not COSE_Sign1 (18)`)
    item = item.value
    if (envelope === 'untagged') envelope = 'tag 18'
  }
  if (!Array.isArray(item) || item.length !== 4) throw new CoseFormatError('COSE_Sign1 is not an array of 4 items')
  const [protectedBytes, unprotected, payload, signature] = item
  if (!isBytes(protectedBytes)) throw new CoseFormatError('the protected header is not a byte string')
  if (!isMap(unprotected)) throw new CoseFormatError('the unprotected header is not a map')
  if (!isBytes(payload)) throw new CoseFormatError('the payload is not a byte string (detached payloads are not used)')
  if (!isBytes(signature)) throw new CoseFormatError('the signature is not a byte string')
  let header = new Map()
  if (protectedBytes.length) {
    try {
      // Whatever follows the map inside the protected bstr is signed too: no need to refuse it.
      header = decodeLeading(protectedBytes)
    } catch {
      throw new CoseFormatError('the protected header is not CBOR')
    }
    if (!isMap(header)) throw new CoseFormatError('the protected header is not a map')
  }
  return { protectedBytes, protected: header, unprotected, payload, signature, envelope }
}

function bstrHead (length) {
  if (length < 24) return [0x40 | length]
  if (length < 0x100) return [0x58, length]
  if (length < 0x10000) return [0x59, length >> 8, length & 0xff]
  return [0x5a, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff]
}

const CONTEXT = [0x84, 0x6a, ...new TextEncoder().encode('Signature1')]

/** The bytes a COSE_Sign1 signature covers: ["Signature1", protected, h'', payload]. */
export function sigStructure (protectedBytes, payload) {
  const parts = [CONTEXT, bstrHead(protectedBytes.length), protectedBytes, [0x40], bstrHead(payload.length), payload]
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0))
  let at = 0
  for (const part of parts) { out.set(part, at); at += part.length }
  return out
}
