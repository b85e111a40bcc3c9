// Evaluate business rules with the verifier page's own code (web/verifier/src/lib/rules.js, certlogic-js)
// under node, for tests/web/test_rules_agreement.py: one JSON document on stdin, one on stdout.
//   in:  {"rules": [...], "valueSets": {...}, "cases": [{payload, country, issuer, kind, clock, iat, exp, kid}]}
//   out: [[{"id", "result"}, ...], ...]  (one list per case, the selected rules in order)
import { readFileSync } from 'node:fs'

import { evaluateRules, externalData, selectRules } from '../../web/verifier/src/lib/rules.js'

const input = JSON.parse(readFileSync(0, 'utf8'))
const out = input.cases.map((c) => {
  const selected = selectRules(input.rules, c.country, c.issuer, c.kind, c.clock)
  const external = externalData(c.clock, c.country, input.valueSets,
    { issuedMs: c.iat, expiresMs: c.exp, issuerCountry: c.issuer, kid: c.kid })
  return evaluateRules(selected, c.payload, external).map((o) => ({ id: o.id, result: o.result }))
})
process.stdout.write(JSON.stringify(out))
