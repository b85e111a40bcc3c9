"""The embedded development database: a SecantusDB server (MongoDB wire protocol) on local files.

``python -m app.infra.embedded_db --storage var/db --uri-file var/mongodb.uri`` runs it as its own process
(what ``make run`` and the test suite do); :func:`start_in_process` runs it inside this process for a
one-off command when no server is up.
"""

from __future__ import annotations

import argparse
import atexit
import signal
import sys
import threading
from pathlib import Path

import pymongo
from pymongo.errors import PyMongoError

from app.infra import embedded_quirks

DEFAULT_DATABASE = "hoso"


def uri_with_database(server_uri: str, database: str = DEFAULT_DATABASE) -> str:
    """The client URI of one database on a server URI such as ``mongodb://127.0.0.1:1234/``."""
    return f"{server_uri.rstrip('/')}/{database}?{embedded_quirks.CLIENT_URI_OPTIONS}"


def is_reachable(uri: str, timeout_ms: int = 500) -> bool:
    """True when a MongoDB-compatible server answers a ping at ``uri``."""
    client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def recorded_uri(var_dir: Path) -> str | None:
    """The address of a development server that ``make run`` recorded and that still answers."""
    path = var_dir / "mongodb.uri"
    if not path.exists():
        return None
    uri = path.read_text().strip()
    return uri if uri and is_reachable(uri) else None


def start_in_process(var_dir: Path) -> str:
    """Start SecantusDB on ``var_dir/db`` inside this process, stopped when the process exits."""
    from secantus import SecantusDBServer

    (var_dir / "db").mkdir(parents=True, exist_ok=True)
    server = SecantusDBServer(storage_path=str(var_dir / "db"))
    server.start()
    atexit.register(server.stop)
    return uri_with_database(server.uri)


def development_uri(var_dir: Path) -> str:
    """The development database: the running one recorded under ``var/``, else a fresh in-process one."""
    return recorded_uri(var_dir) or start_in_process(var_dir)


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGINT or SIGTERM; print its URI (with database) on the first line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="data directory (created if missing)")
    parser.add_argument("--uri-file", help="write the server URI here while it runs")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args(argv)

    from secantus import SecantusDBServer

    Path(args.storage).mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    uri_file = Path(args.uri_file) if args.uri_file else None
    with SecantusDBServer(storage_path=args.storage) as server:
        uri = uri_with_database(server.uri, args.database)
        if uri_file:
            uri_file.write_text(uri + "\n")
        print(uri, flush=True)
        try:
            stop.wait()
        finally:
            if uri_file and uri_file.exists():
                uri_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
