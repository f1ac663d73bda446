"""Client adapters by name. Adding a client: a module here with a Client
subclass (see base.py), and one line in CLIENTS."""
from .aria2 import Aria2
from .rasterbar import Libtorrent
from .rtorrent import Rtorrent
from .transmission import Transmission

CLIENTS = {c.name: c for c in (Libtorrent, Rtorrent, Aria2, Transmission)}
