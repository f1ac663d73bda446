// Imported by page.mjs before WebTorrent's bundle, which takes its
// RTCPeerConnection from the global when it loads: every peer connection the
// page makes then reports the ICE candidates it gathered (for the report).
const NativePC = window.RTCPeerConnection
export const candidates = []
export const events = new EventTarget()
window.RTCPeerConnection = class extends NativePC {
  constructor (...args) {
    super(...args)
    this.addEventListener('icecandidate', ev => {
      const c = ev.candidate
      if (c && c.candidate) {
        const s = `${c.type} ${c.protocol} ${c.address}:${c.port}`
        candidates.push(s)
        events.dispatchEvent(new CustomEvent('candidate', { detail: s }))
      }
    })
    this.addEventListener('connectionstatechange', () =>
      events.dispatchEvent(new CustomEvent('state', { detail: this.connectionState })))
  }
}
