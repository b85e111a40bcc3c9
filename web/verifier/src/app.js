// The verifier page: read a QR code (camera, photo) or pasted HC1 text, verify it here in the browser
// against the trust list and revocation list from HoSo (kept for offline use), evaluate the entry rules
// of the country staff picked (CertLogic, with certlogic-js), and show both verdicts.
import jsQR from 'jsqr'
import { VALUESETS } from 'virtual:dcc-valuesets'

import { TEXT, chooseLanguage, format } from './lib/i18n.js'
import { REVOCATIONS_URL, TRUST_LIST_URL, loadList, loadSavedList, parseInstant } from './lib/lists.js'
import { RULES_URL, RuleBook, checkRules, withRules } from './lib/rules.js'
import { RevocationList, TrustList } from './lib/trust.js'
import { verifyHc1 } from './lib/verify.js'

const $ = (id) => document.getElementById(id)
const params = new URLSearchParams(location.search)
const STALE_MS = 24 * 3600 * 1000
const REFRESH_MS = 10 * 60 * 1000

const storage = {
  get (key) { try { return localStorage.getItem(key) } catch { return null } },
  set (key, value) { try { localStorage.setItem(key, value) } catch {} }
}

const state = {
  language: chooseLanguage(params.get('lang'), storage.get('hoso-verifier-lang'), navigator.languages),
  trustList: null,
  revocations: null,
  rules: null, // RuleBook
  country: (/^[A-Z]{2}$/.test(params.get('country') || '') && params.get('country')) ||
    storage.get('hoso-verifier-country') || 'VN',
  lists: null, // {fetchedAt, fromCache, keys, revoked, countries, error}
  at: params.has('at') ? parseInstant(params.get('at')) : null,
  last: null, // {hc1, result}
  stream: null,
  scanning: false
}

const t = () => TEXT[state.language]

// ---------------------------------------------------------------- verification (also the test hook)

/**
 * Verify HC1 text with the loaded lists, or with lists given as JSON (tests, other tools).
 * @param {string} hc1
 * @param {{trustList?: object|null, revocations?: object|null, at?: string|number}} [options]
 */
async function verify (hc1, options = {}) {
  const trustList = 'trustList' in options
    ? (options.trustList === null ? null : await TrustList.fromJson(options.trustList))
    : state.trustList
  const revocations = 'revocations' in options
    ? (options.revocations === null ? null : RevocationList.fromJson(options.revocations))
    : state.revocations
  let now = Date.now()
  if (options.at !== undefined && options.at !== null) {
    now = typeof options.at === 'number' ? options.at : parseInstant(options.at)
    if (now === null) throw new Error(`unreadable time ${options.at}`)
  } else if (state.at !== null) {
    now = state.at
  }
  return verifyHc1(hc1, trustList, now, revocations)
}

/**
 * Verify and apply the entry rules of a country (default: the one picked on the page): what the page
 * shows, and what POST /api/v1/passport/verify answers (authentic, rules, valid).
 * @param {string} hc1
 * @param {{trustList?: object|null, revocations?: object|null, at?: string|number, rules?: object,
 *   country?: string}} [options] as for verify(), plus a rules document (GET /passport/rules) and a country
 */
async function check (hc1, options = {}) {
  const result = await verify(hc1, options)
  const book = options.rules ? new RuleBook(options.rules) : state.rules
  const country = options.country || state.country
  let now = Date.now()
  if (options.at !== undefined && options.at !== null) {
    now = typeof options.at === 'number' ? options.at : parseInstant(options.at)
  } else if (state.at !== null) {
    now = state.at
  }
  if (!book || !book.countries.includes(country)) {
    // Without the country's rules nothing can be said about entry: never green.
    return { ...withRules(result, [], country), valid: false, rulesMissing: true }
  }
  return { ...withRules(result, checkRules(result, book, country, now), country), rulesMissing: false }
}

// ---------------------------------------------------------------- lists

async function useLists (trust, revoked, rules) {
  const trustList = await TrustList.fromJson(trust.document)
  const revocations = RevocationList.fromJson(revoked.document)
  const book = new RuleBook(rules.document)
  state.trustList = trustList
  state.revocations = revocations
  state.rules = book
  renderCountries()
  return {
    // The oldest of the three times is the one that matters.
    fetchedAt: [trust.fetchedAt, revoked.fetchedAt, rules.fetchedAt].sort()[0],
    fromCache: trust.fromCache || revoked.fromCache || rules.fromCache,
    keys: trustList.size,
    revoked: revocations.revokedCount,
    countries: book.countries.length,
    error: null
  }
}

function renderCountries () {
  const select = $('country')
  const countries = state.rules ? state.rules.countries : []
  const codes = countries.includes(state.country) ? countries : [state.country, ...countries]
  select.replaceChildren(...codes.map((code) => {
    const option = document.createElement('option')
    option.value = code
    option.textContent = countryName(code)
    return option
  }))
  select.value = state.country
}

/** The saved lists, at once (a poor connection must not keep staff waiting); false when there are none. */
async function loadSavedLists () {
  try {
    const [trust, revoked, rules] = await Promise.all([loadSavedList(TRUST_LIST_URL),
      loadSavedList(REVOCATIONS_URL), loadSavedList(RULES_URL)])
    if (!trust || !revoked || !rules) return false
    state.lists = await useLists(trust, revoked, rules)
    renderLists()
    return true
  } catch {
    return false
  }
}

/** Fetch both lists (through the service worker, which falls back to its copies when offline). */
async function refreshLists () {
  const button = $('refresh')
  button.disabled = true
  button.textContent = t().refreshing
  let lists
  try {
    const [trust, revoked, rules] = await Promise.all([loadList(TRUST_LIST_URL), loadList(REVOCATIONS_URL),
      loadList(RULES_URL)])
    lists = await useLists(trust, revoked, rules)
  } catch (error) {
    lists = { fetchedAt: null, fromCache: false, keys: 0, revoked: 0, countries: 0, error: error.message || String(error) }
  }
  // A failed update keeps lists that were loaded before.
  if (lists.error && state.lists && !state.lists.error) {
    state.lists = { ...state.lists, updateError: lists.error }
  } else {
    state.lists = lists
  }
  button.disabled = false
  renderLists()
  if (state.last) await runVerification(state.last.hc1) // the verdict on screen follows the lists
  return state.lists
}

function renderLists () {
  const box = $('lists')
  const text = $('lists-text')
  const lists = state.lists
  box.classList.remove('stale', 'missing')
  $('refresh').textContent = t().refresh
  if (!lists) return
  if (lists.error) {
    box.classList.add('missing')
    text.textContent = /no saved copy/.test(lists.error) ? t().trustNone : format(t().trustError, { error: lists.error })
  } else {
    const when = formatTime(lists.fetchedAt)
    const parts = [format(t().trustUpdated, { time: when }), format(t().trustKeys, { n: lists.keys }),
      format(t().revoked, { n: lists.revoked }), format(t().rulesCount, { n: lists.countries })]
    if (Date.now() - Date.parse(lists.fetchedAt) > STALE_MS) {
      box.classList.add('stale')
      parts.push(t().trustStale)
    }
    text.textContent = parts.join(' · ')
    text.dataset.fetchedAt = lists.fetchedAt
  }
  const offline = !navigator.onLine || (lists && lists.fromCache)
  const network = $('network')
  network.textContent = offline ? t().offline : t().online
  network.classList.toggle('offline', Boolean(offline))
}

function formatTime (iso) {
  const date = new Date(iso)
  return new Intl.DateTimeFormat(state.language === 'vi' ? 'vi-VN' : 'en-GB', {
    dateStyle: 'medium', timeStyle: 'short'
  }).format(date)
}

// ---------------------------------------------------------------- result

async function runVerification (text) {
  const result = await check(text)
  state.last = { hc1: text, result }
  render(result)
  return result
}

/** Verify what was scanned, picked or pasted, and show the verdict. */
async function showResult (hc1) {
  const text = String(hc1 || '').trim()
  if (!text) return
  $('input-error').hidden = true
  const section = $('result')
  section.hidden = false
  $('verdict').dataset.valid = ''
  $('verdict-word').textContent = t().checking
  $('verdict-note').textContent = ''
  const result = await runVerification(text)
  section.scrollIntoView({ block: 'start' })
  // Tests (and anyone watching) can wait for the next verdict.
  document.documentElement.dataset.verified = String(Number(document.documentElement.dataset.verified || 0) + 1)
  document.dispatchEvent(new CustomEvent('hoso-verified', { detail: result }))
  return result
}

function render (result) {
  const words = t()
  const verdict = $('verdict')
  const where = countryName(result.country)
  verdict.dataset.valid = String(result.valid)
  verdict.dataset.authentic = String(result.authentic)
  $('verdict-word').textContent = result.valid ? words.valid : words.invalid
  $('verdict-note').textContent = result.valid
    ? format(words.rulesValidNote, { country: where })
    : result.authentic
      ? (result.rulesMissing ? format(words.rulesMissing, { country: where })
          : format(words.rulesInvalidNote, { country: where }))
      : words.invalidNote
  const authentic = $('authentic')
  authentic.dataset.authentic = String(result.authentic)
  authentic.textContent = result.authentic ? words.authentic : words.notAuthentic

  const rules = $('rules')
  rules.replaceChildren()
  for (const rule of result.rules) {
    const item = document.createElement('li')
    item.dataset.rule = rule.id
    item.dataset.result = rule.result
    const status = document.createElement('span')
    status.className = 'status'
    status.textContent = words.ruleStatus[rule.result] || rule.result
    const id = document.createElement('span')
    id.className = 'rule-id'
    id.textContent = rule.id
    item.append(status, rule.description[state.language] || rule.description.en, id)
    rules.append(item)
  }
  $('rules-heading').textContent = format(words.rulesHeading, { country: where })
  $('rules-box').hidden = result.rules.length === 0

  const reasons = $('reasons')
  reasons.replaceChildren()
  for (const check of result.checks.filter((item) => item.status === 'failed')) {
    const item = document.createElement('li')
    item.dataset.check = check.name
    item.append(words.checks[check.name] || check.name)
    const detail = document.createElement('span')
    detail.className = 'detail'
    detail.textContent = check.reason
    item.append(detail)
    reasons.append(item)
  }

  const holder = $('holder')
  holder.replaceChildren()
  if (result.authentic) {
    for (const [label, value, className] of holderRows(result)) {
      if (value === null || value === undefined || value === '') continue
      const dt = document.createElement('dt')
      dt.textContent = label
      const dd = document.createElement('dd')
      dd.textContent = value
      if (className) dd.className = className
      holder.append(dt, dd)
    }
  }
  $('compare-id').hidden = !result.authentic

  const checks = $('checks')
  checks.replaceChildren()
  for (const check of result.checks) {
    const item = document.createElement('li')
    item.className = check.status
    item.textContent = `${check.name} — ${words.status[check.status] || check.status}: ${check.reason}`
    checks.append(item)
  }
}

function holderRows (result) {
  const words = t()
  const { holder, certificate } = result
  const c = certificate || {}
  const h = holder || {}
  const name = [h.fn, h.gn].filter(Boolean).join(' ')
  const latin = [h.fnt, h.gnt].filter(Boolean).join('<<')
  const rows = [
    [words.name, name, 'name'],
    [words.nameLatin, latin, 'latin'],
    [words.dob, formatDate(h.dob)]
  ]
  if (c.type === 'vaccination') {
    const product = VALUESETS.mp[c.mp] || c.mp
    const disease = VALUESETS.tg[c.tg]
    rows.push([words.vaccine, disease ? `${product} (${disease})` : product])
    rows.push([words.dose, c.dn !== null && c.sd !== null ? `${c.dn}/${c.sd}` : null])
    rows.push([words.date, formatDate(c.dt)])
  } else if (c.type === 'test') {
    rows.push([words.type.test, VALUESETS.tg[c.tg] || c.tg])
    rows.push([words.testDate, c.sc ? formatTime(c.sc) : null])
  } else if (c.type === 'recovery') {
    rows.push([words.type.recovery, VALUESETS.tg[c.tg] || c.tg])
    rows.push([words.recoveryDate, formatDate(c.fr)])
  }
  rows.push([words.country, countryName(c.co)])
  rows.push([words.validUntil, c.exp ? formatTime(c.exp) : null])
  return rows
}

function formatDate (value) {
  if (typeof value !== 'string') return null
  const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(value.slice(0, 10))
  if (!m) return value // year-only and year-month birth dates stay as written
  return state.language === 'vi' ? `${m[3]}/${m[2]}/${m[1]}` : `${m[1]}-${m[2]}-${m[3]}`
}

function countryName (code) {
  if (!code) return null
  try {
    const name = new Intl.DisplayNames([state.language], { type: 'region' }).of(code)
    if (name && name !== code) return `${name} (${code})`
  } catch {}
  return VALUESETS.co[code] ? `${VALUESETS.co[code]} (${code})` : code
}

function clearResult () {
  state.last = null
  $('result').hidden = true
  $('hc1').value = ''
  $('hc1').focus()
}

// ---------------------------------------------------------------- QR codes: camera and photos

function readQr (source, width, height, inversion = 'dontInvert') {
  const canvas = document.createElement('canvas')
  canvas.width = width
  canvas.height = height
  const context = canvas.getContext('2d', { willReadFrequently: true })
  context.drawImage(source, 0, 0, width, height)
  const image = context.getImageData(0, 0, width, height)
  const code = jsQR(image.data, width, height, { inversionAttempts: inversion })
  return code ? code.data : null
}

function fit (width, height, largest) {
  const scale = Math.min(1, largest / Math.max(width, height))
  return [Math.round(width * scale), Math.round(height * scale)]
}

async function readPhoto (file) {
  const bitmap = await createImageBitmap(file)
  try {
    for (const largest of [1200, 2000, 3000]) {
      const [width, height] = fit(bitmap.width, bitmap.height, largest)
      const text = readQr(bitmap, width, height, 'attemptBoth')
      if (text) return text
      if (width === bitmap.width && height === bitmap.height) break
    }
    return null
  } finally {
    bitmap.close()
  }
}

async function startCamera () {
  $('input-error').hidden = true
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false
    })
  } catch (error) {
    showInputError(format(t().cameraError, { error: error.message || error.name }))
    return
  }
  const video = $('video')
  video.srcObject = state.stream
  $('camera').hidden = false
  await video.play().catch(() => {})
  state.scanning = true
  scanFrame()
}

function scanFrame () {
  if (!state.scanning) return
  const video = $('video')
  if (video.readyState >= 2 && video.videoWidth) {
    const [width, height] = fit(video.videoWidth, video.videoHeight, 800)
    const text = readQr(video, width, height)
    if (text) {
      stopCamera()
      $('hc1').value = text
      showResult(text)
      return
    }
  }
  setTimeout(() => requestAnimationFrame(scanFrame), 120)
}

function stopCamera () {
  state.scanning = false
  if (state.stream) for (const track of state.stream.getTracks()) track.stop()
  state.stream = null
  $('video').srcObject = null
  $('camera').hidden = true
}

function showInputError (message) {
  const box = $('input-error')
  box.textContent = message
  box.hidden = false
}

// ---------------------------------------------------------------- language

function applyLanguage () {
  const words = t()
  document.documentElement.lang = state.language
  document.title = `HoSo – ${words.title}`
  for (const element of document.querySelectorAll('[data-i18n]')) {
    element.textContent = words[element.dataset.i18n]
  }
  for (const element of document.querySelectorAll('[data-i18n-placeholder]')) {
    element.placeholder = words[element.dataset.i18nPlaceholder]
  }
  for (const button of document.querySelectorAll('.lang')) {
    button.setAttribute('aria-pressed', String(button.dataset.lang === state.language))
  }
  if (state.at !== null) {
    $('clock').hidden = false
    $('clock').textContent = format(words.clockOverride, { time: new Date(state.at).toISOString() })
  }
  renderLists()
  renderCountries()
  if (state.last) render(state.last.result)
}

// ---------------------------------------------------------------- start

function wire () {
  for (const button of document.querySelectorAll('.lang')) {
    button.addEventListener('click', () => {
      state.language = button.dataset.lang
      storage.set('hoso-verifier-lang', state.language)
      applyLanguage()
    })
  }
  $('paste-form').addEventListener('submit', (event) => {
    event.preventDefault()
    showResult($('hc1').value)
  })
  $('hc1').addEventListener('keydown', (event) => {
    // Desk QR scanners type the text and press Enter.
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault()
      showResult($('hc1').value)
    }
  })
  $('hc1').addEventListener('paste', () => setTimeout(() => showResult($('hc1').value), 0))
  $('scan').addEventListener('click', startCamera)
  $('stop').addEventListener('click', stopCamera)
  $('photo').addEventListener('change', async (event) => {
    const file = event.target.files && event.target.files[0]
    event.target.value = ''
    if (!file) return
    const text = await readPhoto(file).catch(() => null)
    if (!text) return showInputError(t().noQrInPhoto)
    $('hc1').value = text
    showResult(text)
  })
  $('again').addEventListener('click', clearResult)
  $('country').addEventListener('change', async (event) => {
    state.country = event.target.value
    storage.set('hoso-verifier-country', state.country)
    if (state.last) {
      await runVerification(state.last.hc1) // the verdict on screen follows the country
      document.documentElement.dataset.verified = String(Number(document.documentElement.dataset.verified || 0) + 1)
    }
  })
  $('refresh').addEventListener('click', refreshLists)
  window.addEventListener('online', () => { refreshLists() })
  window.addEventListener('offline', renderLists)
  setInterval(() => { if (document.visibilityState === 'visible') refreshLists() }, REFRESH_MS)
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) $('scan').hidden = true
}

async function registerServiceWorker () {
  if (!('serviceWorker' in navigator)) return null
  try {
    const registration = await navigator.serviceWorker.register('/verify/sw.js', { scope: '/verify' })
    const timeout = new Promise((resolve) => setTimeout(resolve, 10000))
    await Promise.race([navigator.serviceWorker.ready, timeout])
    return registration
  } catch (error) {
    console.warn('service worker not registered:', error)
    return null
  }
}

const ready = (async () => {
  wire()
  applyLanguage()
  const worker = registerServiceWorker()
  await loadSavedLists()
  await refreshLists()
  await worker
  document.documentElement.dataset.ready = 'true'
  return state.lists
})()

// For tests and other tools: the same verification the page shows.
window.hosoVerifier = {
  ready,
  verify,
  check,
  showResult,
  refreshLists,
  get lists () { return state.lists }
}
