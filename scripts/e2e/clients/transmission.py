"""Transmission 3.00 (Debian transmission-daemon), IPv4 only for UDP here.

Traps: it cannot reach a udp://[::1] tracker ("Could not connect to
tracker"); it ignores tracker peers in 127.0.0.0/8 and ::1 ("martian"), so
as a leecher it announces first and the seeder dials it; it sends `stopped`
then `started` within a second when a torrent is added; it logs nothing for
an answered announce with 0 peers, so the announce state is read over RPC
(trackerStats). Starts slowly (13-15 s per 8 MiB transfer on loopback).
"""
import json
import os
import time
import urllib.error
import urllib.request

from common import free_port
from riptide.procs import Proc

from .base import Client


class Transmission(Client):
    name = "transmission"
    families = {4}
    protocols = {"udp", "http", "https"}

    @classmethod
    def leech_first(cls, scheme, family):
        return True

    def start(self):
        j = self.job
        cfg = j.workdir / "config"
        watch = j.workdir / "watch"
        cfg.mkdir()
        watch.mkdir()
        self.rpc_port = free_port(("tcp",))
        self.session_id = ""
        self.first_ok = None
        settings = {
            "download-dir": str(j.save_dir), "incomplete-dir-enabled": False,
            "watch-dir": str(watch), "watch-dir-enabled": True, "start-added-torrents": True,
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
            "port-forwarding-enabled": False, "peer-port": j.port, "peer-port-random-on-start": False,
            "bind-address-ipv4": j.ip if j.family == 4 else "127.0.0.1",
            "bind-address-ipv6": j.ip if j.family == 6 else "::1",
            "rpc-enabled": True, "rpc-port": self.rpc_port, "rpc-bind-address": "127.0.0.1",
            "rpc-authentication-required": False, "rpc-whitelist": "127.0.0.1",
            "message-level": 3,
            "speed-limit-up-enabled": bool(j.upload_limit),
            "speed-limit-up": max(1, j.upload_limit // 1024),
        }
        (cfg / "settings.json").write_text(json.dumps(settings, indent=1))
        (watch / j.torrent.name).write_bytes(j.torrent.read_bytes())
        self.proc = Proc(self.label(), ["transmission-daemon", "-f", "-g", str(cfg),
                                        "--logfile", str(j.workdir / "transmission.log")],
                         j.workdir / "stdout.log", cwd=j.workdir,
                         # its libcurl's CA file for https trackers (Transmission reads the variable itself)
                         env={**os.environ, "CURL_CA_BUNDLE": str(j.ca_file)} if j.ca_file else None)

    def _rpc(self, method, arguments):
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(2):
            req = urllib.request.Request(f"http://127.0.0.1:{self.rpc_port}/transmission/rpc", data=body,
                                         headers={"X-Transmission-Session-Id": self.session_id})
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code == 409:
                    self.session_id = e.headers.get("X-Transmission-Session-Id", "")
                    continue
                return None
            except (OSError, ValueError):
                return None
        return None

    def announced(self):
        r = self._rpc("torrent-get", {"fields": ["trackerStats"]})
        try:
            ok = any(t.get("lastAnnounceSucceeded") for t in r["arguments"]["torrents"][0]["trackerStats"])
        except (TypeError, KeyError, IndexError):
            return False
        if ok and self.first_ok is None:
            self.first_ok = time.monotonic()
        # let its stopped+started pair at start settle before the other client announces
        return ok and time.monotonic() - self.first_ok >= 2.0

    def reannounce(self):
        self._rpc("torrent-reannounce", {})

    def tail(self, n=20):
        try:
            lines = (self.job.workdir / "transmission.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
        lines = [x for x in lines if "bandwidth" not in x]
        return (self.proc.tail(5) if self.proc else []) + lines[-n:]
