"""Cost of the balancer's request record: probe throughput through an nginx proxy with the record on
(the rendered log_format, to the container's stdout) and off (`access_log off;`), interleaved round by
round, the order rotated. Run: `python benchmarks/request_log.py [rounds] [requests]`.

`python benchmarks/request_log.py stack [rounds] [requests]`: the same on real scaleout stacks (balancer +
2 replicas of the scaffold's python backend), one with `balancer.request_log` on and one with it off, up
side by side; the probe runs against each in turn, the order rotated, with the 1-minute load average
printed beside every number."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import free_port, run_probe, running_project, start_host_nginx, stop_host_nginx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scaleout.render.templates import templates_dir  # noqa: E402


def _record_directives() -> str:
    """The log_format and access_log lines as the template renders them (request_log on)."""
    text = (templates_dir() / "nginx" / "nginx.conf.j2").read_text()
    start = text.index("    log_format scaleout")
    return text[start:text.index(";", text.index("access_log /dev/stdout scaleout", start)) + 1]


CONF = """worker_processes auto;
pid /tmp/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
{log}
    upstream backend {{ server 127.0.0.1:{up}; keepalive 32; }}
    server {{ listen 127.0.0.1:{up}; access_log off; location / {{ return 200 "ok\\n"; }} }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    }}
}}
"""


class Proxy:
    def __init__(self, record: bool) -> None:
        self.port, up = free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="scaleout-bench-reqlog-"))
        log = _record_directives() if record else "    access_log off;"
        (self.dir / "nginx.conf").write_text(CONF.format(log=log, up=up, port=self.port))
        self.name = f"scaleout-bench-reqlog-{uuid.uuid4().hex[:8]}"
        self.url = f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> Proxy:
        start_host_nginx(self.name, self.dir, self.url)
        return self

    def __exit__(self, *exc) -> None:
        stop_host_nginx(self.name, self.dir)


def _record_off(text: str) -> str:
    return text.replace("balancer:\n", "balancer:\n  request_log: false\n", 1)


def _records(proj: Path) -> bool:
    """Whether the balancer of `proj` has the record on (the nginx.conf that `up` rendered and mounted)."""
    return "scaleout-request" in (proj / ".scaleout" / "nginx" / "nginx.conf").read_text()


def stack(rounds: int, n: int) -> None:
    res: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    with running_project(2) as (p_on, port_on), running_project(2, _record_off) as (p_off, port_off):
        assert _records(p_on) and not _records(p_off), "the two stacks do not differ in the record"
        urls = {"on": f"http://127.0.0.1:{port_on}/", "off": f"http://127.0.0.1:{port_off}/"}
        run_probe(urls["on"], n // 4, 16)  # warm-up of both
        run_probe(urls["off"], n // 4, 16)
        for i in range(rounds):
            for key in (["on", "off"] if i % 2 == 0 else ["off", "on"]):
                rps = run_probe(urls[key], n, 16)
                res[key].append((rps, os.getloadavg()[0]))
                print(f"round {i + 1} record {key:<3}: {rps:8,.0f} req/s  (load average 1 min {res[key][-1][1]:.1f})",
                      flush=True)
    on, off = ([x for x, _ in res[k]] for k in ("on", "off"))
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    print(f"record on : median {statistics.median(on):,.0f} req/s; off: median {statistics.median(off):,.0f} req/s")
    print(f"on/off per round: {[round(r, 3) for r in ratios]}; median ratio {statistics.median(ratios):.3f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "stack":
        stack(int(sys.argv[2]) if len(sys.argv) > 2 else 3, int(sys.argv[3]) if len(sys.argv) > 3 else 3000)
        return
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    res: dict[str, list[float]] = {"on": [], "off": []}
    with Proxy(True) as on, Proxy(False) as off:
        for i in range(rounds):
            order = [("on", on), ("off", off)][:: 1 if i % 2 == 0 else -1]
            for key, px in order:
                res[key].append(run_probe(px.url, n, 32))
    load = os.getloadavg()[0]
    ratios = [a / b for a, b in zip(res["on"], res["off"], strict=True)]
    print(f"record on : {[round(x) for x in res['on']]} median {statistics.median(res['on']):,.0f} req/s")
    print(f"record off: {[round(x) for x in res['off']]} median {statistics.median(res['off']):,.0f} req/s")
    print(f"on/off per round: {[round(r, 3) for r in ratios]}; median ratio {statistics.median(ratios):.3f}; "
          f"load average (1 min) {load:.1f}")


if __name__ == "__main__":
    main()
