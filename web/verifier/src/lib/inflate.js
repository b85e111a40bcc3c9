// zlib (RFC 1950) inflation with pako, refusing truncated streams and inflation bombs
// (as passport/transport.py's decompress does).
import { Inflate } from 'pako'

export const MAX_INFLATED = 65536

export class InflateError extends Error {}

/**
 * @param {Uint8Array} data a zlib stream
 * @param {number} [limit] the largest inflated size accepted
 * @returns {Uint8Array}
 */
export function inflateZlib (data, limit = MAX_INFLATED) {
  const inflater = new Inflate({ windowBits: 15, chunkSize: 16384 })
  let size = 0
  let tooLarge = false
  const chunks = []
  inflater.onData = (chunk) => {
    size += chunk.length
    if (size > limit) tooLarge = true
    else chunks.push(chunk)
  }
  inflater.onEnd = (status) => { inflater.err = status }
  try {
    inflater.push(data, true)
  } catch (error) {
    throw new InflateError(`zlib: ${error.message || error}`)
  }
  if (tooLarge) throw new InflateError(`zlib: inflates beyond ${limit} bytes`)
  if (inflater.err) throw new InflateError(`zlib: ${inflater.msg || 'invalid stream'}`)
  if (!inflater.ended) throw new InflateError('zlib: the stream is truncated')
  const out = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) { out.set(chunk, at); at += chunk.length }
  return out
}
