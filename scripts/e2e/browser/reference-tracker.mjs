#!/usr/bin/env node
// Stand-in for riptide-ws in the e2e `ws` group (E2E_WS_TRACKER=reference):
// the WebSocket tracker of the npm `bittorrent-tracker` package (the reference
// implementation every WebTorrent client talks to), started with riptide-ws's
// command line and ready-file contract so the harness treats both alike:
//
//   node reference-tracker.mjs -c CONFIG --ready-file FILE
//
// CONFIG: the subset of riptide-ws's TOML the harness writes:
//   [network] address_ipv4 = "127.0.0.1:P"  address_ipv6 = "[::1]:P"       (ws://)
//   [tls] enabled = true  cert_path  key_path  address_ipv4  address_ipv6   (wss://)
//   [protocol] announce_interval = N   (seconds, sent to clients as `interval`)
// Once every socket listens, FILE gets one line per socket: `ws 127.0.0.1:P`,
// `ws [::1]:P`, `wss 127.0.0.1:Q`, `wss [::1]:Q` (written whole, then renamed).
// SIGTERM/SIGINT: close the listeners and exit 0.
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { nodeModule } from './modules.mjs'

const { default: Server } = await nodeModule('bittorrent-tracker/server.js') // not index.js: its client side loads native WebRTC (not built: --ignore-scripts)

function usage (msg) {
  console.error(`reference-tracker: ${msg}\nusage: reference-tracker.mjs -c CONFIG --ready-file FILE`)
  process.exit(2)
}

function parseToml (text) { // the flat subset above: [section], key = "string" | int | bool
  const out = {}
  let section = out
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim()
    if (!line) continue
    const sec = line.match(/^\[([A-Za-z0-9_.-]+)\]$/)
    if (sec) { section = out[sec[1]] = out[sec[1]] || {}; continue }
    const kv = line.match(/^([A-Za-z0-9_-]+)\s*=\s*(.+)$/)
    if (!kv) usage(`cannot parse config line: ${raw}`)
    let v = kv[2].trim()
    if (v.startsWith('"')) v = JSON.parse(v)
    else if (v === 'true' || v === 'false') v = v === 'true'
    else if (/^-?\d+$/.test(v)) v = Number(v)
    section[kv[1]] = v
  }
  return out
}

function splitAddr (addr) { // "127.0.0.1:P" / "[::1]:P" -> [host, port]
  const m = String(addr).match(/^\[?([^\]]+?)\]?:(\d+)$/)
  if (!m) usage(`bad address ${addr}`)
  return [m[1], Number(m[2])]
}

function fmtAddr (a) { return a.family === 'IPv6' || a.family === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}` }

const args = process.argv.slice(2)
let cfgPath, readyFile
for (let i = 0; i < args.length; i++) {
  if (args[i] === '-c' || args[i] === '--config') cfgPath = args[++i]
  else if (args[i] === '--ready-file') readyFile = args[++i]
  else usage(`unknown argument ${args[i]}`)
}
if (!cfgPath) usage('-c CONFIG is required')
const cfg = parseToml(fs.readFileSync(cfgPath, 'utf8'))
const interval = (cfg.protocol && cfg.protocol.announce_interval) || 120

// The ws server replies `interval = intervalMs / 1000 / 5` (its "shorter
// interval for WebSocket"): scale so clients are told `announce_interval`.
const tracker = new Server({
  udp: false,
  http: false,
  stats: false,
  ws: { noServer: true },
  interval: interval * 5 * 1000
})
for (const ev of ['start', 'complete', 'update', 'stop']) {
  tracker.on(ev, (peerId, params) => console.log(`announce ${ev} info_hash=${params.info_hash.slice(0, 12)} ` +
    `peer=${peerId} left=${params.left} offers=${(params.offers || []).length} ` +
    `answer=${params.answer ? 'yes' : 'no'}`))
}
tracker.on('warning', err => console.log(`warning: ${err.message}`))
tracker.on('error', err => console.log(`error: ${err.message}`))

const listeners = [] // [scheme, host, port, server]
const net = cfg.network || {}
for (const key of ['address_ipv4', 'address_ipv6']) {
  if (net[key]) listeners.push(['ws', ...splitAddr(net[key]), http.createServer()])
}
const tls = cfg.tls || {}
if (tls.enabled) {
  const opts = { cert: fs.readFileSync(tls.cert_path), key: fs.readFileSync(tls.key_path) }
  for (const key of ['address_ipv4', 'address_ipv6']) {
    if (tls[key]) listeners.push(['wss', ...splitAddr(tls[key]), https.createServer(opts)])
  }
}
if (!listeners.length) usage('no listen address configured')

let open = 0
const lines = []
for (const [scheme, host, port, srv] of listeners) {
  srv.on('request', (req, res) => { res.statusCode = 404; res.end('404 Not Found') })
  srv.on('upgrade', (req, socket, head) => {
    tracker.ws.handleUpgrade(req, socket, head, ws => tracker.ws.emit('connection', ws, req))
  })
  srv.on('tlsClientError', err => console.log(`${scheme} tls client error: ${err.message}`))
  srv.on('error', err => { console.error(`${scheme} ${host}:${port}: ${err.message}`); process.exit(1) })
  srv.listen({ host, port, ipv6Only: host.includes(':') }, () => {
    const line = `${scheme} ${fmtAddr(srv.address())}`
    console.log(`listening ${line}`)
    lines.push(line)
    if (++open === listeners.length && readyFile) {
      fs.writeFileSync(`${readyFile}.tmp`, lines.join('\n') + '\n')
      fs.renameSync(`${readyFile}.tmp`, readyFile)
    }
  })
}

function shutdown (sig) {
  console.log(`${sig}: closing`)
  for (const l of listeners) {
    l[3].close()
    l[3].closeAllConnections?.()
  }
  tracker.close?.()
  setTimeout(() => process.exit(0), 200).unref()
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
