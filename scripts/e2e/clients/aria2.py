"""aria2 1.36 (Debian aria2). IPv4 only for UDP trackers here.

Traps: aria2 sends UDP tracker requests through its DHT socket, so udp://
needs --enable-dht=true (with a private torrent, a fresh DHT file and no
entry point it sends no DHT traffic). IPv6 UDP trackers: "udp is not
supported yet".
"""
import os
import re

from riptide.procs import Proc

from .base import Client

_ANSWERED = re.compile(r"UDPT received ANNOUNCE reply|peers6 received")


class Aria2(Client):
    name = "aria2"
    families = {4}
    protocols = {"udp", "http", "https"}

    def start(self):
        j = self.job
        self.log = j.workdir / "aria2.log"
        argv = [
            "aria2c", "--no-conf=true", f"--dir={j.save_dir}", f"--log={self.log}", "--log-level=info",
            "--console-log-level=warn", "--summary-interval=0", "--enable-color=false",
            f"--listen-port={j.port}", f"--interface={j.ip}", "--disable-ipv6=true",
            "--enable-dht=true", "--enable-dht6=false", f"--dht-file-path={j.workdir / 'dht.dat'}",
            f"--dht-listen-port={j.port}",  # UDP; also where its tracker requests come from
            "--enable-peer-exchange=false", "--bt-enable-lpd=false",
            "--file-allocation=none", "--check-integrity=true", "--seed-ratio=0.0",
            "--bt-tracker-connect-timeout=5", "--bt-tracker-timeout=5",
            "--auto-save-interval=0", f"--stop-with-process={os.getpid()}",
        ]
        if j.reannounce_every:
            argv.append(f"--bt-tracker-interval={int(j.reannounce_every)}")
        if j.ca_file:  # https trackers: trust the test CA (GnuTLS; added to the system store)
            argv.append(f"--ca-certificate={j.ca_file}")
        if j.upload_limit:
            argv.append(f"--max-overall-upload-limit={j.upload_limit}")
        argv.append(str(j.torrent))
        self.proc = Proc(self.label(), argv, j.workdir / "stdout.log", cwd=j.workdir)

    def _log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except (AttributeError, FileNotFoundError):
            return ""

    def announced(self):
        # UDP: its own line; HTTP(S): after parsing a reply it logs whether
        # `peers6` was in it ("No peers6 received." for every IPv4 reply here)
        return bool(_ANSWERED.search(self._log_text()))

    def tail(self, n=20):
        return (self.proc.tail(5) if self.proc else []) + self._log_text().splitlines()[-n:]
