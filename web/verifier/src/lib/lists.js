// The trust list and revocation list: fetched from HoSo when the network answers, else read from the
// offline copy (Cache Storage, shared with the service worker), with the time each was fetched.

export const TRUST_LIST_URL = '/api/v1/passport/trust-list'
export const REVOCATIONS_URL = '/api/v1/passport/revocations'
export const LISTS_CACHE = 'hoso-verifier-lists'
export const FETCHED_AT = 'X-HoSo-Fetched-At'
export const FROM_CACHE = 'X-HoSo-From-Cache'
const TIMEOUT_MS = 6000

async function fromCache (url) {
  if (!globalThis.caches) return null
  const cache = await caches.open(LISTS_CACHE)
  return (await cache.match(url)) || null
}

async function remember (url, response) {
  if (!globalThis.caches) return
  const headers = new Headers(response.headers)
  headers.set(FETCHED_AT, new Date().toISOString())
  const body = await response.clone().arrayBuffer()
  const cache = await caches.open(LISTS_CACHE)
  await cache.put(url, new Response(body, { status: 200, headers }))
}

/** The saved copy of one list, or null. */
export async function loadSavedList (url) {
  const response = await fromCache(url)
  if (!response) return null
  return { document: await response.json(), fetchedAt: response.headers.get(FETCHED_AT), fromCache: true }
}

/**
 * One list as JSON: from the network (through the service worker when it controls the page, which
 * caches it), else from the offline copy.
 * @returns {Promise<{document: any, fetchedAt: string|null, fromCache: boolean}>}
 */
export async function loadList (url) {
  let response = null
  let saved = false
  try {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS)
    try {
      response = await fetch(url, { cache: 'no-store', signal: controller.signal, credentials: 'omit' })
    } finally {
      clearTimeout(timer)
    }
    if (!response.ok) response = null
  } catch {
    response = null
  }
  if (response && !response.headers.get(FETCHED_AT)) {
    // Not through the service worker (first visit, or no service worker): keep a copy ourselves.
    await remember(url, response).catch(() => {})
  }
  if (!response) {
    response = await fromCache(url)
    saved = true
    if (!response) throw new Error(`${url} is unreachable and there is no saved copy`)
  }
  return {
    document: await response.json(),
    fetchedAt: response.headers.get(FETCHED_AT) || new Date().toISOString(),
    fromCache: saved || response.headers.get(FROM_CACHE) === '1'
  }
}

/**
 * An ISO 8601 instant as milliseconds since the epoch (fractions kept to the microsecond; no time zone
 * means UTC, as in `python -m passport verify --at`).
 * @returns {number|null}
 */
export function parseInstant (text) {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?)?\s*(Z|[+-]\d\d(?::?\d\d)?)?$/i
    .exec(String(text || '').trim())
  if (!m) return null
  const micros = m[7] ? Number(m[7].slice(0, 6).padEnd(6, '0')) : 0
  let offset = 0
  if (m[8] && m[8].toUpperCase() !== 'Z') {
    const digits = m[8].replace(':', '')
    offset = (digits[0] === '-' ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5) || 0))
  }
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0)) + micros / 1000 -
    offset * 60000
  return Number.isFinite(ms) ? ms : null
}
