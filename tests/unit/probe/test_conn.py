"""The load engine's answer path without sockets: whole answers sliced (and remembered), the rest parsed."""

from __future__ import annotations

import pytest

from scaleout.probe import conn as conn_mod
from scaleout.probe.conn import Worker, _Conn, whole_answer  # noqa: F401 - _Conn: the type connected() returns
from scaleout.probe.samples import LoadSpec

NGINX = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 17:18:00 GMT\r\n"
         b"Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n"
         b"X-Upstream-Addr: 172.18.0.3:8000\r\n\r\nok\n")


def answer(status: str = "200 OK", headers: tuple[str, ...] = ("Content-Length: 3",), body: bytes = b"ok\n",
           version: str = "HTTP/1.1") -> bytes:
    return (f"{version} {status}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body


def test_nginx_answer_is_read_whole():
    assert whole_answer(NGINX) == (200, b"172.18.0.3:8000", True)


@pytest.mark.parametrize(("data", "expected"), [
    (answer("503 Service Unavailable", ("content-length: 3", "x-upstream-addr:  10.0.0.1:80 ")),
     (503, b"10.0.0.1:80", True)),
    (answer("200", ("Content-Length:3", "Connection: close")), (200, b"", False)),
    (answer(headers=("Content-Length: 3", "Connection: Keep-Alive, Close")), (200, b"", False)),
    (answer(headers=("X-Upstream-Addr: 10.0.0.1:80, 10.0.0.2:80", "Content-Length: 3")),
     (200, b"10.0.0.1:80, 10.0.0.2:80", True)),  # after a retry: the caller keeps the last address
    (answer(headers=("Content-Length: 0",), body=b""), (200, b"", True)),
])
def test_whole_answers(data, expected):
    assert whole_answer(data) == expected


@pytest.mark.parametrize("data", [
    NGINX[:-1],  # the body's last byte is still on its way
    NGINX[:40],  # the headers are
    NGINX + NGINX,  # two answers in one read
    answer(headers=("Transfer-Encoding: chunked",), body=b"3\r\nok\n\r\n0\r\n\r\n"),
    answer(headers=("Content-Length: 3", "Transfer-Encoding: chunked"), body=b"3\r\nok\n\r\n0\r\n\r\n"),
    answer(headers=("Content-Length: 3", "Content-Length: 3")),  # repeated: the parser judges it
    answer(headers=("Content-Length: +3",)),
    answer(headers=("Content-Length: 1_2",), body=b"x" * 12),
    answer(headers=(), body=b""),  # no length: the body ends with the connection
    answer(version="HTTP/1.0"),
    answer("2x0 OK"),
    answer("2000 OK"),
    answer("100 Continue"),
    answer("204 No Content", ("Content-Length: 3",)),
    answer("304 Not Modified", ("Content-Length: 3",)),
    b"garbage\r\n\r\n",
])
def test_anything_else_is_left_to_the_parser(data):
    assert whole_answer(data) is None


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def connected(requests: int = 100, method: str = "GET") -> tuple[Worker, _Conn, _Transport]:
    w = Worker(LoadSpec(url="http://127.0.0.1:9", requests=requests, method=method), requests, 1, None, 0, None)
    w.deadline = None
    w.loop = None
    c = w.conn_cls(w)
    t = _Transport()
    c.connection_made(t)
    w.next_for(c)
    return w, c, t


def counts(w: Worker) -> dict[tuple[str, int], int]:
    return {k: len(h) for k, h in w.s.answers().items()}


def test_sliced_and_parsed_answers_are_recorded_alike():
    w, c, t = connected()
    for data in (NGINX, NGINX[:50], NGINX[50:], NGINX, answer(headers=("Transfer-Encoding: chunked",
                 "X-Upstream-Addr: 172.18.0.3:8000"), body=b"3\r\nok\n\r\n0\r\n\r\n"), NGINX):
        c.data_received(bytes(data))
    assert counts(w) == {("172.18.0.3:8000", 200): 5}
    assert len(t.sent) == 6 and w.done == 5 and not any(w.s.errors)
    assert c.fast  # back on the fast path once the parser finished its answer


def test_remembered_answers_stay_bounded():
    w, c, _ = connected(requests=3 * conn_mod._KNOWN_ANSWERS + 1)
    for i in range(3 * conn_mod._KNOWN_ANSWERS):
        c.data_received(answer(headers=("Content-Length: 3", f"X-Upstream-Addr: 10.0.{i >> 8}.{i & 255}:80")))
        assert len(w.known) <= conn_mod._KNOWN_ANSWERS
    assert len(w.s) == 3 * conn_mod._KNOWN_ANSWERS and len(w.s.upstreams) == 3 * conn_mod._KNOWN_ANSWERS + 1


def test_connection_close_on_a_whole_answer_closes_and_reconnects():
    w, c, t = connected()
    reconnects = []
    w.dispatch = lambda conn, t0, key, retried: reconnects.append(conn)
    c.data_received(answer(headers=("Content-Length: 3", "Connection: close")))
    assert t.closed and c.dead and reconnects == [None]
    assert counts(w) == {("", 200): 1}


def test_head_answers_never_take_the_fast_path():
    w, c, _ = connected(method="HEAD")
    assert isinstance(c, conn_mod._HeadConn)
    c.data_received(answer(headers=("Content-Length: 3",), body=b""))
    assert counts(w) == {("", 200): 1} and not w.known
