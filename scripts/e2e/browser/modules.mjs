// The npm packages of the e2e browser tests live outside the repo, in the
// cache dir scripts/e2e/install.sh fills with `npm ci --ignore-scripts`
// (E2E_NODE_DIR, default ${XDG_CACHE_HOME:-~/.cache}/riptide-e2e/node): ESM
// resolution ignores NODE_PATH, so they are imported by file path.
import os from 'node:os'
import path from 'node:path'
import fs from 'node:fs'
import { pathToFileURL } from 'node:url'

export const nodeDir = process.env.E2E_NODE_DIR ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'riptide-e2e', 'node')

export function modulePath (rel) {
  const p = path.join(nodeDir, 'node_modules', rel)
  if (!fs.existsSync(p)) {
    throw new Error(`${p} missing: run scripts/e2e/install.sh (or set E2E_NODE_DIR)`)
  }
  return p
}

export function nodeModule (rel) {
  return import(pathToFileURL(modulePath(rel)).href)
}
