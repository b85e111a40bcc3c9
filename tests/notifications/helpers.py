"""Helpers of the notification library's tests (no app imports: the library is tested on its own)."""

from __future__ import annotations

import socket
from typing import Any

from aiosmtpd.controller import Controller


class LoopbackController(Controller):
    """A Controller on a socket bound before start, so the port is known and never raced for."""

    def __init__(self, handler: Any, **smtp_kwargs: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        super().__init__(handler, hostname="127.0.0.1", port=self.sock.getsockname()[1],
                         server_hostname="mx.test", **smtp_kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self.sock, ssl=self.ssl_context)
