#!/usr/bin/python3
"""One libtorrent (rasterbar, python3-libtorrent) peer as its own process.

Seeds or leeches one .torrent; logs tracker and progress events to stdout,
one line each, for the harness to read:
  TRACKER_REPLY <url> peers=N      an announce was answered
  TRACKER_ERROR <url> <message>    an announce failed
  PROGRESS <fraction> <state> peers=N
  FINISHED                         all pieces on disk and verified
Commands on stdin, one a line: `reannounce`, `quit`.
"""
import argparse
import select
import sys
import time

import libtorrent as lt


def log(*a):
    print(f"{time.monotonic():.3f}", *a, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--listen", required=True, help="IP:PORT or [IPv6]:PORT")
    ap.add_argument("--upload-limit", type=int, default=0, help="bytes/s, 0 = none")
    ap.add_argument("--min-announce-interval", type=int, default=2)
    ap.add_argument("--reannounce-every", type=float, default=0,
                    help="force an announce every N s (UDP trackers: libtorrent's own minimum is 60 s)")
    args = ap.parse_args()

    s = lt.session({
        "listen_interfaces": args.listen,
        "outgoing_interfaces": args.listen.rsplit(":", 1)[0].strip("[]"),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "min_announce_interval": args.min_announce_interval,
        # retry a failed tracker soon (default backoff grows to minutes)
        "tracker_backoff": 10,
        "tracker_receive_timeout": 3,
        "tracker_completion_timeout": 10,
        "announce_to_all_trackers": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.connect_notification
        | lt.alert.category_t.peer_notification,
        "user_agent": "riptide-e2e/libtorrent-" + lt.__version__,
    })
    p = lt.add_torrent_params()
    p.ti = lt.torrent_info(args.torrent)
    p.save_path = args.save_path
    p.flags &= ~lt.torrent_flags.auto_managed
    p.flags &= ~lt.torrent_flags.paused
    h = s.add_torrent(p)
    if args.upload_limit:
        # Per torrent: loopback peers are in libtorrent's "local" peer class,
        # which the session-wide upload_rate_limit does not cover. (Moving them
        # to the global class instead makes the choker wait ~30 s to unchoke.)
        h.set_upload_limit(args.upload_limit)
    log("STARTED", args.listen, lt.__version__)

    finished = False
    stdin_open = True
    last_reannounce = time.monotonic()
    last = 0.0
    last_key = None
    while True:
        for a in s.pop_alerts():
            t = type(a).__name__
            if t == "tracker_reply_alert":
                log("TRACKER_REPLY", a.url, f"peers={a.num_peers}")
            elif t in ("tracker_error_alert", "tracker_warning_alert", "scrape_failed_alert"):
                log("TRACKER_ERROR", getattr(a, "url", "?"), a.message())
            elif t == "torrent_finished_alert":
                finished = True
                log("FINISHED")
            elif t in ("listen_failed_alert", "torrent_error_alert", "file_error_alert"):
                log("ERROR", t, a.message())
            elif t in ("tracker_announce_alert", "listen_succeeded_alert", "peer_connect_alert",
                       "peer_disconnected_alert", "incoming_connection_alert", "state_changed_alert",
                       "torrent_checked_alert", "peer_error_alert", "hash_failed_alert"):
                log("EVENT", t, a.message())
        now = time.monotonic()
        if args.reannounce_every and now - last_reannounce >= args.reannounce_every:
            last_reannounce = now
            log("FORCE_REANNOUNCE")
            h.force_reannounce(0, -1, lt.torrent_handle.ignore_min_interval)
        if now - last >= 1.0:
            st = h.status()
            key = (round(st.progress, 2), str(st.state), st.num_peers)
            if key != last_key or now - last >= 10:  # on change, else every 10 s
                last, last_key = now, key
                log("PROGRESS", f"{st.progress:.4f}", str(st.state), f"peers={st.num_peers}",
                    f"up={st.upload_rate} down={st.download_rate}")
        r, _, _ = select.select([sys.stdin] if stdin_open else [], [], [], 0.1)
        if r:
            line = sys.stdin.readline()
            if not line:  # harness closed stdin: keep running until signalled
                stdin_open = False
                continue
            cmd = line.strip()
            if cmd == "reannounce":
                log("CMD reannounce")
                h.force_reannounce(0, -1, lt.torrent_handle.ignore_min_interval)
            elif cmd == "quit":
                break
    s.pause()
    log("QUIT")


if __name__ == "__main__":
    main()
