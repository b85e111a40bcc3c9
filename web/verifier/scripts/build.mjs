// Build the verifier page into dist/: `npm ci && npm run build` (the Makefile does this).
//
// - src/app.js and src/sw.js are bundled by esbuild with the npm packages they import;
// - the DCC JSON schemas (passport/schemas/, the same files passport.verify uses) are compiled by Ajv
//   into standalone validation code at build time, so the page needs no eval;
// - the display names of the EU value sets (app/data/dcc-valuesets/) are bundled;
// - static files are copied, and the service worker gets a cache name derived from the build's content.
import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import Ajv2020 from 'ajv/dist/2020.js'
import standaloneCode from 'ajv/dist/standalone/index.js'
import * as esbuild from 'esbuild'

const HERE = dirname(fileURLToPath(import.meta.url))
const PAGE = resolve(HERE, '..')
const ROOT = resolve(PAGE, '..', '..')
const SRC = join(PAGE, 'src')
const DIST = join(PAGE, 'dist')
const SCHEMAS = join(ROOT, 'passport', 'schemas')
const VALUESETS = join(ROOT, 'app', 'data', 'dcc-valuesets')

function schemaModules () {
  const modules = {}
  const versions = readdirSync(SCHEMAS).filter((name) => name.endsWith('.combined-schema.json'))
    .map((name) => name.replace('.combined-schema.json', ''))
  for (const version of versions) {
    const schema = JSON.parse(readFileSync(join(SCHEMAS, `${version}.combined-schema.json`), 'utf8'))
    // One Ajv per release: every release declares the same $id. Formats are annotations (as in
    // passport.verify, which validates with formats=False).
    const ajv = new Ajv2020({ code: { source: true, esm: true }, validateFormats: false, strict: false, allErrors: false })
    const validate = ajv.compile(schema)
    modules[version] = standaloneCode(ajv, validate)
  }
  const index = versions.map((version, i) => `import v${i} from 'virtual:dcc-schema/${version}'`).join('\n') +
    `\nexport const VALIDATORS = {${versions.map((version, i) => `'${version}': v${i}`).join(', ')}}\n`
  return { modules, index }
}

function valuesetModule () {
  const names = {}
  for (const [key, file] of [['mp', 'vaccine-medicinal-product'], ['ma', 'vaccine-mah-manf'],
    ['vp', 'vaccine-prophylaxis'], ['tg', 'disease-agent-targeted'], ['co', 'country-2-codes']]) {
    const values = JSON.parse(readFileSync(join(VALUESETS, `${file}.json`), 'utf8')).valueSetValues
    names[key] = Object.fromEntries(Object.entries(values).map(([code, entry]) => [code, entry.display]))
  }
  return `export const VALUESETS = ${JSON.stringify(names)}\n`
}

export function virtualModules () {
  const { modules, index } = schemaModules()
  const valuesets = valuesetModule()
  return {
    name: 'hoso-virtual',
    setup (build) {
      build.onResolve({ filter: /^virtual:/ }, (args) => ({ path: args.path, namespace: 'hoso-virtual' }))
      build.onLoad({ filter: /.*/, namespace: 'hoso-virtual' }, (args) => {
        if (args.path === 'virtual:dcc-schemas') return { contents: index, loader: 'js', resolveDir: PAGE }
        if (args.path === 'virtual:dcc-valuesets') return { contents: valuesets, loader: 'js', resolveDir: PAGE }
        const version = args.path.replace('virtual:dcc-schema/', '')
        if (modules[version]) return { contents: modules[version], loader: 'js', resolveDir: PAGE }
        return { errors: [{ text: `unknown virtual module ${args.path}` }] }
      })
    }
  }
}

const STATIC = ['index.html', 'style.css', 'manifest.webmanifest', 'icon.svg']

async function main () {
  rmSync(DIST, { recursive: true, force: true })
  mkdirSync(DIST, { recursive: true })
  const common = {
    bundle: true,
    format: 'esm',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
    minify: true,
    sourcemap: true,
    legalComments: 'linked',
    logLevel: 'warning',
    plugins: [virtualModules()]
  }
  await esbuild.build({ ...common, entryPoints: [join(SRC, 'app.js')], outfile: join(DIST, 'app.js') })
  for (const name of STATIC) cpSync(join(SRC, name), join(DIST, name))

  // The service worker's cache is named after everything it caches, so a new build replaces it.
  const digest = createHash('sha256')
  for (const name of ['app.js', ...STATIC]) digest.update(readFileSync(join(DIST, name)))
  const version = digest.digest('hex').slice(0, 16)
  await esbuild.build({
    ...common,
    plugins: [],
    format: 'iife',
    entryPoints: [join(SRC, 'sw.js')],
    outfile: join(DIST, 'sw.js'),
    define: { __BUILD_VERSION__: JSON.stringify(version) }
  })
  writeFileSync(join(DIST, 'build.json'), JSON.stringify({ version, built_from: 'web/verifier/src' }) + '\n')
  console.log(`verifier page built into ${DIST} (version ${version})`)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
