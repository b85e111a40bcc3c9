// Base45 (RFC 9285) decoding, with the same refusals as passport/b45.py.

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:'
const VALUE = new Map([...ALPHABET].map((char, index) => [char, index]))

export class Base45Error extends Error {}

/**
 * Decode Base45 text.
 * @param {string} text
 * @returns {Uint8Array}
 * @throws {Base45Error} on a character outside the alphabet, a dangling character, or a group too large
 */
export function decodeBase45 (text) {
  const values = new Array(text.length)
  for (let i = 0; i < text.length; i++) {
    const value = VALUE.get(text[i])
    if (value === undefined) throw new Base45Error('Base45: character outside the alphabet')
    values[i] = value
  }
  const groups = Math.floor(values.length / 3)
  const rest = values.length % 3
  if (rest === 1) throw new Base45Error('Base45: dangling character at the end')
  const out = new Uint8Array(2 * groups + (rest === 2 ? 1 : 0))
  for (let g = 0; g < groups; g++) {
    const n = values[3 * g] + 45 * values[3 * g + 1] + 2025 * values[3 * g + 2]
    if (n > 0xffff) throw new Base45Error('Base45: a group of three characters exceeds 65535')
    out[2 * g] = n >> 8
    out[2 * g + 1] = n & 0xff
  }
  if (rest === 2) {
    const n = values[values.length - 2] + 45 * values[values.length - 1]
    if (n > 255) throw new Base45Error('Base45: a final pair of characters exceeds 255')
    out[2 * groups] = n
  }
  return out
}
