// Business rules of the country of arrival (EU DCC gateway format, CertLogic), evaluated with
// certlogic-js: the same selection and verdicts as passport/rules.py (tests/web/test_rules_agreement.py
// runs both on the same rules and payloads and compares every verdict).
import { evaluate } from 'certlogic-js'

export const RULES_URL = '/api/v1/passport/rules'
const ENGINE = 'CERTLOGIC'
const SUPPORTED_ENGINE_MAJOR = 1
const KINDS = { vaccination: 'Vaccination', test: 'Test', recovery: 'Recovery' }
const SEMVER = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/

function semver (text) {
  const m = SEMVER.exec(typeof text === 'string' ? text : '')
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null
}

function compareVersions (a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}

const iso = (ms) => new Date(ms).toISOString().slice(0, 19) + 'Z'

/** The rules document of GET /passport/rules: every country's rules and the value sets they name. */
export class RuleBook {
  constructor (document) {
    const countries = (document && document.countries) || {}
    this.rules = Object.values(countries).flatMap((entry) => entry.rules || [])
    this.valueSets = (document && document.valueSets) || {}
    this.countries = Object.keys(countries).sort()
  }
}

/**
 * The rules that apply, in identifier order (passport.rules.select_rules): the arrival country's
 * Acceptance rules and the issuing country's Invalidation rules, for General or the certificate's type,
 * valid at the clock, the highest version of each identifier.
 */
export function selectRules (rules, country, issuerCountry, kind, clockMs) {
  const types = new Set(['General'])
  if (KINDS[kind]) types.add(KINDS[kind])
  const chosen = new Map()
  for (const rule of rules) {
    const applies = (rule.Type === 'Acceptance' && rule.Country === country) ||
      (rule.Type === 'Invalidation' && issuerCountry != null && rule.Country === issuerCountry)
    if (!applies || !types.has(rule.CertificateType)) continue
    if (!(Date.parse(rule.ValidFrom) <= clockMs && clockMs < Date.parse(rule.ValidTo))) continue
    const best = chosen.get(rule.Identifier)
    if (!best || compareVersions(semver(rule.Version), semver(best.Version)) > 0) chosen.set(rule.Identifier, rule)
  }
  return [...chosen.keys()].sort().map((identifier) => chosen.get(identifier))
}

/** The `external` object rules read (passport.rules.external_data). */
export function externalData (clockMs, country, valueSets, { issuedMs, expiresMs, issuerCountry, kid }) {
  return {
    validationClock: iso(clockMs),
    valueSets,
    countryCode: country,
    exp: expiresMs == null ? null : iso(expiresMs),
    iat: issuedMs == null ? null : iso(issuedMs),
    issuerCountryCode: issuerCountry == null ? null : issuerCountry,
    kid: kid == null ? null : kid
  }
}

function describe (value) {
  if (value instanceof Date) return 'a date-time'
  const text = JSON.stringify(value)
  return (text === undefined ? String(value) : text).slice(0, 60)
}

const description = (rule, language) => {
  const entries = Array.isArray(rule.Description) ? rule.Description : []
  const find = (lang) => (entries.find((entry) => entry.lang === lang) || {}).desc
  return find(language) || find('en')
}

/** Evaluate each rule on {payload, external}: passed, failed or open (never throws). */
export function evaluateRules (rules, payload, external) {
  const data = { payload, external }
  const version = semver(payload && payload.ver)
  return rules.map((rule) => {
    const outcome = (result, reason = null) => ({
      id: rule.Identifier,
      version: rule.Version,
      country: rule.Country,
      type: rule.Type,
      certificate_type: rule.CertificateType,
      result,
      description: { vi: description(rule, 'vi'), en: description(rule, 'en') },
      affected_fields: rule.AffectedFields || [],
      reason
    })
    const engine = semver(rule.EngineVersion)
    if (rule.Engine !== ENGINE || !engine || engine[0] > SUPPORTED_ENGINE_MAJOR) {
      return outcome('open', `needs engine ${rule.Engine} ${rule.EngineVersion}`)
    }
    const schema = semver(rule.SchemaVersion)
    if (!version || !schema || version[0] !== schema[0]) {
      return outcome('open', `written for schema ${rule.SchemaVersion}, the certificate has ` +
        String(payload && payload.ver).slice(0, 12))
    }
    let value
    try {
      value = evaluate(rule.Logic, data)
    } catch (error) {
      return outcome('open', `could not be evaluated (${error.name || 'Error'})`)
    }
    if (value === true) return outcome('passed')
    if (value === false) return outcome('failed')
    return outcome('open', `evaluated to ${describe(value)}, not true or false`)
  })
}

/**
 * The rules of `country` on a verification result of verifyHc1 (passport.rules.check_rules).
 * @returns {object[]} one verdict per rule; empty when the payload could not be decoded
 */
export function checkRules (result, book, country, clockMs) {
  const c = result.certificate
  if (!result.payload || !c) return []
  const selected = selectRules(book.rules, country, c.iss, c.type, clockMs)
  const external = externalData(clockMs, country, book.valueSets, {
    issuedMs: c.iat ? Date.parse(c.iat) : null,
    expiresMs: c.exp ? Date.parse(c.exp) : null,
    issuerCountry: c.iss,
    kid: c.kid
  })
  return evaluateRules(selected, result.payload, external)
}

/** authentic, rules, valid (authentic and every rule passed) and reasons, as POST /passport/verify answers. */
export function withRules (result, outcomes, country) {
  return {
    ...result,
    authentic: result.valid,
    valid: result.valid && outcomes.every((outcome) => outcome.result === 'passed'),
    country,
    rules: outcomes,
    reasons: [...result.reasons, ...outcomes.filter((o) => o.result !== 'passed')
      .map((o) => `rule ${o.id}: ${o.result}: ${o.description.en}`)]
  }
}
