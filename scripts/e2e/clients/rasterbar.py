"""libtorrent-rasterbar 2.0 (Debian python3-libtorrent): see lt_peer.py.

https trackers: libtorrent validates the tracker's certificate
(`validate_https_trackers`, on by default) against OpenSSL's default store,
which `SSL_CERT_FILE` replaces: the test CA goes there.
"""
import os

from common import SYSTEM_PYTHON
from riptide.procs import Proc

from .base import Client

LT_PEER = __file__.rsplit("/", 1)[0] + "/lt_peer.py"


class Libtorrent(Client):
    name = "libtorrent"
    families = {4, 6}
    protocols = {"udp", "http", "https"}

    def start(self):
        j = self.job
        argv = [SYSTEM_PYTHON, LT_PEER, "--torrent", str(j.torrent), "--save-path", str(j.save_dir),
                "--listen", f"[{j.ip}]:{j.port}" if j.family == 6 else f"{j.ip}:{j.port}"]
        if j.reannounce_every:
            argv += ["--reannounce-every", str(j.reannounce_every)]
        if j.upload_limit:
            argv += ["--upload-limit", str(j.upload_limit)]
        env = {**os.environ, "SSL_CERT_FILE": str(j.ca_file)} if j.ca_file else None
        self.proc = Proc(self.label(), argv, j.workdir / "client.log", cwd=j.workdir, env=env, stdin=True)

    def announced(self):
        return "TRACKER_REPLY" in self.proc.log_text()

    def reannounce(self):
        self.proc.send("reannounce")
