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
import time
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
    def __init__(self, record: bool | str) -> None:
        """`record`: the template's record (True), `access_log off;` (False), or these directives."""
        self.port, up = free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="scaleout-bench-reqlog-"))
        log = record if isinstance(record, str) else _record_directives() if record else "    access_log off;"
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


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _container_cpu_s(name: str) -> float:
    import docker

    return docker.from_env().containers.get(name).stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def profile(rounds: int, n: int) -> None:
    """Where the record's cost goes: CPU time per request of dockerd (it reads the container's output and
    stores every line) and of the nginx container, for variants of the record. CPU time per request
    depends far less on a busy machine than throughput does."""
    import subprocess

    dockerd = int(subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split()[0])
    rec = _record_directives()
    variants = {
        "off": False,
        "record (template)": True,
        "record, buffer=256k": rec.replace("buffer=32k", "buffer=256k"),
        "short line (no keys)": rec.replace("scaleout-request t=$msec st=$status m=$request_method rt=$request_time",
                                            "$msec $status $request_method $request_time")
                                   .replace("urt=$upstream_response_time b=$body_bytes_sent upstream=$upstream_addr "
                                            "p=$uri", "$upstream_response_time $body_bytes_sent $upstream_addr $uri"),
        "to a file on tmpfs (/dev/shm)": rec.replace("/dev/stdout", "/dev/shm/record.log"),
    }
    for name, record in variants.items():
        with Proxy(record) as px:
            run_probe(px.url, n // 4, 32)  # warm-up
            for _ in range(rounds):
                d0, c0 = _cpu_s(dockerd), _container_cpu_s(px.name)
                rps = run_probe(px.url, n, 32)
                time.sleep(1.5)  # the last buffer flushed and stored
                d1, c1 = _cpu_s(dockerd), _container_cpu_s(px.name)
                print(f"{name:<30} {rps:8,.0f} req/s  dockerd {(d1 - d0) / n * 1e6:6.1f} us/req  "
                      f"nginx {(c1 - c0) / n * 1e6:6.1f} us/req  (load average 1 min {os.getloadavg()[0]:.1f})",
                      flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "profile":
        profile(int(sys.argv[2]) if len(sys.argv) > 2 else 2, int(sys.argv[3]) if len(sys.argv) > 3 else 10000)
        return
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
