"""Shared helpers of the e2e harness: ports, torrents, hashing. Processes
(start, log, stop, stopped at exit) and the BEP 15 readiness probe come from
scripts/lib/riptide (procs, udp)."""
import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, the one with python3-libtorrent

# ---------------------------------------------------------------- waiting


def wait_until(pred, timeout, interval=0.2):
    """Poll `pred` until true or `timeout` seconds; returns the last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------- addresses

LOOPBACK = {4: "127.0.0.1", 6: "::1"}


def host_port(family, port):
    """'127.0.0.1:6881' or '[::1]:6881'."""
    ip = LOOPBACK[family]
    return f"[{ip}]:{port}" if family == 6 else f"{ip}:{port}"


def free_port(kinds=("tcp", "udp")):
    """A port free for TCP and UDP on both loopback addresses (best effort)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        ok = True
        for fam, ip in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            for kind in kinds:
                t = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
                try:
                    with socket.socket(fam, t) as s:
                        s.bind((ip, port))
                except OSError:
                    ok = False
        if ok and port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port")


_handed_out = set()

# ---------------------------------------------------------------- TLS


def make_test_ca(outdir):
    """A throwaway CA and a server certificate it signed, for 127.0.0.1, ::1
    and localhost, made with the `openssl` CLI (install.sh installs Debian's
    `openssl`; Python's stdlib cannot make certificates). Returns the paths
    (ca_pem, cert_pem, key_pem); clients trust ca_pem only."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("`openssl` not found (scripts/e2e/install.sh installs it)")
    d = Path(outdir)
    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key, cert, key, csr, ext = (d / n for n in ("ca.pem", "ca.key", "server.pem", "server.key",
                                                       "server.csr", "server.ext"))
    ext.write_text("subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost\n"
                   "basicConstraints = critical, CA:FALSE\n"
                   "keyUsage = critical, digitalSignature\n"
                   "extendedKeyUsage = serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for argv in (
        [openssl, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=riptide e2e test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(ca_key), "-out", str(ca)],
        [openssl, "req", *ec, "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr)],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
         "-extfile", str(ext), "-out", str(cert)],
    ):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} failed: {r.stderr.strip()[-300:]}")
    return ca, cert, key


# ---------------------------------------------------------------- torrents


def make_random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_torrent(data_path, announce, out_path, piece_size=64 * 1024):
    """v1, single file, one `announce`, private; nothing else that finds peers."""
    import libtorrent as lt  # only under Debian's python3

    fs = lt.file_storage()
    lt.add_files(fs, str(data_path))
    ct = lt.create_torrent(fs, piece_size, flags=lt.create_torrent.v1_only)
    ct.add_tracker(announce, 0)
    ct.set_priv(True)
    ct.set_creator("riptide e2e")
    lt.set_piece_hashes(ct, str(Path(data_path).parent))
    d = ct.generate()
    for k in (b"announce-list", b"nodes", b"url-list", b"httpseeds"):
        d.pop(k, None)
    assert d[b"announce"] == announce.encode() and d[b"info"][b"private"] == 1, d.keys()
    Path(out_path).write_bytes(lt.bencode(d))
    return piece_hashes(d[b"info"])


def retarget_torrent(src, announce, dst):
    """A copy of the .torrent `src` whose only `announce` is `announce`; the
    info dict (so the info hash) is the same bytes."""
    import libtorrent as lt

    d = lt.bdecode(Path(src).read_bytes())
    d[b"announce"] = announce.encode()
    out = lt.bencode(d)
    assert lt.bdecode(out)[b"info"] == d[b"info"]
    Path(dst).write_bytes(out)


def piece_hashes(info):
    p = info[b"pieces"]
    return info[b"piece length"], [p[i:i + 20] for i in range(0, len(p), 20)]


def pieces_done(path, piece_len, hashes):
    """How many pieces of `path` match the torrent (file may be partial/sparse)."""
    n = 0
    try:
        with open(path, "rb") as f:
            for h in hashes:
                if hashlib.sha1(f.read(piece_len)).digest() == h:
                    n += 1
    except (FileNotFoundError, PermissionError):
        return 0
    return n
