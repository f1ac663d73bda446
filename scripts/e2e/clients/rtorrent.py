"""rTorrent 0.9.8 (Debian rtorrent), headless via system.daemon.

Traps: UDP announce replies are parsed as 6-byte (IPv4) peers even from
an IPv6 tracker, so an IPv6 rTorrent never dials the peers it is given.
network.bind_address.set refuses IPv6 ("Tried to set a bind address
that is not an af_inet address"), so for IPv6 it is left unset and rTorrent
listens on every address. rTorrent keeps one peer per IP.
"""
import re

from riptide.procs import Proc

from .base import Client

_ANSWERED = re.compile(r"tracker_list: received \d+ peers")


class Rtorrent(Client):
    name = "rtorrent"
    families = {4, 6}
    protocols = {"udp", "http", "https"}

    @classmethod
    def leech_first(cls, scheme, family):
        # rTorrent 0.9.8 reads UDP announce replies as 6-byte peers only: an
        # IPv6 peer list arrives as garbage. As an IPv6 leecher it announces
        # first and the seeder, learning of it from the tracker, dials it.
        return scheme == "udp" and family == 6

    def __init__(self, job):
        super().__init__(job)
        self.log = job.workdir / "rtorrent.log"

    def start(self):
        j = self.job
        session = j.workdir / "session"
        session.mkdir(parents=True, exist_ok=True)
        rc = [
            "system.daemon.set = true",
            f"directory.default.set = {j.save_dir}",
            f"session.path.set = {session}",
            f"network.port_range.set = {j.port}-{j.port}",
            "network.port_random.set = no",
            "dht.mode.set = disable",
            "protocol.pex.set = no",
            "trackers.use_udp.set = yes",
            f'log.open_file = "main", {self.log}',
            'log.add_output = "info", "main"',
            'log.add_output = "tracker_debug", "main"',
        ]
        if j.family == 4:
            rc.append(f"network.bind_address.set = {j.ip}")
        if j.ca_file:  # its libcurl's CA file for https trackers
            rc.append(f"network.http.cacert.set = {j.ca_file}")
        if j.upload_limit:
            rc.append(f"throttle.global_up.max_rate.set = {j.upload_limit}")
        if j.reannounce_every:
            n = int(j.reannounce_every)
            rc.append(f'schedule2 = e2e_reannounce, {n}, {n}, "d.multicall2=main,d.tracker_announce="')
        rc.append(f"load.start_verbose = {j.torrent}")
        (j.workdir / "rtorrent.rc").write_text("\n".join(rc) + "\n")
        self.proc = Proc(self.label(), ["rtorrent", "-n", "-o", f"import={j.workdir / 'rtorrent.rc'}"],
                         j.workdir / "stdout.log", cwd=j.workdir)

    def _log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def announced(self):
        return bool(_ANSWERED.search(self._log_text()))

    def tail(self, n=20):
        # its own log, without the binary packet dumps of tracker_debug
        lines, dump = [], False
        for line in self._log_text().splitlines():
            if line == "---DUMP---":
                dump = True
            elif line == "---END---":
                dump = False
            elif not dump:
                lines.append(line)
        return (self.proc.tail(5) if self.proc else []) + lines[-n:]
