"""What every client adapter provides. One file per client in this folder.

An adapter drives one real BitTorrent client process for one role in one
case. The harness gives it a `Job` (what to seed or leech, where, through
which tracker URL) and then only calls the methods below; completion is
checked by the harness itself, by hashing the file in `job.save_dir`.
"""
from dataclasses import dataclass, field
from pathlib import Path

from common import LOOPBACK


@dataclass
class Job:
    role: str            # "seed" or "leech"
    family: int          # 4 or 6: the address family of peers and tracker
    torrent: Path        # the .torrent (its single `announce` is the tracker)
    save_dir: Path       # seeder: holds the complete file; leecher: empty
    workdir: Path        # private scratch dir of this client instance
    port: int            # peer listen port (TCP), free on both loopbacks
    upload_limit: int = 0          # bytes/s, 0 = unlimited
    ip: str = ""                   # peer address; default the family's loopback
    reannounce_every: float = 0    # >0: announce every N s whatever the interval
    ca_file: Path = None           # https trackers: the test CA (PEM) to trust, else None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.ip = self.ip or LOOPBACK[self.family]


class Client:
    name = "?"
    families = {4, 6}        # tracker/peer address families it works with here
    protocols = {"udp"}      # tracker URL schemes it works with here (udp, http, https)

    @classmethod
    def supports(cls, scheme, family):
        """Can it use a `scheme`:// tracker and peers of this address family here?"""
        return scheme in cls.protocols and family in cls.families

    @classmethod
    def leech_first(cls, scheme, family):
        """Must the leecher announce before the seeder (the seeder then dials it)?"""
        return False

    def __init__(self, job: Job):
        self.job = job
        self.proc = None

    def start(self):
        raise NotImplementedError

    def announced(self) -> bool:
        """True once the client has seen an answer to an announce."""
        raise NotImplementedError

    def reannounce(self):
        """Ask the client to announce now, if it has a way (default: none)."""

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def stop(self):
        if self.proc:
            self.proc.stop()

    def tail(self, n=20):
        return self.proc.tail(n) if self.proc else []

    def label(self):
        return f"{self.name}({self.job.workdir.name})"
