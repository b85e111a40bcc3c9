// CBOR decoding with cborg, shaped like cbor2's output in passport/cose.py and passport/verify.py:
// maps keep their key types (JavaScript Map), unknown tags become Tagged values, tags 0 and 1 become
// CborDate instants, tags 2 and 3 big integers, simple values SimpleValue; text that is not UTF-8 is an
// error (cborg would replace the bad bytes; cbor2 refuses them).
import { Token, Tokenizer, Type, decode, decodeFirst } from 'cborg'

export class Tagged {
  /** @param {number} tag @param {any} value */
  constructor (tag, value) {
    this.tag = tag
    this.value = value
  }
}

/** A CBOR date-time (tag 0 or 1): milliseconds since the epoch, and the text it came from. */
export class CborDate {
  /** @param {number} ms @param {string} iso */
  constructor (ms, iso) {
    this.ms = ms
    this.iso = iso
  }
}

// RFC 3339 as cbor2 accepts it in tag 0.
const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6})\d*)?(?:Z|([+-])(\d\d):(\d\d))$/i

// The text Python's datetime.isoformat() gives (with "+00:00" written "Z", as verify.py's _jsonable does).
function isoOf (ms, offsetMinutes, micros) {
  const local = new Date(Math.floor(ms) + offsetMinutes * 60000).toISOString().slice(0, 19)
  const fraction = micros ? '.' + String(micros).padStart(6, '0') : ''
  if (offsetMinutes === 0) return local + fraction + 'Z'
  const abs = Math.abs(offsetMinutes)
  const zone = `${offsetMinutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
  return local + fraction + zone
}

function dateFromText (text) {
  if (typeof text !== 'string') throw new Error('CBOR tag 0 holds no text')
  const m = RFC3339.exec(text)
  if (!m) throw new Error('invalid datetime string')
  const micros = m[7] ? Number(m[7].padEnd(6, '0')) : 0
  const offset = m[8] ? (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10])) : 0
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + micros / 1000 - offset * 60000
  if (!Number.isFinite(ms)) throw new Error('invalid datetime string')
  return new CborDate(ms, isoOf(ms, offset, micros))
}

function dateFromEpoch (value) {
  const seconds = typeof value === 'bigint' ? Number(value) : value
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || Math.abs(seconds) > 8.64e12) {
    throw new Error('invalid timestamp')
  }
  const micros = Math.round((seconds - Math.floor(seconds)) * 1e6) % 1000000
  return new CborDate(seconds * 1000, isoOf(Math.floor(seconds) * 1000, 0, micros))
}

function bigFromBytes (bytes, negative) {
  if (!(bytes instanceof Uint8Array)) throw new Error('a bignum holds no byte string')
  let n = 0n
  for (const byte of bytes) n = (n << 8n) | BigInt(byte)
  return negative ? -1n - n : n
}

const isInteger = (value) => typeof value === 'bigint' || Number.isInteger(value)

// Decimal fractions and bigfloats: [exponent, mantissa], both integers (cbor2 refuses anything else).
function exponentMantissa (tag, value) {
  if (!Array.isArray(value) || value.length !== 2 || !isInteger(value[0]) || !isInteger(value[1])) {
    throw new Error(`Incorrect tag ${tag} payload`)
  }
  return new Tagged(tag, value)
}

const SPECIAL = {
  0: (control) => dateFromText(control()),
  1: (control) => dateFromEpoch(control()),
  2: (control) => bigFromBytes(control(), false),
  3: (control) => bigFromBytes(control(), true),
  4: (control) => exponentMantissa(4, control()),
  5: (control) => exponentMantissa(5, control())
}

// cborg looks tag decoders up by number: answer every number, so that unknown tags are kept, not refused.
const TAGS = new Proxy([], {
  get (target, property) {
    if (typeof property !== 'string' || !/^\d+$/.test(property)) return target[property]
    const tag = Number(property)
    return SPECIAL[tag] || ((control) => new Tagged(tag, control()))
  }
})

/** A CBOR simple value (major type 7, 0xe0 to 0xf3 and 0xf8 xx), which cborg does not decode itself. */
export class SimpleValue {
  /** @param {number} value */
  constructor (value) {
    this.value = value
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

class StrictTokenizer extends Tokenizer {
  next () {
    const byte = this.data[this._pos]
    if ((byte >= 0xe0 && byte <= 0xf3) || byte === 0xf8) {
      const length = byte === 0xf8 ? 2 : 1
      if (this._pos + length > this.data.length) throw new Error('simple value: not enough data')
      const value = byte === 0xf8 ? this.data[this._pos + 1] : byte - 0xe0
      this._pos += length
      return new Token(Type.undefined, new SimpleValue(value), length)
    }
    const token = super.next()
    if (token.type === Type.string && token.byteValue) {
      try {
        UTF8.decode(token.byteValue)
      } catch {
        throw new Error('text is not valid UTF-8')
      }
    }
    return token
  }
}

const OPTIONS = {
  useMaps: true, tags: TAGS, allowUndefined: true, allowIndefinite: true, allowBigInt: true, retainStringBytes: true
}
const options = (bytes) => ({ ...OPTIONS, tokenizer: new StrictTokenizer(bytes, OPTIONS) })

/** Decode exactly one CBOR item; trailing bytes are an error. */
export function decodeExact (bytes) {
  return decode(bytes, options(bytes))
}

/** Decode the first CBOR item and ignore what follows (as cbor2.loads does). */
export function decodeLeading (bytes) {
  return decodeFirst(bytes, options(bytes))[0]
}

/** Decode the first CBOR item: [value, the bytes after it]. */
export function decodeWithRest (bytes) {
  return decodeFirst(bytes, options(bytes))
}

/** A short name of a decoding error, like the exception type names the Python report quotes. */
export function errorName (error) {
  return (error && error.message) ? error.message.replace(/^CBOR decode error: /, '') : String(error)
}
