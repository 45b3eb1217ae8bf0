#!/usr/bin/env python3
"""Side-by-side benchmarks of scaleout, each in one run so that ratios survive a noisy machine.

    python benchmarks/run.py speed      # probe vs hey vs wrk on one static nginx on loopback
    python benchmarks/run.py speed --https   # the same over HTTPS (HTTP/1.1 over TLS; probe verifies, hey/wrk do not)
    python benchmarks/run.py startup    # `scaleout --help` and `scaleout render` start-up time
    python benchmarks/run.py compose    # `scaleout up` vs plain `docker-compose up` of hand-written files
    python benchmarks/run.py overhead   # one replica directly vs through the balancer
    python benchmarks/run.py rolling    # rolling update of 3 replicas (4 s boot) under load; watch: save -> served
    python benchmarks/run.py memory     # a 10-minute probe against 3 replicas: resident memory, summary time
    python benchmarks/run.py hotpath    # recording one answer: histogram vs per-request arrays (vs hdrhistogram)
    python benchmarks/run.py rescale    # `up --replicas 32` from 1 running, then back to 4
    python benchmarks/run.py ratios     # every ratio of issue 22 side by side (speed, https, compose, rescale, rolling)
    python benchmarks/run.py all        # every section but memory (10 minutes on its own)

Each section prints a Markdown table and the results go to --out (JSON, default
benchmarks/results/latest.json, merged by section). Only 127.0.0.1 and containers started here are
loaded. Needs: hey, wrk (Debian packages), a Docker engine and the image in $SCALEOUT_LB_IMAGE
(default scaleout-local/bookworm:1) for speed (unless --url), compose and overhead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("SCALEOUT_LB_IMAGE", "scaleout-local/bookworm:1")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "SCALEOUT_LB_IMAGE": IMAGE,
       "SCALEOUT_BASE_IMAGE": os.environ.get("SCALEOUT_BASE_IMAGE", IMAGE)}
SCALEOUT = [sys.executable, "-m", "scaleout"]


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, want_upstream: bool = False, cafile: Path | None = None) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
                if r.status == 200 and (not want_upstream or r.headers.get("X-Upstream-Addr")):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout:.0f}s")


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "kernel": platform.release(),
            "load_avg_1m": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def md_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# --- speed: probe vs hey vs wrk ------------------------------------------------------------------

NGINX_CONF = """worker_processes {workers};
pid /tmp/nginx-bench-{port}.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000;
  server {{ listen 127.0.0.1:{port}{tls}; location / {{ return 200 "ok\\n"; }} }}
}}
"""
# as the balancer's TLS (templates/nginx/nginx.conf.j2): TLS 1.2/1.3, a session cache, HTTP/2 offered by ALPN
NGINX_TLS = (" ssl http2; ssl_certificate /conf/cert.pem; ssl_certificate_key /conf/key.pem; "
             "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:bench_tls:10m; ssl_session_tickets off")


def bench_certificate(folder: Path) -> Path:
    """A throwaway authority (never the user's) and a certificate for 127.0.0.1 signed by it: the CA's path."""
    sys.path.insert(0, str(ROOT))
    from scaleout.tls.certs import ensure_ca, issue_leaf

    ca = ensure_ca(folder / "ca")
    cert, key = issue_leaf(ca, ("localhost",), ("127.0.0.1",), "bench")
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(key)
    return ca.cert_path


def start_host_nginx(name: str, conf_dir: Path, url: str, cafile: Path | None = None) -> None:
    """nginx on `conf_dir`/nginx.conf in a container sharing the host network (no userland proxy in the
    path), answering `url` before this returns."""
    r = sh(["docker", "run", "-d", "--rm", "--name", name, "--network", "host", "-v", f"{conf_dir}:/conf:ro",
            IMAGE, "nginx", "-c", "/conf/nginx.conf", "-g", "daemon off;"])
    if r.returncode:
        raise SystemExit(f"could not start nginx: {r.stderr.strip()}")
    wait_http(url, 30, cafile=cafile)


def stop_host_nginx(name: str, conf_dir: Path) -> None:
    sh(["docker", "rm", "-f", name])
    shutil.rmtree(conf_dir, ignore_errors=True)


class StaticNginx:
    """nginx `return 200` in a container sharing the host network (no userland proxy in the path)."""

    def __init__(self, workers: str = "auto", https: bool = False) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="scaleout-bench-nginx-"))
        self.ca = bench_certificate(self.dir) if https else None
        (self.dir / "nginx.conf").write_text(NGINX_CONF.format(port=self.port, workers=workers,
                                                               tls=NGINX_TLS if https else ""))
        self.name = f"scaleout-bench-nginx-{uuid.uuid4().hex[:8]}"
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}/"

    def __enter__(self) -> StaticNginx:
        start_host_nginx(self.name, self.dir, self.url, cafile=self.ca)
        return self

    def __exit__(self, *exc) -> None:
        stop_host_nginx(self.name, self.dir)


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process this one has waited for (and their children)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def cpu_run(cmd: list[str], **kw) -> tuple[subprocess.CompletedProcess, float]:
    """`sh(cmd)` and the CPU seconds it spent, with its worker processes: a cost per request that a
    neighbour's burst on the shared cores moves far less than the req/s (tools run one at a time here)."""
    before = children_cpu()
    r = sh(cmd, **kw)
    return r, children_cpu() - before


def run_probe(url: str, n: int, c: int, workers: int | None = None, cacert: Path | None = None,
              tls_out: list | None = None, cpu_out: list | None = None) -> float:
    cmd = [*SCALEOUT, "probe", "--url", url, "--requests", str(n), "--concurrency", str(c), "--json"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if cacert is not None:
        cmd += ["--cacert", str(cacert)]
    r, cpu = cpu_run(cmd, cwd=tempfile.gettempdir())
    if r.returncode not in (0, 1):  # 1: verdict "fail", as expected here (nginx names no upstream)
        raise SystemExit(f"probe failed (exit {r.returncode}): {r.stderr.strip()}")
    doc = json.loads(r.stdout)
    if doc["failed"]:
        raise SystemExit(f"probe: {doc['failed']} failed requests: {doc['errors']} {doc['status_codes']}")
    if tls_out is not None:
        tls_out.append(doc["tls"])
    if cpu_out is not None:
        cpu_out.append((cpu, doc["requests"]))
    return float(doc["rps"])


def run_hey(url: str, n: int, c: int, cpu_out: list | None = None) -> float:
    r, cpu = cpu_run(["hey", "-n", str(n), "-c", str(c), url])
    out = r.stdout
    # every answer must be a 200: an error line or another status means the number is not comparable
    codes = {int(k): int(v) for k, v in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", out, re.M)}
    if set(codes) != {200} or "Error distribution" in out:
        raise SystemExit(f"hey: not every answer was a 200:\n{out}")
    if cpu_out is not None:
        cpu_out.append((cpu, sum(codes.values())))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def run_wrk(url: str, c: int, seconds: float, cpu_out: list | None = None) -> float:
    r, cpu = cpu_run(["wrk", f"-t{min(2, os.cpu_count() or 1)}", f"-c{c}", f"-d{max(1, round(seconds))}s", url])
    out = r.stdout
    if "Socket errors" in out or "Non-2xx" in out:
        raise SystemExit(f"wrk: errors in the run:\n{out}")
    if cpu_out is not None:
        cpu_out.append((cpu, int(re.search(r"(\d+) requests in", out).group(1))))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def speed(args) -> dict:
    for tool in ("hey", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    ctx = StaticNginx(args.nginx_workers, https=args.https) if not args.url else None
    url = args.url or ""
    cacert = args.cacert
    rounds = []
    tls_seen: list = []
    try:
        if ctx:
            ctx.__enter__()
            url, cacert = ctx.url, ctx.ca
        # the probe's CPU includes its CLI's start (imports, checks): measured once here, taken off each run
        start: list = []
        for _ in range(3):
            run_probe(url, 1, 1, workers=1, cacert=cacert, cpu_out=start)
        start_cpu = min(cpu for cpu, _ in start)
        cpu: dict[str, list] = {}
        tools = {
            "probe": lambda: run_probe(url, args.requests, args.concurrency, cacert=cacert, tls_out=tls_seen,
                                       cpu_out=cpu.setdefault("probe", [])),
            "probe (1 worker)": lambda: run_probe(url, args.requests, args.concurrency, workers=1, cacert=cacert,
                                                  cpu_out=cpu.setdefault("probe (1 worker)", [])),
            "hey": lambda: run_hey(url, args.requests, args.concurrency, cpu_out=cpu.setdefault("hey", [])),
            "wrk": lambda: run_wrk(url, args.concurrency, args.wrk_seconds, cpu_out=cpu.setdefault("wrk", [])),
        }
        names = list(tools)
        for i in range(args.rounds):
            order = names[i % len(names):] + names[:i % len(names)]  # rotate: no tool always runs first
            rnd = {"load_avg_1m": round(os.getloadavg()[0], 2)}
            rnd.update({name: tools[name]() for name in order})
            rnd["probe/hey"] = round(rnd["probe"] / rnd["hey"], 2)
            rnd["probe/wrk"] = round(rnd["probe"] / rnd["wrk"], 2)
            for name in names:  # client CPU (user + system) per request, in microseconds
                spent, n = cpu[name][-1]
                rnd[f"{name} us/req"] = round((spent - (start_cpu if name.startswith("probe") else 0)) / n * 1e6, 2)
            rounds.append(rnd)
            print(f"  round {i + 1}: " + ", ".join(f"{k} {v:,.0f}" if v > 10 else f"{k} {v}" for k, v in rnd.items()),
                  file=sys.stderr)
    finally:
        if ctx:
            ctx.__exit__(None, None, None)
    med = {k: round(statistics.median(r[k] for r in rounds), 2) for k in rounds[0]}
    rows = [[k, f"{v:,.0f}" if v > 10 else v] for k, v in med.items()]
    scheme = "HTTPS" if url.startswith("https://") else "HTTP"
    print(f"\n### probe vs hey vs wrk over {scheme} ({args.rounds} rounds, median; -n {args.requests} "
          f"-c {args.concurrency})\n")
    print(md_table(["", "req/s or ratio"], rows))
    cols = ["load_avg_1m", *names, "probe/hey", "probe/wrk", *(f"{n} us/req" for n in names)]  # order rotated
    print("\n" + md_table(["round", *cols], [[i + 1, *(f"{r[k]:,.0f}" if r[k] > 10 else r[k] for k in cols)]
                                             for i, r in enumerate(rounds)]))
    if tls_seen:
        print(f"\nprobe's TLS (first round): {tls_seen[0]}")
    return {"url": "static nginx on loopback" if ctx else url, "scheme": scheme, "requests": args.requests,
            "concurrency": args.concurrency, "rounds": rounds, "median": med, "probe_tls": tls_seen,
            "probe_start_cpu_s": round(start_cpu, 3)}


# --- startup ----------------------------------------------------------------------------------------

def time_cmd(cmd: list[str], n: int, cwd: Path | None = None) -> float:
    """Median wall time in ms (hyperfine when installed, else a loop)."""
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            shell_cmd = " ".join(f"'{c}'" for c in cmd)
            sh(["hyperfine", "-N", "--warmup", "2", "--runs", str(n), "--export-json", f.name, shell_cmd],
               cwd=cwd)
            return round(json.loads(Path(f.name).read_text())["results"][0]["median"] * 1000, 1)
    sh(cmd, cwd=cwd)  # warm the page cache
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        sh(cmd, cwd=cwd)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 1)


def startup(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "demo"
        sh([*SCALEOUT, "init", str(proj), "--name", "benchdemo"], check=True)
        res = {
            "python -c pass": time_cmd([sys.executable, "-c", "pass"], args.rounds),
            "scaleout --help": time_cmd([*SCALEOUT, "--help"], args.rounds),
            "scaleout render": time_cmd([*SCALEOUT, "render"], args.rounds, cwd=proj),
        }
    base = res["python -c pass"]
    rows = [[k, v, round(v / base, 1)] for k, v in res.items()]
    print(f"\n### start-up time ({args.rounds} runs, median)\n")
    print(md_table(["command", "ms", "x python -c pass"], rows))
    return {"median_ms": res}


# --- compose: scaleout up vs docker-compose up ------------------------------------------------------

def _compose_cmd() -> list[str]:
    if sh(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def compose(args) -> dict:
    res: dict[str, list[float]] = {"scaleout up --replicas 3": [], "docker-compose up (hand-written)": []}
    loads: list[tuple[float, float]] = []  # 1-minute load average before and after each round
    with tempfile.TemporaryDirectory() as tmp:
        name = f"bench{uuid.uuid4().hex[:8]}"
        proj = Path(tmp) / name
        sh([*SCALEOUT, "init", str(proj), "--name", name], check=True)
        port = free_port()
        cfg = proj / "scaleout.yaml"
        cfg.write_text(cfg.read_text().replace("port: 8080", f"port: {port}"))
        # build once, so both sides start from the same image and only measure bringing the stack up
        r = sh([*SCALEOUT, "-C", str(proj), "up", "--replicas", "1"])
        if r.returncode:
            raise SystemExit(r.stderr)
        sh([*SCALEOUT, "-C", str(proj), "down"])
        backend_image = f"scaleout/{name}-backend:latest"
        hand = Path(tmp) / "handwritten"
        shutil.copytree(ROOT / "benchmarks" / "handwritten", hand)
        hand_project = f"{name}hand"
        hport = free_port()
        henv = {**ENV, "BACKEND_IMAGE": backend_image, "LB_IMAGE": IMAGE, "PORT": str(hport)}
        dc = _compose_cmd()

        def scaleout_up() -> None:
            t0 = time.perf_counter()
            r = sh([*SCALEOUT, "-C", str(proj), "up", "--replicas", "3", "--no-build"])
            if r.returncode:
                raise SystemExit(r.stderr)
            wait_http(f"http://127.0.0.1:{port}/", want_upstream=True)
            res["scaleout up --replicas 3"].append(time.perf_counter() - t0)
            sh([*SCALEOUT, "-C", str(proj), "down"])

        def plain_up() -> None:
            t0 = time.perf_counter()
            r = subprocess.run([*dc, "-p", hand_project, "up", "-d"], cwd=hand, env=henv, capture_output=True,
                               text=True)
            if r.returncode:
                raise SystemExit(r.stderr)
            wait_http(f"http://127.0.0.1:{hport}/", want_upstream=True)
            res["docker-compose up (hand-written)"].append(time.perf_counter() - t0)
            subprocess.run([*dc, "-p", hand_project, "down", "--timeout", "2"], cwd=hand, env=henv, capture_output=True)

        try:
            for i in range(args.rounds):
                # alternate which side goes first: neither always finds a warmer (or busier) machine
                load = round(os.getloadavg()[0], 1)
                for side in (scaleout_up, plain_up) if i % 2 == 0 else (plain_up, scaleout_up):
                    side()
                loads.append((load, round(os.getloadavg()[0], 1)))
                print(f"  round {i + 1}: scaleout {res['scaleout up --replicas 3'][-1]:.2f} s, plain "
                      f"{res['docker-compose up (hand-written)'][-1]:.2f} s, load {loads[-1][0]}-{loads[-1][1]}",
                      file=sys.stderr)
        finally:
            sh([*SCALEOUT, "-C", str(proj), "down"])
            subprocess.run([*dc, "-p", hand_project, "down", "--timeout", "2"], cwd=hand, env=henv, capture_output=True)
    med = {k: round(statistics.median(v), 2) for k, v in res.items()}
    base = med["docker-compose up (hand-written)"]
    pairs = zip(res["scaleout up --replicas 3"], res["docker-compose up (hand-written)"], strict=True)
    ratios = [round(a / b, 2) for a, b in pairs]
    print(f"\n### cold start to first answer through the balancer ({args.rounds} rounds, median)\n")
    print(md_table(["", "seconds", "x docker-compose"], [[k, v, round(v / base, 2)] for k, v in med.items()]))
    print(f"\nper-round ratios {ratios}, median {statistics.median(ratios)}; load average {loads}")
    return {"rounds": res, "median_s": med, "round_ratios": ratios, "median_round_ratio": statistics.median(ratios),
            "load_avg": loads}


# --- overhead: direct vs through the balancer -------------------------------------------------------


@contextlib.contextmanager
def running_project(replicas: int, yaml_edit: Callable[[str], str] | None = None) -> Iterator[tuple[Path, int]]:
    """A scaffolded project on a free port, up with `replicas` replicas for the block, down after it;
    `yaml_edit` changes its scaleout.yaml before `up`."""
    with tempfile.TemporaryDirectory() as tmp:
        name = f"bench{uuid.uuid4().hex[:8]}"
        proj = Path(tmp) / name
        sh([*SCALEOUT, "init", str(proj), "--name", name], check=True)
        port = free_port()
        cfg = proj / "scaleout.yaml"
        text = cfg.read_text().replace("port: 8080", f"port: {port}")
        cfg.write_text(yaml_edit(text) if yaml_edit else text)
        try:
            r = sh([*SCALEOUT, "-C", str(proj), "up", "--replicas", str(replicas)])
            if r.returncode:
                raise SystemExit(r.stderr)
            yield proj, port
        finally:
            sh([*SCALEOUT, "-C", str(proj), "down"])


def overhead(args) -> dict:
    import docker

    res: dict[str, list[dict]] = {"direct": [], "balancer": []}
    with running_project(1) as (proj, port):
        c = docker.from_env().containers.list(
            filters={"label": [f"com.docker.compose.project={proj.name}", "com.docker.compose.service=backend-1"]}
        )[0]
        ip = next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        targets = {"direct": f"http://{ip}:8000", "balancer": f"http://127.0.0.1:{port}"}
        for _ in range(args.rounds):
            for k, url in targets.items():
                # the replica's address belongs to this project: the probe allows it when run in the project
                r = sh(
                    [
                        *SCALEOUT,
                        "-C",
                        str(proj),
                        "probe",
                        "--url",
                        url,
                        "--duration",
                        str(args.seconds),
                        "--concurrency",
                        str(args.concurrency),
                        "--path",
                        "/api/whoami",
                        "--json",
                        "--no-cache-check",
                    ]
                )
                d = json.loads(r.stdout)
                res[k].append({"rps": d["rps"], "p50": d["latency_ms"]["p50"], "p99": d["latency_ms"]["p99"]})
    med = {k: {m: round(statistics.median(x[m] for x in v), 2) for m in ("rps", "p50", "p99")} for k, v in res.items()}
    print(f"\n### nginx overhead: one replica directly vs through the balancer ({args.rounds} rounds, median)\n")
    rows = [[k, f"{v['rps']:,.0f}", v["p50"], v["p99"]] for k, v in med.items()]
    rows.append(
        [
            "balancer / direct",
            round(med["balancer"]["rps"] / med["direct"]["rps"], 2),
            round(med["balancer"]["p50"] / med["direct"]["p50"], 2),
            round(med["balancer"]["p99"] / med["direct"]["p99"], 2),
        ]
    )
    print(md_table(["", "req/s", "p50 ms", "p99 ms"], rows))
    return {"rounds": res, "median": med}


# --- rolling: `up` after a code change, and `watch` from save to every replica serving it ---------------

BOOT_S = 4


def write_version(app: Path, original: str, version: str) -> None:
    """The scaffolded backend answering X-App-Version, booting in BOOT_S seconds."""
    text = original.replace(
        '        self.send_header("X-Backend-Id", HOSTNAME)\n',
        f'        self.send_header("X-Backend-Id", HOSTNAME)\n        self.send_header("X-App-Version", "{version}")\n',
    )
    text = text.replace("def main():\n", f"def main():\n    time.sleep({BOOT_S})\n")
    app.write_text(text)


def versions_served(url: str, n: int = 30) -> dict[str, str]:
    """Upstream address -> the last version it answered with (new connection per request)."""
    seen = {}
    for _ in range(n):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                seen[r.headers.get("X-Upstream-Addr", "?")] = r.headers.get("X-App-Version", "?")
        except OSError:
            seen["error"] = "error"
    return seen


def _progress_times(text: str) -> dict[str, float]:
    """First time (s) each kind of progress line appeared in `up`'s output."""
    out: dict[str, float] = {}
    for t, line in re.findall(r"^==> \[\s*([0-9.]+)s\] (.*)$", text, re.M):
        for key in ("rolling update of", "replaced"):
            if key in line:
                out.setdefault(key, float(t))
                if key == "replaced":
                    out["last replaced"] = float(t)
    return out


def _ts(text: str) -> float:
    """Seconds since the epoch of a Docker timestamp (nanosecond precision cut to microseconds)."""
    from datetime import datetime

    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0")[:6])


def measured_boots(project: str) -> list[float]:
    """For each running replica: seconds from its container's start to its "listening" log line (on a busy
    machine the 4 s sleep is not the whole boot: the interpreter's own start-up counts too)."""
    import docker

    boots = []
    for c in docker.from_env().containers.list(
        filters={"label": [f"com.docker.compose.project={project}", "io.scaleout.role=backend"]}
    ):
        started = _ts(c.attrs["State"]["StartedAt"])
        for line in c.logs(timestamps=True).decode(errors="replace").splitlines():
            if "listening on" in line:
                boots.append(round(_ts(line.split(" ", 1)[0]) - started, 1))
                break
    return boots


def rolling(args) -> dict:
    if not shutil.which("hey"):
        raise SystemExit("hey is not installed (apt-get install hey)")
    res: dict = {"boot_s": BOOT_S, "update": [], "watch": []}
    with tempfile.TemporaryDirectory() as tmp:
        name = f"bench{uuid.uuid4().hex[:8]}"
        proj = Path(tmp) / name
        sh([*SCALEOUT, "init", str(proj), "--name", name], check=True)
        port = free_port()
        cfg = proj / "scaleout.yaml"
        cfg.write_text(cfg.read_text().replace("port: 8080", f"port: {port}"))
        interval = int(re.search(r"interval: (\d+)", cfg.read_text()).group(1))
        res["health_interval_s"] = interval
        res["budget_s"] = (BOOT_S + interval) * 3 + 5
        url = f"http://127.0.0.1:{port}/"
        app = proj / "backend" / "app.py"
        original = app.read_text()
        try:
            write_version(app, original, "v0")
            r = sh([*SCALEOUT, "-C", str(proj), "up", "--replicas", "3"])
            if r.returncode:
                raise SystemExit(r.stderr)
            for i in range(1, args.rounds + 1):
                write_version(app, original, f"v{i}")
                hey = subprocess.Popen(
                    ["hey", "-z", "600s", "-c", "8", "-t", "10", url],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                time.sleep(1.0)
                t0 = time.perf_counter()
                r = sh([*SCALEOUT, "-C", str(proj), "up", "--json"])
                wall = time.perf_counter() - t0
                time.sleep(1.0)
                hey.send_signal(2)
                out, _ = hey.communicate(timeout=60)
                codes = {int(c): int(n) for c, n in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", out, re.M)}
                errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]\s+Get ", out, re.M))
                if r.returncode:
                    raise SystemExit(r.stderr)
                times = _progress_times(r.stderr)
                served = versions_served(url)
                boots = measured_boots(name)
                timings = json.loads(r.stdout).get("timings", {})
                row = {
                    "up_s": round(wall, 1),
                    "build_s": timings.get("build_s"),
                    "roll_s": timings.get("roll_s"),
                    # the issue's measure: the whole `up`, the build excluded (it is reported apart)
                    "up_without_build_s": round(wall - (timings.get("build_s") or 0.0), 1),
                    "timings": timings,
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                    "boot_s": boots,
                    "budget_s": round((statistics.mean(boots) + interval) * 3 + 5, 1),
                    "rolling_s": round(times["last replaced"] - times["rolling update of"], 1),
                    "requests": sum(codes.values()) + errors,
                    "failed": sum(n for c, n in codes.items() if not 200 <= c < 300) + errors,
                    "statuses": codes,
                    "replicas_on_new": sorted(served.values()) == [f"v{i}"] * 3,
                    "progress": [line for line in r.stderr.splitlines() if line.startswith("==> ")],
                }
                res["update"].append(row)
                print(f"  update {i}: {({k: v for k, v in row.items() if k != 'progress'})}", file=sys.stderr)

            # watch: from the save to every replica answering with the new version
            log = Path(tmp) / "watch.log"
            watch = subprocess.Popen(
                [*SCALEOUT, "-C", str(proj), "watch"], env=ENV, stdout=subprocess.DEVNULL, stderr=log.open("w")
            )
            try:
                deadline = time.monotonic() + 30
                while "watching" not in log.read_text() and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(0.5)
                for j in range(1, args.rounds + 1):
                    version = f"w{j}"
                    done_before = log.read_text().count("rolled out in")
                    t0 = time.perf_counter()
                    write_version(app, original, version)
                    deadline = time.monotonic() + 300
                    while sorted(versions_served(url, 15).values()) != [version] * 3:
                        if time.monotonic() > deadline:
                            raise SystemExit(f"watch: {version} not served everywhere after 300 s\n{log.read_text()}")
                        time.sleep(0.2)
                    save_to_served = time.perf_counter() - t0
                    while log.read_text().count("rolled out in") == done_before:
                        time.sleep(0.2)
                    text = log.read_text()
                    rounds = re.findall(r"rolled out in ([0-9.]+)s", text)
                    row = {"save_to_all_new_s": round(save_to_served, 1), "round_s": float(rounds[-1])}
                    res["watch"].append(row)
                    print(f"  watch {j}: {row}", file=sys.stderr)
            finally:
                watch.send_signal(2)
                watch.wait(timeout=120)
        finally:
            sh([*SCALEOUT, "-C", str(proj), "down"])
    up = res["update"]
    print(
        f"\n### rolling update of 3 replicas, {BOOT_S} s boot, health interval {res['health_interval_s']} s, "
        f"under load (hey -c 8); budget {res['budget_s']} s\n"
    )
    print(
        md_table(
            [
                "round",
                "`up` wall s",
                "build s",
                "`up` without build s",
                "roll s (up's timing)",
                "first roll line -> last replaced s",
                "measured boots s",
                "budget s (measured boot)",
                "within budget",
                "requests",
                "failed",
                "all replicas new",
                "load avg",
            ],
            [
                [
                    i + 1,
                    u["up_s"],
                    u["build_s"],
                    u["up_without_build_s"],
                    u["roll_s"],
                    u["rolling_s"],
                    ", ".join(map(str, u["boot_s"])),
                    u["budget_s"],
                    u["up_without_build_s"] <= u["budget_s"],
                    f"{u['requests']:,}",
                    u["failed"],
                    u["replicas_on_new"],
                    u["load_avg_1m"],
                ]
                for i, u in enumerate(up)
            ],
        )
    )
    print("\nphases of each `up` (its --json timings, s): "
          + "; ".join(", ".join(f"{k[:-2]} {v}" for k, v in u["timings"].items()) for u in up))
    print("\n### watch: save -> every replica serves the new version\n")
    print(
        md_table(
            ["round", "save to all new, s", "watch round (build + update), s"],
            [[i + 1, w["save_to_all_new_s"], w["round_s"]] for i, w in enumerate(res["watch"])],
        )
    )
    return res

# --- memory: a long probe's resident memory and its summary time -------------------------------------

def tree_memory_kb(pid: int) -> tuple[int, int, int]:
    """(RSS kB, PSS kB, processes) of `pid` and all its descendants, from /proc. RSS counts the pages forked
    workers share with their parent once per process; PSS splits them, so its sum is the tree's memory."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    rss = pss = n = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        n += 1
        rss += int(re.search(r"^Rss:\s+(\d+)", rollup, re.M).group(1))
        pss += int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))
        todo += children.get(p, [])
    return rss, pss, n


def probe_memory(proj: Path, seconds: float, every: float, root: Path) -> dict:
    """Run `scaleout probe --duration` from the checkout `root`; sample its processes' memory every `every`
    seconds; the summary step is the time from the load workers' exit to the probe's own exit."""
    env = {**ENV, "PYTHONPATH": str(root)}
    # no cache checks: they are HTTP requests after the load, not the summary this times
    cmd = [sys.executable, "-m", "scaleout", "-C", str(proj), "probe", "--duration", str(seconds),
           "--concurrency", "32", "--no-cache-check", "--json"]
    t0 = time.monotonic()
    # cwd: `python -m` puts the working directory before PYTHONPATH, so it must be the checkout measured
    p = subprocess.Popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, last, peak_workers, load_end = [], -every, 0, None
    while p.poll() is None:
        now = time.monotonic() - t0
        rss, pss, n = tree_memory_kb(p.pid)
        peak_workers = max(peak_workers, n)
        if peak_workers > 1 and n == 1 and load_end is None:
            load_end = now  # the worker processes sent their results and exited
        if now - last >= every and n:
            samples.append((round(now, 1), round(pss / 1024, 1), round(rss / 1024, 1), n))
            last = now
        time.sleep(0.02)
    end = time.monotonic() - t0
    out, err = p.communicate()
    if p.returncode not in (0, 1):
        raise SystemExit(f"probe failed ({p.returncode}): {err[-2000:]}")
    res = json.loads(out)
    loaded = [s for s in samples if 5 <= s[0] <= seconds]  # after start-up, while the load runs
    first, lastrow = loaded[0], loaded[-1]
    # least-squares slope of PSS over the loaded window: single samples move by a few 100 kB either way
    mt, mp = statistics.mean(s[0] for s in loaded), statistics.mean(s[1] for s in loaded)
    slope = sum((s[0] - mt) * (s[1] - mp) for s in loaded) / sum((s[0] - mt) ** 2 for s in loaded)
    return {"root": str(root), "duration_s": seconds, "requests": res["requests"], "rps": res["rps"],
            "verdict": res["verdict"], "processes": peak_workers,
            "pss_mb_first": first[1], "pss_mb_last": lastrow[1], "pss_mb_peak": max(s[1] for s in samples),
            "rss_sum_mb_peak": max(s[2] for s in samples),
            "growth_mb_per_min": round(slope * 60, 3),
            "summary_s": round(end - load_end, 3) if load_end is not None else None,
            "load_avg_1m": round(os.getloadavg()[0], 2), "series_t_pss_rss_procs": samples}


def memory(args) -> dict:
    """`scaleout probe --duration` against a 3-replica stack: resident memory over time, summary time."""
    res: dict = {"runs": []}
    with running_project(3) as (proj, port):
        for root in [ROOT, *args.compare_root]:
            seconds = args.memory_seconds if root == ROOT else args.compare_seconds or args.memory_seconds
            run = probe_memory(proj, seconds, args.every, root)
            brief = {k: v for k, v in run.items() if k != "series_t_pss_rss_procs"}
            print(f"  {json.dumps(brief)}", file=sys.stderr)
            res["runs"].append(run)
    print("\n### probe memory over a long run (3 replicas, 32 connections)\n")
    print(md_table(["build", "duration, s", "requests", "req/s", "PSS first / last / peak, MB", "RSS sum peak, MB",
                    "growth, MB/min", "summary, s", "load avg"],
                   [[r["root"], r["duration_s"], f"{r['requests']:,}", r["rps"],
                     f"{r['pss_mb_first']} / {r['pss_mb_last']} / {r['pss_mb_peak']}", r["rss_sum_mb_peak"],
                     r["growth_mb_per_min"], r["summary_s"], r["load_avg_1m"]] for r in res["runs"]]))
    return res



def hotpath(args) -> dict:
    """What recording one answer costs (ns, median of 5) and how long the summary of 10^6 answers takes:
    the histogram against the old per-request arrays (and the `hdrhistogram` package when installed)."""
    import random
    import timeit
    from array import array

    sys.path.insert(0, str(ROOT))
    from scaleout.probe.project import summarize
    from scaleout.probe.samples import Samples
    from scaleout.probe.stats import latency_summary

    rnd = random.Random(1)
    n = 200_000
    lats = [rnd.lognormvariate(-7, 1) for _ in range(n)]
    ups = [rnd.randrange(1, 4) for _ in range(n)]

    def arrays() -> None:  # what loadconn.record_ok appended per request before
        lat, st, up, err, key = array("d"), array("H"), array("H"), array("B"), array("i")
        for x, u in zip(lats, ups, strict=True):
            lat.append(x)
            st.append(200)
            up.append(u)
            err.append(0)
            key.append(u)

    def histogram() -> None:
        s = Samples()
        s.upstreams += ["10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"]
        answer = s.answer
        for x, u in zip(lats, ups, strict=True):
            answer(x, 200, u, u)

    cases = {"arrays (before)": arrays, "Samples.answer (histogram)": histogram}
    try:
        from hdrh.histogram import HdrHistogram

        micros = [int(x * 1e6) + 1 for x in lats]

        def hdr() -> None:
            h = HdrHistogram(1, 3_600_000_000, 3)
            for v in micros:
                h.record_value(v)

        cases["hdrhistogram record_value (one histogram only)"] = hdr
    except ImportError:
        pass
    res: dict = {"record_ns": {}}
    for name, fn in cases.items():
        res["record_ns"][name] = round(statistics.median(timeit.repeat(fn, number=1, repeat=5)) / n * 1e9)
    big = Samples()
    big.upstreams += ["10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"]
    for _ in range(5):
        for x, u in zip(lats, ups, strict=True):
            big.answer(x, 200, u, u)
    t0 = time.perf_counter()
    summarize(big, 1.0, "http://127.0.0.1", {})
    res["summary_s_1e6_histogram"] = round(time.perf_counter() - t0, 4)
    million = lats * 5
    t0 = time.perf_counter()
    for u in (1, 2, 3):
        latency_summary([x for x, up in zip(million, ups * 5, strict=True) if up == u])
    latency_summary(million)
    res["summary_s_1e6_sorted_before"] = round(time.perf_counter() - t0, 4)
    res["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print("\n### recording one answer, and the summary of 10^6\n")
    print(md_table(["what", "value"], [*[[f"record: {k}", f"{v} ns"] for k, v in res["record_ns"].items()],
                                       ["summary of 10^6 answers, histogram", f"{res['summary_s_1e6_histogram']} s"],
                                       ["summary of 10^6 answers, sorting (before)",
                                        f"{res['summary_s_1e6_sorted_before']} s"],
                                       ["load average", res["load_avg_1m"]]]))
    return res

# --- rescale and ratios: every ratio of the issue side by side ----------------------------------------

RESCALE_STEPS = (32, 4)


def rescale_budgets(frm: int, to: int, boot_s: float, interval: int, drain: int) -> dict[str, float]:
    """What each phase of a rescale may cost if it grows with the work and not with the replica count:
    new replicas boot and pass their health check together (one boot and one health interval, plus one
    Compose call), removed ones drain once and stop together (one drain, one shutdown)."""
    if to > frm:
        return {"start_s": 5.0, "healthy_s": boot_s + interval + 2.0, "reload_s": 2.0,
                "total_s": boot_s + interval + 10.0}
    return {"drain_s": drain + 0.5, "stop_s": 5.0, "reload_s": 2.0, "total_s": drain + 10.0}


def rescale(args) -> dict:
    """`scaleout up --replicas 32` from a running 1-replica stack, then back to 4: wall seconds of each,
    and each phase of `up` (its --json timings) against what it may cost when it grows with the work."""
    res: dict = {"steps": []}
    with running_project(1) as (proj, port):
        text = (proj / "scaleout.yaml").read_text()
        interval = int(re.search(r"interval: (\d+)", text).group(1))
        drain = int(m.group(1)) if (m := re.search(r"drain_seconds: (\d+)", text)) else 3
        frm = 1
        for n in RESCALE_STEPS:
            load = round(os.getloadavg()[0], 2)
            t0 = time.perf_counter()
            r = sh([*SCALEOUT, "-C", str(proj), "up", "--replicas", str(n), "--no-build", "--json"])
            wall = time.perf_counter() - t0
            if r.returncode:
                raise SystemExit(r.stderr[-3000:])
            timings = json.loads(r.stdout).get("timings", {})
            boots = measured_boots(proj.name) or [1.0]
            budgets = rescale_budgets(frm, n, max(boots), interval, drain)
            res["steps"].append({"from": frm, "to": n, "s": round(wall, 2), "load_avg_1m": load,
                                 "timings": timings, "budgets": budgets})
            print(f"  rescale {frm} -> {n}: {wall:.2f} s (load {load}) {timings}", file=sys.stderr)
            frm = n
    print("\n### rescale of a running stack 1 -> 32 -> 4 (phases from `up --json`, against their budgets)\n")
    rows = []
    for st in res["steps"]:
        for key, value in st["timings"].items():
            budget = st["budgets"].get(key)
            rows.append([f"{st['from']} -> {st['to']}", key[:-2], value, budget if budget is not None else "-",
                         "-" if budget is None else value <= budget])
        rows.append([f"{st['from']} -> {st['to']}", "wall (process)", st["s"], "-", "-"])
    print(md_table(["step", "phase", "seconds", "budget s", "within"], rows))
    print(f"\nload average at the start of each step: {[s['load_avg_1m'] for s in res['steps']]}")
    return res


def ratios(args) -> dict:
    """Every ratio issue 22 asks for, measured in one command and printed side by side. A part that fails
    (a replica's health check timing out on a loaded machine) is reported as failed; the others still count."""
    out: dict = {}

    def part(name: str, section: Callable[[argparse.Namespace], dict], https: bool = False) -> None:
        args.https = https
        try:
            out[name] = section(args)
        except SystemExit as exc:
            out[name] = {"error": str(exc.code)}
            print(f"  {name} failed: {str(exc.code).strip().splitlines()[0] if exc.code else exc}", file=sys.stderr)
        finally:
            args.https = False

    part("speed", speed)
    part("speed_https", speed, https=True)
    part("compose", compose)
    part("rescale", rescale)
    part("rolling", rolling)

    def value(get: Callable[[], object]) -> object:
        try:
            return get()
        except (KeyError, IndexError, statistics.StatisticsError):
            return "failed (see above)"

    up = out["rolling"].get("update", [])
    rows = [
        ["probe / wrk (HTTP)", value(lambda: out["speed"]["median"]["probe/wrk"])],
        ["probe / hey (HTTP)", value(lambda: out["speed"]["median"]["probe/hey"])],
        ["probe / wrk (HTTPS)", value(lambda: out["speed_https"]["median"]["probe/wrk"])],
        ["probe / hey (HTTPS)", value(lambda: out["speed_https"]["median"]["probe/hey"])],
        ["probe CPU us/req / wrk's (HTTP)", value(lambda: round(out["speed"]["median"]["probe us/req"]
                                                                / out["speed"]["median"]["wrk us/req"], 2))],
        ["probe CPU us/req / wrk's (HTTPS)", value(lambda: round(out["speed_https"]["median"]["probe us/req"]
                                                                 / out["speed_https"]["median"]["wrk us/req"], 2))],
        ["up cold / compose", value(lambda: out["compose"]["median_round_ratio"])],
        ["rescale 1 -> 32, s", value(lambda: out["rescale"]["steps"][0]["s"])],
        ["rescale 32 -> 4, s", value(lambda: out["rescale"]["steps"][1]["s"])],
        ["rolling (first roll line -> last replaced) / budget",
         value(lambda: round(statistics.median(u["rolling_s"] / u["budget_s"] for u in up), 2))],
        ["whole `up` without its build / budget",
         value(lambda: round(statistics.median(u["up_without_build_s"] / u["budget_s"] for u in up), 2))],
        ["build of each rolling `up`, s", value(lambda: ", ".join(str(u["build_s"]) for u in up) if up else up[0])],
        ["failed requests during rolling", value(lambda: sum(u["failed"] for u in up) if up else up[0])],
        ["load avg (1 min) at the end", round(os.getloadavg()[0], 2)],
    ]
    print("\n### issue 22: every ratio, one run\n")
    print(md_table(["", "median"], rows))
    return out

SECTIONS = {"speed": speed, "startup": startup, "compose": compose, "overhead": overhead, "rolling": rolling,
            "memory": memory, "hotpath": hotpath, "rescale": rescale,
            "ratios": ratios}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("section", choices=[*SECTIONS, "all"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=20000, help="speed: requests per probe/hey run")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--wrk-seconds", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=3.0, help="overhead: seconds per measurement")
    ap.add_argument("--url", help="speed: an existing loopback target instead of starting nginx")
    ap.add_argument("--nginx-workers", default="auto")
    ap.add_argument("--memory-seconds", type=float, default=600.0, help="memory: the probe's --duration")
    ap.add_argument("--every", type=float, default=5.0, help="memory: seconds between RSS samples")
    ap.add_argument("--compare-root", type=Path, action="append", default=[],
                    help="memory: also run the probe of this checkout (e.g. an older build), after this one's")
    ap.add_argument("--compare-seconds", type=float, help="memory: --duration of the --compare-root runs")
    ap.add_argument("--https", action="store_true", help="speed: over HTTPS (nginx with TLS, as the balancer's)")
    ap.add_argument("--cacert", type=Path, help="speed: with an https --url, the authority that signed it")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    args = ap.parse_args()
    out = json.loads(args.out.read_text()) if args.out.exists() else {}
    out["machine"] = machine()
    print(f"machine: {json.dumps(out['machine'])}")
    for name in [s for s in SECTIONS if s not in ("memory", "ratios")] if args.section == "all" else [args.section]:
        key = "speed_https" if name == "speed" and (args.https or (args.url or "").startswith("https://")) else name
        out[key] = SECTIONS[name](args)
        out[key]["machine"] = machine()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
