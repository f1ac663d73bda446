// One WebTorrent peer in a page, driven by transfer.mjs through
// window.e2e.seed / window.e2e.leech; progress is read from window.e2eState.
// Loaded by page.html from the harness's own static server (127.0.0.1).
import * as rtc from '/rtc-spy.mjs' // first: WebTorrent's bundle takes RTCPeerConnection when it loads
import WebTorrent from '/webtorrent.min.js'

const state = {
  role: 'page',
  announces: 0, // tracker announces answered ('trackerAnnounce': a reply with complete/incomplete)
  warnings: [],
  errors: [],
  wires: 0, // peer connections (WebRTC data channels that finished the BitTorrent handshake)
  infoHash: null,
  announce: null, // the torrent's tracker list as WebTorrent uses it
  metadata: false,
  done: false,
  downloaded: 0,
  uploaded: 0,
  sha256: null,
  candidates: [] // local ICE candidates WebRTC gathered (type address:port), for the failure report
}
window.e2eState = state

const t0 = performance.now()
function log (...a) {
  console.log(`[${state.role} ${((performance.now() - t0) / 1000).toFixed(2)}s]`, ...a)
}

rtc.events.addEventListener('candidate', ev => {
  if (!state.candidates.includes(ev.detail)) { state.candidates.push(ev.detail); log('ICE candidate', ev.detail) }
})
rtc.events.addEventListener('state', ev => log('peer connection', ev.detail))

function newClient (rtcConfig) {
  // No tracker but ours: no default/global announce lists, nothing else that finds peers.
  globalThis.WEBTORRENT_ANNOUNCE = []
  return new WebTorrent({
    dht: false,
    lsd: false,
    utPex: false,
    webSeeds: false,
    natUpnp: false,
    natPmp: false,
    tracker: { rtcConfig } // iceServers: ours only (none): no STUN server anywhere
  })
}

function watch (client, torrent) {
  client.on('error', e => { state.errors.push(String(e.message || e)); log('client error', String(e.message || e)) })
  torrent.on('infoHash', () => { state.infoHash = torrent.infoHash; log('info hash', torrent.infoHash) })
  torrent.on('metadata', () => { state.metadata = true; log('metadata', torrent.name, torrent.length, 'bytes') })
  torrent.on('ready', () => { state.announce = [...torrent.announce]; log('ready; trackers', JSON.stringify(torrent.announce)) })
  torrent.on('trackerAnnounce', () => { state.announces++; log('tracker announce answered', `#${state.announces}`) })
  torrent.on('warning', e => { const m = String(e.message || e); state.warnings.push(m); log('warning', m) })
  torrent.on('error', e => { const m = String(e.message || e); state.errors.push(m); log('torrent error', m) })
  torrent.on('wire', (wire, addr) => { state.wires++; log('wire', addr || '(webrtc)', `peers ${torrent.numPeers}`) })
  const tick = setInterval(() => {
    state.downloaded = torrent.downloaded
    state.uploaded = torrent.uploaded
  }, 200)
  torrent.on('close', () => clearInterval(tick))
}

async function sha256Hex (buf) {
  const d = await crypto.subtle.digest('SHA-256', buf)
  return [...new Uint8Array(d)].map(b => b.toString(16).padStart(2, '0')).join('')
}

window.e2e = {
  // Seed /data.bin (served by the harness) as `name`: a v1 single-file private torrent whose
  // only tracker is `tracker`; its info hash must be the one the harness computed.
  async seed ({ tracker, name, pieceLength, rtcConfig }) {
    state.role = 'seeder'
    const buf = await (await fetch('/data.bin')).arrayBuffer()
    log('seeding', buf.byteLength, 'bytes via', tracker)
    const client = newClient(rtcConfig)
    const torrent = client.seed(new File([buf], name), {
      name,
      pieceLength,
      private: true,
      announceList: [[tracker]],
      createdBy: 'riptide e2e'
    })
    watch(client, torrent)
    torrent.on('seed', () => log('seeding ready'))
    torrent.on('upload', () => { if (!state.uploadLogged) { state.uploadLogged = true; log('first upload') } })
  },

  // Fetch the torrent by magnet URI (only our tracker in it) and download into memory;
  // when done, state.sha256 is the SHA-256 of the received file.
  async leech ({ magnet, rtcConfig }) {
    state.role = 'leecher'
    log('leeching', magnet)
    const client = newClient(rtcConfig)
    const torrent = client.add(magnet)
    watch(client, torrent)
    torrent.on('done', async () => {
      state.downloaded = torrent.downloaded
      log('done:', torrent.downloaded, 'bytes downloaded from', torrent.numPeers, 'peer(s)')
      try {
        const data = await torrent.files[0].arrayBuffer()
        state.length = data.byteLength
        state.sha256 = await sha256Hex(data)
        log('sha256', state.sha256)
      } catch (e) {
        state.errors.push(`reading the file: ${e.message || e}`)
      }
      state.done = true
    })
  }
}
log('page loaded')
