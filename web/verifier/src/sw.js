/* global __BUILD_VERSION__ */
// The verifier page's service worker: the page and its files come from the cache (so it opens with no
// network); the trust list, revocation list and business rules come from the network when it answers,
// else from the last copy, which carries the time it was fetched.

const SHELL_CACHE = `hoso-verifier-shell-${__BUILD_VERSION__}`
const LISTS_CACHE = 'hoso-verifier-lists'
const SHELL = ['/verify', '/verify/app.js', '/verify/style.css', '/verify/manifest.webmanifest', '/verify/icon.svg']
const LISTS = ['/api/v1/passport/trust-list', '/api/v1/passport/revocations', '/api/v1/passport/rules']
const FETCHED_AT = 'X-HoSo-Fetched-At'
const FROM_CACHE = 'X-HoSo-From-Cache'
const TIMEOUT_MS = 6000

async function stamped (response, headersToSet) {
  const headers = new Headers(response.headers)
  for (const [name, value] of Object.entries(headersToSet)) headers.set(name, value)
  return new Response(await response.arrayBuffer(), { status: response.status, statusText: response.statusText, headers })
}

async function fetchList (url) {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS)
  try {
    const response = await fetch(url, { cache: 'no-store', credentials: 'omit', signal: controller.signal })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    const fresh = await stamped(response, { [FETCHED_AT]: new Date().toISOString() })
    const cache = await caches.open(LISTS_CACHE)
    await cache.put(url, fresh.clone())
    return fresh
  } finally {
    clearTimeout(timer)
  }
}

async function listNetworkFirst (url) {
  try {
    return await fetchList(url)
  } catch (error) {
    const cache = await caches.open(LISTS_CACHE)
    const saved = await cache.match(url)
    if (saved) return stamped(saved, { [FROM_CACHE]: '1' })
    return Response.error()
  }
}

async function shellCacheFirst (request, key) {
  const cache = await caches.open(SHELL_CACHE)
  const cached = await cache.match(key)
  if (cached) return cached
  const response = await fetch(request)
  if (response.ok) await cache.put(key, response.clone())
  return response
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE)
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' })))
    // The lists too, so that the page works offline after its first visit.
    await Promise.all(LISTS.map((url) => fetchList(url).catch(() => null)))
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('hoso-verifier-shell-') && name !== SHELL_CACHE) await caches.delete(name)
    }
    await self.clients.claim()
  })())
})

self.addEventListener('fetch', (event) => {
  const { request } = event
  if (request.method !== 'GET') return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin) return
  if (LISTS.includes(url.pathname)) {
    event.respondWith(listNetworkFirst(url.pathname))
    return
  }
  if (url.pathname === '/verify' || url.pathname === '/verify/') {
    event.respondWith(shellCacheFirst(request, '/verify')) // any ?at= or ?lang= is read by the page itself
    return
  }
  if (SHELL.includes(url.pathname)) {
    event.respondWith(shellCacheFirst(request, url.pathname))
  }
})
