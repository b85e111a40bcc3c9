// DCC JSON schema validation, as passport/schema.py does it: the release named by the payload's
// ``ver`` (else the newest patch of its minor version, else the newest 1.x), ``format`` not asserted.
// The validators are generated from passport/schemas/ at build time (Ajv standalone code: no eval at
// run time, so the page's Content-Security-Policy needs no 'unsafe-eval').
import { VALIDATORS } from 'virtual:dcc-schemas'

const SEMVER = /^(\d+)\.(\d+)\.(\d+)$/
const byVersion = (a, b) => {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2]
}
export const KNOWN_VERSIONS = Object.keys(VALIDATORS).sort(byVersion)
const LATEST = '1.3.3'

const pyRepr = (text) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`

/** @returns {[string|null, string]} the release and a note on the choice */
export function chooseVersion (declared) {
  if (typeof declared !== 'string') return [null, "the payload has no string 'ver'"]
  if (!SEMVER.test(declared)) return [null, `'ver' ${pyRepr(declared.slice(0, 20))} is not a version number`]
  if (KNOWN_VERSIONS.includes(declared)) return [declared, `schema ${declared}`]
  const [, major, minor] = SEMVER.exec(declared)
  const sameMinor = KNOWN_VERSIONS.filter((v) => v.startsWith(`${major}.${minor}.`))
  if (sameMinor.length) {
    const chosen = sameMinor[sameMinor.length - 1]
    return [chosen, `no schema ${declared}; used ${chosen}`]
  }
  if (major === '1') return [LATEST, `no schema ${declared}; used ${LATEST}`]
  return [null, `no schema for major version ${major}`]
}

/**
 * @param {any} payload plain JSON data (see toJson in verify.js)
 * @returns {{ok: boolean, version: string|null, message: string}}
 */
export function validatePayload (payload) {
  const declared = payload && typeof payload === 'object' && !Array.isArray(payload) ? payload.ver : undefined
  const [version, note] = chooseVersion(declared)
  if (version === null) return { ok: false, version: null, message: note }
  const validate = VALIDATORS[version]
  if (validate(payload)) return { ok: true, version, message: note }
  const error = validate.errors && validate.errors[0]
  const where = error ? `${error.instancePath || '/'} ${error.message}` : 'invalid'
  return { ok: false, version, message: `${note}: ${where}`.slice(0, 240) }
}
