#!/usr/bin/env node
// One browser transfer: a file moves between two WebTorrent pages in headless
// Chromium (Debian's /usr/bin/chromium driven by playwright-core) that meet
// only through the WebSocket tracker at --tracker. Run by e2e.py (`run ws`),
// inside a network namespace that holds only `lo` (see README.md), or alone:
//
//   node transfer.mjs --tracker ws://127.0.0.1:P --order seeder-first|leecher-first
//        [--ca ca.pem] [--size BYTES] [--timeout S] [--workdir DIR]
//
// The harness makes SIZE random bytes, serves them, page.html, page.mjs and
// WebTorrent's browser bundle from a static HTTP server on 127.0.0.1, and
// computes the torrent (v1, one file `data.bin`, private). The seeder page
// seeds the bytes with the tracker as its only announce URL (its info hash
// must equal ours); the leecher page adds a magnet URI whose only `tr` is the
// tracker. The second page starts only once the first page's first announce
// was answered. PASS when the leecher's SHA-256 equals the original's and it
// downloaded at least the file's size over the wire.
//
// wss://: the browser trusts --ca (and only it, beside the system roots) through
// an NSS database in a private $HOME (certutil, Debian libnss3-tools).
// Last line: `PASS <seconds>` (second page's start to a verified file) or
// `FAIL <reason>`, then the pages' console logs; exit 0 / 1 (2: usage).
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { modulePath, nodeModule } from './modules.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const NAME = 'data.bin'
const PIECE = 64 << 10

// ------------------------------------------------------------------ arguments
const opt = {
  tracker: null,
  order: 'seeder-first',
  ca: null,
  size: 4 << 20,
  timeout: 60,
  announceTimeout: 20,
  workdir: null,
  chromium: process.env.E2E_CHROMIUM || '/usr/bin/chromium'
}
{
  const a = process.argv.slice(2)
  for (let i = 0; i < a.length; i++) {
    const k = a[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    if (!(k in opt) || i + 1 >= a.length) { console.error(`usage: see the head of ${process.argv[1]} (bad argument ${a[i]})`); process.exit(2) }
    opt[k] = a[++i]
  }
  if (!opt.tracker || !['seeder-first', 'leecher-first'].includes(opt.order)) {
    console.error('usage: transfer.mjs --tracker URL --order seeder-first|leecher-first [--ca PEM] [--size N] [--timeout S] [--workdir DIR]')
    process.exit(2)
  }
  opt.size = Number(opt.size)
  opt.timeout = Number(opt.timeout)
  opt.announceTimeout = Number(opt.announceTimeout)
}
const workdir = opt.workdir || fs.mkdtempSync(path.join(os.tmpdir(), 'riptide-e2e-browser-'))
fs.mkdirSync(workdir, { recursive: true })

const tStart = Date.now()
const note = (...a) => console.log(`[harness ${((Date.now() - tStart) / 1000).toFixed(2)}s]`, ...a)

// ------------------------------------------------------------------ the file and its torrent
function bencode (v) {
  if (typeof v === 'number') return Buffer.from(`i${v}e`)
  if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from(`${v.length}:`), v])
  if (typeof v === 'string') return bencode(Buffer.from(v))
  const keys = Object.keys(v).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
  return Buffer.concat([Buffer.from('d'), ...keys.flatMap(k => [bencode(k), bencode(v[k])]), Buffer.from('e')])
}
const data = crypto.randomBytes(opt.size)
const sha256 = crypto.createHash('sha256').update(data).digest('hex')
const pieces = []
for (let off = 0; off < data.length; off += PIECE) pieces.push(crypto.createHash('sha1').update(data.subarray(off, off + PIECE)).digest())
// What create-torrent (inside WebTorrent) makes for one file, `private: true`.
const info = { length: data.length, name: NAME, 'piece length': PIECE, pieces: Buffer.concat(pieces), private: 1 }
const infoHash = crypto.createHash('sha1').update(bencode(info)).digest('hex')
const magnet = `magnet:?xt=urn:btih:${infoHash}&dn=${NAME}&tr=${encodeURIComponent(opt.tracker)}`
note(`${opt.size} bytes, sha256 ${sha256.slice(0, 16)}…, info hash ${infoHash}, tracker ${opt.tracker}, ${opt.order}`)

// ------------------------------------------------------------------ static server (127.0.0.1 only)
const files = {
  '/': [path.join(HERE, 'page.html'), 'text/html; charset=utf-8'],
  '/page.mjs': [path.join(HERE, 'page.mjs'), 'text/javascript'],
  '/rtc-spy.mjs': [path.join(HERE, 'rtc-spy.mjs'), 'text/javascript'],
  '/webtorrent.min.js': [modulePath('webtorrent/dist/webtorrent.min.js'), 'text/javascript']
}
const server = http.createServer((req, res) => {
  const u = req.url.split('?')[0]
  if (u === '/data.bin') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length })
    return res.end(data)
  }
  if (u === '/favicon.ico') { res.writeHead(204); return res.end() }
  const f = files[u]
  if (!f) { res.writeHead(404); return res.end() }
  res.writeHead(200, { 'content-type': f[1], 'cache-control': 'no-store' })
  fs.createReadStream(f[0]).pipe(res)
})
await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).on('error', reject))
const origin = `http://127.0.0.1:${server.address().port}`

// ------------------------------------------------------------------ wss: trust the test CA
const env = { ...process.env }
if (opt.ca) {
  // Chromium on Linux takes locally trusted roots from the user's NSS database
  // ($HOME/.pki/nssdb): a private HOME holding the test CA as a trusted root.
  // The certificate is still verified (name, chain, dates); no error is ignored.
  const home = path.join(workdir, 'home')
  const db = path.join(home, '.pki', 'nssdb')
  fs.mkdirSync(db, { recursive: true })
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password'])
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'riptide e2e test CA', '-t', 'C,,', '-i', opt.ca])
  env.HOME = home
  note('test CA trusted in', db)
}
delete env.SSL_CERT_FILE // not read by Chromium; keep the environment plain
delete env.CURL_CA_BUNDLE

// ------------------------------------------------------------------ browser
const { chromium } = await nodeModule('playwright-core/index.mjs')
const logs = [] // every console line of both pages, and the harness's notes
const pages = {}
let browser = null
let finished = false

async function finish (ok, msg) {
  if (finished) return
  finished = true
  clearTimeout(caseTimer)
  const states = {}
  for (const [role, page] of Object.entries(pages)) {
    try { states[role] = await page.evaluate(() => window.e2eState) } catch { states[role] = null }
  }
  try { if (browser) await Promise.race([browser.close(), new Promise(resolve => setTimeout(resolve, 5000))]) } catch {}
  server.close()
  server.closeAllConnections?.()
  if (!ok) {
    console.log('--- page console logs')
    for (const l of logs) console.log(`  | ${l}`)
    for (const [role, s] of Object.entries(states)) {
      if (!s) continue
      console.log(`--- ${role} state: announces answered ${s.announces}, wires ${s.wires}, downloaded ${s.downloaded}, ` +
        `uploaded ${s.uploaded}, trackers ${JSON.stringify(s.announce)}, ICE candidates ${JSON.stringify(s.candidates)}, ` +
        `warnings ${JSON.stringify(s.warnings)}, errors ${JSON.stringify(s.errors)}`)
    }
  }
  console.log(ok ? `PASS ${msg}` : `FAIL ${msg}`)
  process.exit(ok ? 0 : 1)
}
const caseTimer = setTimeout(() => finish(false, `case timeout (${opt.timeout}s) at: ${phase}`), opt.timeout * 1000)
let phase = 'launching Chromium'
process.on('SIGTERM', () => finish(false, `SIGTERM at: ${phase}`))
process.on('SIGINT', () => finish(false, `SIGINT at: ${phase}`))
process.on('unhandledRejection', e => finish(false, `harness error at ${phase}: ${e && e.stack ? e.stack : e}`))

const rtcConfig = { iceServers: [] } // no STUN/TURN: host candidates on lo only
try {
  browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    env,
    timeout: 30000,
    args: [
      '--no-sandbox', // root in CI; the page is our own
      '--allow-loopback-in-peer-connection', // WebRTC gathers candidates on lo (the only interface here)
      // No host name resolves (the rules map IP literals too: except loopback's).
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE ::1',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--metrics-recording-only',
      '--disable-domain-reliability'
    ]
  })
} catch (e) {
  await finish(false, `Chromium (${opt.chromium}) did not start: ${e.message.split('\n')[0]}`)
}
note(`Chromium ${browser.version()} via playwright-core`)

async function openPage (role) {
  // One context per page: separate storage, as two users' browsers would be.
  const ctx = await browser.newContext()
  // Without camera/mic permission Chromium gathers candidates only on the interface of
  // the default route (none here: no candidate at all); with it, every interface that
  // --allow-loopback-in-peer-connection admits, i.e. lo.
  await ctx.grantPermissions(['camera', 'microphone'], { origin })
  const page = await ctx.newPage()
  pages[role] = page
  page.on('console', m => logs.push(`${role}: ${m.text()}`))
  page.on('pageerror', e => logs.push(`${role}: page error: ${e.message}`))
  page.on('crash', () => logs.push(`${role}: page crashed`))
  page.on('websocket', ws => {
    logs.push(`${role}: websocket open ${ws.url()}`)
    ws.on('socketerror', e => logs.push(`${role}: websocket error ${e}`))
    ws.on('close', () => logs.push(`${role}: websocket closed ${ws.url()}`))
  })
  await page.goto(`${origin}/`, { waitUntil: 'load' })
  await page.waitForFunction(() => window.e2e !== undefined, null, { timeout: 10000 })
  return page
}

async function start (role) {
  phase = `${role} page start`
  const page = await openPage(role)
  if (role === 'seeder') await page.evaluate(a => window.e2e.seed(a), { tracker: opt.tracker, name: NAME, pieceLength: PIECE, rtcConfig })
  else await page.evaluate(a => window.e2e.leech(a), { magnet, rtcConfig })
  note(`${role} started`)
  return page
}

const state = role => pages[role].evaluate(() => window.e2eState)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Poll the page's state until pred(state); fail on a page error (and, with
// failOnWarning, on a tracker warning such as "Error connecting to wss://...").
async function waitFor (role, what, pred, seconds, failOnWarning = false) {
  phase = `${role}: ${what}`
  const end = Date.now() + seconds * 1000
  for (;;) {
    const s = await state(role)
    if (s.errors.length) return finish(false, `${role}: ${s.errors[0]} (while waiting for ${what})`)
    if (failOnWarning && s.warnings.length) return finish(false, `${role}: tracker warning "${s.warnings[0]}" (while waiting for ${what})`)
    if (pred(s)) return s
    if (Date.now() > end) return finish(false, `${role}: no ${what} within ${Math.round(seconds)}s`)
    await sleep(100)
  }
}

async function main () {
  const [first, second] = opt.order === 'seeder-first' ? ['seeder', 'leecher'] : ['leecher', 'seeder']
  await start(first)
  await waitFor(first, 'answered announce', s => s.announces >= 1, opt.announceTimeout, true)
  note(`${first}'s first announce answered`)
  const t0 = Date.now()
  await start(second)

  const seeder = await waitFor('seeder', 'info hash', s => s.infoHash, 20)
  if (seeder.infoHash !== infoHash) await finish(false, `seeder's info hash ${seeder.infoHash} != ${infoHash} (torrent built differently)`)
  const leecher = await waitFor('leecher', 'complete, verified file', s => s.done, Math.max(1, opt.timeout - (Date.now() - tStart) / 1000))
  const secs = (Date.now() - t0) / 1000
  for (const [role, s] of [['seeder', await state('seeder')], ['leecher', leecher]]) {
    if (JSON.stringify(s.announce) !== JSON.stringify([opt.tracker])) {
      await finish(false, `${role}'s trackers are ${JSON.stringify(s.announce)}, expected only ${opt.tracker}`)
    }
  }
  if (leecher.sha256 !== sha256) await finish(false, `leecher's file sha256 ${String(leecher.sha256).slice(0, 16)}… != original ${sha256.slice(0, 16)}… (${leecher.length} bytes)`)
  if (leecher.downloaded < opt.size) await finish(false, `leecher downloaded only ${leecher.downloaded} of ${opt.size} bytes over the wire`)
  note(`leecher verified: ${leecher.downloaded} bytes downloaded, ICE candidates ${JSON.stringify(leecher.candidates)}`)
  await finish(true, `${secs.toFixed(1)}s`)
}

main().catch(e => finish(false, `harness error at ${phase}: ${e && e.message ? e.message.split('\n')[0] : e}`))
