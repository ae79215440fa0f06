// Which copy of the HTTP caching test suite the harness uses: CT_SUITE_DIR if set, else the
// vendored tree (tests/cache-tests/suite, copied next to the harness as ./suite by
// install.sh; ../suite when run from the repository itself).
import fs from 'fs'
import path from 'path'
import process from 'process'
import { fileURLToPath } from 'url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const suiteDir = process.env.CT_SUITE_DIR ||
  [path.join(here, 'suite'), path.join(here, '..', 'suite')].find(d => fs.existsSync(path.join(d, 'tests/index.mjs'))) ||
  path.join(here, 'suite')
