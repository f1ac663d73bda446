#!/usr/bin/env python3
"""The BEP 15 readiness probe: a UDP tracker is serving once it answers a
connect request (action 0, our transaction id, a connection id).

As a script: udp.py HOST:PORT [TIMEOUT_SECONDS]
HOST may be an IPv4 address or a bracketed IPv6 address ([::1]:6969).
Exits 0 once a 16-byte connect response arrives, 1 after TIMEOUT_SECONDS
(default 10).
"""
import os
import socket
import struct
import sys
import time

PROTOCOL_ID = 0x41727101980


def parse_addr(addr):
    """(family, (host, port)) from "HOST:PORT", "[::1]:PORT" or (host, port)."""
    if isinstance(addr, tuple):
        host, port = addr
    else:
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"expected HOST:PORT, got {addr!r}")
        host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return fam, (host, int(port))


def connect(addr, timeout):
    """One connect round trip; returns the connection id, or None when no
    answer came within `timeout` s."""
    fam, addr = parse_addr(addr)
    tid = struct.unpack(">i", os.urandom(4))[0]
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(struct.pack(">qii", PROTOCOL_ID, 0, tid), addr)
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                s.settimeout(max(0.01, end - time.monotonic()))
                data, _ = s.recvfrom(2048)
                if len(data) == 16:
                    action, rtid, cid = struct.unpack(">iiq", data)
                    if action == 0 and rtid == tid:
                        return cid
        except (socket.timeout, ConnectionRefusedError, OSError):
            return None
    return None


def wait_ready(addr, timeout=10.0):
    """Connect until one is answered (True) or `timeout` s have passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if connect(addr, min(0.5, max(0.05, deadline - time.monotonic()))) is not None:
            return True
        time.sleep(0.1)
    return False


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    timeout = float(sys.argv[2]) if len(sys.argv) == 3 else 10.0
    if wait_ready(sys.argv[1], timeout):
        return 0
    print(f"no BEP 15 connect response from {sys.argv[1]} within {timeout:g}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
