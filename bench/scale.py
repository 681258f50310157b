"""Scaling out on one machine: checks/s by API worker processes, jobs/s by job workers.

On one fresh PostgreSQL database (``guard_bench_scale_<pid>`` on 127.0.0.1:5432, dropped at the
end), a data folder made by ``guard init``, an integrator key of tenant ``acme`` (requester
``acme/app``, made by ``guard keys create``) and, over HTTP, a subject with the astronaut photo
enrolled who granted ``relight`` to ``acme/app``, so every check and edit below is the allow path
with a real face (``allow_with_conditions``), audited. Rate limits are set out of the way
(``GUARD_API_RATE_BURST`` and ``GUARD_API_RATE_PER_SECOND`` 10^6); with several API workers
they are shared through Redis (``GUARD_REDIS_URL``, db 13), as ``guard serve`` asks.

1. **checks/s**: ``guard serve --workers N`` for each N of ``--processes``; a load process (this
   one: asyncio + ``httpx.AsyncClient``) keeps C = 2N + 2 requests ``POST /v1/checks`` in
   flight (params ``{"operation": "relight"}``, the 512x512 astronaut photo, one face): more
   than N workers' 2 image slots each (``GUARD_API_MAX_CONCURRENT_IMAGES``), fewer than slots
   and admission queues together (6 per worker), so the server is saturated; with several
   workers the kernel may still give one worker more connections than that (503 ``busy``,
   reported; the client waits the Retry-After). After a warm-up (every worker's models and
   pools), ``--seconds`` of load: answered checks/s, p50/p95 latency, and audit appends/s
   (``audit_state.size`` before and after the window). Every answer that is not a 200
   ``allow_with_conditions`` is counted and reported.
2. **jobs/s**: ``guard serve --workers 1`` to submit, and N ``guard worker`` processes (classic
   editor, one job each at a time), started first and waited for (each prints its start line
   once its models are loaded). Then ``--jobs`` jobs ``POST /v1/jobs`` (the same form), sent by
   two client threads, and waited for in ``edit_jobs``: jobs/s from the first submit to the last
   finish (the first job's ``created_at`` to the last ``finished_at``), p50/p95 of each job's
   ``finished_at - created_at``, audit appends/s in that window. The API's input gate at
   submission shares the CPU with the workers, as it would on one host.

Baseline: 1 process (the ratio column is throughput against it). Load generator, API, workers,
PostgreSQL and Redis share this machine's cores: the figures are what one such box does. So
each row also says where the CPU went in its window (from ``/proc``): the measured processes,
the load, PostgreSQL's backends of the bench database, and the rest of the machine (other users
of a shared machine show there). A server start that is not ready in 120 s is reported (its
last ``/readyz`` answer, child processes and output) and tried once more.

Usage: ``python bench/scale.py [--processes 1,2,4] [--seconds 20] [--jobs 40] [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from guard.samples import sample_bytes

POSTGRES = os.environ.get("GUARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("GUARD_BENCH_SCALE_REDIS_URL", "redis://127.0.0.1:6379/13")
GUARD = str(Path(sys.executable).with_name("guard"))
EVIDENCE = hashlib.sha256(b"bench scale consent").hexdigest()
EXPECTED = "allow_with_conditions"
FINISHED = ("succeeded", "denied", "failed", "cancelled")
PARAMS = {"params": json.dumps({"operation": "relight"})}


def _files() -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("astronaut.png", sample_bytes("astronaut"), "image/png")}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pct(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- CPU accounting ----------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(groups: dict[str, list[int]], database: str) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the live processes of each named list of
    process groups (a ``guard serve`` and its uvicorn workers, ``guard worker`` processes), and
    by PostgreSQL's backends connected to ``database`` (under ``postgres``)."""
    ticks = dict.fromkeys([*groups, "postgres"], 0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
            fields = tail.split()  # state, ppid, pgrp, ...; utime and stime at 11 and 12
            used = int(fields[11]) + int(fields[12])
            for name, pgids in groups.items():
                if int(fields[2]) in pgids:
                    ticks[name] += used
            if head.endswith("(postgres") and database.encode() in (entry / "cmdline").read_bytes():
                ticks["postgres"] += used
        except (OSError, IndexError, ValueError):
            continue
    return {name: value / TICK for name, value in ticks.items()}


def machine_cpu_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, every core together."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / TICK, sum(values) / TICK


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    processes: dict[str, float]
    own: float
    machine: tuple[float, float]

    @staticmethod
    def take(groups: dict[str, list[int]], database: str) -> CpuSnapshot:
        return CpuSnapshot(
            time.perf_counter(),
            process_cpu_s(groups, database),
            time.process_time(),
            machine_cpu_s(),
        )

    def since(self, start: CpuSnapshot) -> dict[str, float]:
        """Cores used in between by each group, PostgreSQL's backends of the run (``postgres``),
        this process (``load``), everything else on the machine (``rest``: other users of it,
        PostgreSQL's and the kernel's own work), and the machine's busy share (``busy``, 0-1)."""
        wall = self.wall - start.wall
        cores = {
            name: (self.processes[name] - start.processes[name]) / wall for name in self.processes
        }
        cores["load"] = (self.own - start.own) / wall
        busy = self.machine[0] - start.machine[0]
        every = self.machine[1] - start.machine[1]
        cores["rest"] = busy / wall - sum(cores.values())
        cores["busy"] = busy / every if every > 0 else float("nan")
        return cores


# --- processes ---------------------------------------------------------------------------------


class Process:
    """A ``guard`` subprocess in its own session, its output in a log file; stopped with
    SIGTERM, then SIGKILL (its whole process group: uvicorn's workers too)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            [GUARD, *args],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # orphaned uvicorn children, if any
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._out.close()


@dataclass
class Deployment:
    """The database, data folder, environment and keys every process of a run shares."""

    url: str
    data_dir: Path
    env: dict[str, str]
    token: str = ""
    started: list[Process] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def database(self) -> str:
        return self.url.rsplit("/", 1)[1]

    def start(self, args: list[str], log_name: str, **extra: str) -> Process:
        process = Process(args, {**self.env, **extra}, self.data_dir / log_name)
        self.started.append(process)
        return process

    def serve(self, workers: int) -> tuple[Process, str]:
        """``guard serve --workers N``, ready; a start that is not ready within two minutes is
        reported (its last ``/readyz`` answer and output), stopped and tried once more."""
        try:
            return self._serve(workers)
        except TimeoutError as error:
            print(f"  NOT READY, trying once more: {error}", file=sys.stderr)
            self.failures.append(str(error))
            return self._serve(workers)

    def _serve(self, workers: int) -> tuple[Process, str]:
        port = _free_port()
        args = ["serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
        redis = REDIS_URL if workers > 1 else ""
        server = self.start(args, f"serve-{workers}-{port}.log", GUARD_REDIS_URL=redis)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        last = ""
        while time.monotonic() < deadline:
            if server.popen.poll() is not None:
                raise RuntimeError(f"guard serve exited:\n{server.output()[-2000:]}")
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    return server, base
                last = f"{ready.status_code} {ready.text[:500]}"
            except httpx.HTTPError as error:
                last = repr(error)
            time.sleep(0.3)
        tree = subprocess.run(
            ["ps", "-o", "pid,stat,etime,time,args", "--ppid", str(server.popen.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        server.stop()
        self.started.remove(server)
        raise TimeoutError(
            f"guard serve --workers {workers} not ready in 120 s (last /readyz: {last}); "
            f"its children:\n{tree}its output:\n{server.output()[-2000:]}"
        )

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()
        self.started.clear()


def _admin(statement: str) -> None:
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


def _guard_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([GUARD, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"guard {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done.stdout


def prepare(name: str, data_dir: Path, jobs: int) -> Deployment:
    url = f"{POSTGRES}/{name}"
    env = {
        **os.environ,
        "GUARD_DATA_DIR": str(data_dir),
        "GUARD_DATABASE_URL": url,
        "GUARD_API_RATE_BURST": "1000000",
        "GUARD_API_RATE_PER_SECOND": "1000000",
        "GUARD_JOB_MAX_QUEUED_PER_TENANT": str(max(100, jobs + 10)),
    }
    _guard_cli(env, "init")
    key = ["keys", "create", "--tenant", "acme", "--role", "integrator", "--requester", "acme/app"]
    issued = json.loads(_guard_cli(env, *key, "--json"))
    return Deployment(url=url, data_dir=data_dir, env=env, token=issued["token"])


def consenting_subject(base: str, token: str) -> None:
    """The astronaut, enrolled in tenant acme, granting acme/app relight (over HTTP)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as api:
        made = api.post("/v1/subjects", json={"display_name": "Eileen"})
        made.raise_for_status()
        subject = made.json()["id"]
        api.post(f"/v1/subjects/{subject}/faces", files=_files()).raise_for_status()
        api.post(
            "/v1/consents",
            json={"subject_id": subject, "scopes": ["relight"], "evidence_sha256": EVIDENCE},
        ).raise_for_status()
        check = api.post("/v1/checks", data=PARAMS, files=_files())
        verdict = check.json()["decision"]["verdict"] if check.status_code == 200 else check.text
        if verdict != EXPECTED:
            raise RuntimeError(f"the consenting subject's check is not {EXPECTED}: {verdict}")


def audit_size(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT size FROM audit_state")).scalar_one())


# --- 1. checks ---------------------------------------------------------------------------------


@dataclass
class Row:
    processes: int
    clients: int
    done: int
    per_second: float
    p50_ms: float
    p95_ms: float
    appends_per_second: float
    problems: Counter[str]
    # Cores used in the window by the measured processes and by the others of the bench (the load
    # process for checks, the submitting API for jobs); the machine's busy share (0-1).
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""


def _problem(response: httpx.Response) -> str | None:
    """What is wrong with a check's answer (``None``: 200 and the expected verdict)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        return f"{response.status_code} {body.get('code', '')}".strip()
    verdict = body.get("decision", {}).get("verdict")
    return None if verdict == EXPECTED else f"200 {verdict}"


async def _load(
    base: str,
    token: str,
    clients: int,
    warmup: float,
    seconds: float,
    engine: Engine,
    pgids: list[int],
    database: str,
) -> tuple[list[float], Counter[str], float, int, tuple[float, float, float]]:
    """Latencies (ms) of answered checks in the window, what else came back, the window's
    length, the audit appends in it and the CPU used in it (server's and this process's
    cores, the machine's busy share)."""
    files = _files()
    latencies: list[float] = []
    problems: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    window: dict[str, float] = {}
    snapshots: list[CpuSnapshot] = []
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=120, limits=limits
    ) as client:
        begin = time.perf_counter()
        window_start, window_end = begin + warmup, begin + warmup + seconds

        async def one_client() -> None:
            while (now := time.perf_counter()) < window_end:
                try:
                    response = await client.post("/v1/checks", data=PARAMS, files=files)
                except httpx.HTTPError as error:
                    if window_start <= time.perf_counter() <= window_end:
                        problems[type(error).__name__] += 1
                    continue
                finished = time.perf_counter()
                problem = _problem(response)
                if window_start <= finished <= window_end:  # answers in the window count
                    if problem is None:
                        latencies.append((finished - now) * 1000)
                    else:
                        if not problems:
                            print(f"  first error: {response.text[:300]}", file=sys.stderr)
                        problems[problem] += 1
                if response.status_code == 503 and "retry-after" in response.headers:
                    # Honour Retry-After, as the service asks (a client that hammers instead
                    # spends the workers' CPU on refusals).
                    await asyncio.sleep(float(response.headers["retry-after"]))

        async def mark() -> None:
            await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
            window["size0"] = await asyncio.to_thread(audit_size, engine)
            window["t0"] = time.perf_counter()
            snapshots.append(CpuSnapshot.take({"api": pgids}, database))
            await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
            window["size1"] = await asyncio.to_thread(audit_size, engine)
            window["t1"] = time.perf_counter()
            snapshots.append(CpuSnapshot.take({"api": pgids}, database))

        await asyncio.gather(mark(), *(one_client() for _ in range(clients)))
    elapsed = window["t1"] - window["t0"]
    appends = int(window["size1"] - window["size0"])
    return latencies, problems, elapsed, appends, snapshots[1].since(snapshots[0])


def bench_checks(
    deployment: Deployment, engine: Engine, processes: int, warmup: float, seconds: float
) -> Row:
    clients = 2 * processes + 2
    server, base = deployment.serve(processes)
    try:
        latencies, problems, elapsed, appends, cpu = asyncio.run(
            _load(
                base,
                deployment.token,
                clients,
                warmup,
                seconds,
                engine,
                [server.popen.pid],
                deployment.database,
            )
        )
    finally:
        server.stop()
        deployment.started.remove(server)
    ordered = sorted(latencies)
    return Row(
        processes,
        clients,
        len(ordered),
        len(ordered) / seconds,
        _pct(ordered, 0.5),
        _pct(ordered, 0.95),
        appends / elapsed,
        problems,
        cpu,
    )


# --- 2. jobs -----------------------------------------------------------------------------------


def _submit_all(base: str, token: str, count: int, threads: int) -> tuple[list[str], Counter[str]]:
    ids: list[str] = []
    problems: Counter[str] = Counter()
    lock = threading.Lock()
    remaining = iter(range(count))
    files = _files()

    def submitter() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return
                response = client.post("/v1/jobs", data=PARAMS, files=files)
                with lock:
                    if response.status_code == 202:
                        ids.append(response.json()["job"]["id"])
                    else:
                        if not problems:
                            print(
                                f"  first submit error: {response.status_code} "
                                f"{response.text[:300]}",
                                file=sys.stderr,
                            )
                        problems[f"submit {response.status_code}"] += 1

    pool = [threading.Thread(target=submitter) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return ids, problems


def _wait_for_workers(workers: list[Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for worker in workers:
        while "guard worker:" not in worker.output():
            if worker.popen.poll() is not None:
                raise RuntimeError(f"guard worker exited:\n{worker.output()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"guard worker never started:\n{worker.output()[-2000:]}")
            time.sleep(0.2)


def bench_jobs(
    deployment: Deployment,
    engine: Engine,
    processes: int,
    jobs: int,
    api: Process,
    base: str,
    timeout: float,
) -> Row:
    workers = [
        deployment.start(["worker"], f"worker-{processes}-{i}.log") for i in range(processes)
    ]
    try:
        _wait_for_workers(workers, 180)
        time.sleep(2.0)  # connect, register, first poll
        pgids = [worker.popen.pid for worker in workers]
        size0 = audit_size(engine)
        groups = {"workers": pgids, "api": [api.popen.pid]}
        first = CpuSnapshot.take(groups, deployment.database)
        submitted_at = time.perf_counter()
        ids, problems = _submit_all(base, deployment.token, jobs, threads=2)
        submit_s = time.perf_counter() - submitted_at
        deadline = time.monotonic() + timeout
        states: Counter[str] = Counter()
        query = text("SELECT state, count(*) FROM edit_jobs WHERE id = ANY(:ids) GROUP BY state")
        while True:
            with engine.connect() as connection:
                states = Counter(dict(connection.execute(query, {"ids": ids}).all()))  # type: ignore[arg-type]
            if sum(states[s] for s in FINISHED) == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        last = CpuSnapshot.take(groups, deployment.database)
        size1 = audit_size(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT created_at, finished_at, state, attempt, error FROM edit_jobs "
                    "WHERE id = ANY(:ids)"
                ),
                {"ids": ids},
            ).all()
        for worker in workers:
            if worker.popen.poll() is not None:
                problems[f"worker exited {worker.popen.returncode}"] += 1
    finally:
        for worker in workers:
            worker.stop()
            deployment.started.remove(worker)
    for state, count in states.items():
        if state != "succeeded":
            problems[f"job {state}"] += count
    errors = Counter(str(r.error)[:120] for r in rows if r.error)
    for error, count in errors.items():
        print(f"  job error ×{count}: {error}", file=sys.stderr)
    retried = sum(1 for r in rows if r.attempt > 1)
    if retried:
        problems["attempt > 1"] += retried
    done = [r for r in rows if r.state == "succeeded" and r.finished_at is not None]
    finishes = [r.finished_at for r in rows if r.finished_at is not None]
    # The window: the first submit (client clock) to the last finish (the worker's clock, on
    # this same machine), measured as the first job's created_at to the last finished_at plus
    # the submit request's own wait before its row was written (negligible next to seconds).
    if finishes and rows:
        elapsed = (max(finishes) - min(r.created_at for r in rows)).total_seconds()
    else:
        elapsed = time.perf_counter() - submitted_at
    latencies = sorted((r.finished_at - r.created_at).total_seconds() * 1000 for r in done)
    note = f"all {len(ids)} submitted in {submit_s:.1f} s ({len(ids) / submit_s:.2f}/s)"
    return Row(
        processes,
        2,
        len(done),
        len(done) / elapsed if elapsed > 0 else float("nan"),
        _pct(latencies, 0.5),
        _pct(latencies, 0.95),
        (size1 - size0) / elapsed if elapsed > 0 else float("nan"),
        problems,
        last.since(first),
        note,
    )


# --- output ------------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def table(
    title: str,
    unit: str,
    rows: list[Row],
    labels: tuple[str, str],
    cpu_columns: list[tuple[str, str]],
) -> None:
    """``labels``: what the clients column and the done column count."""
    base = next((r.per_second for r in rows if r.processes == 1), None)
    print(f"\n{title}\n")
    print(
        f"| processes | {labels[0]} | {labels[1]} | {unit} | vs 1 process | p50 ms | p95 ms "
        f"| audit appends/s | {' | '.join(label for _, label in cpu_columns)} | machine busy "
        "| not answered as expected |"
    )
    print("|---" * (10 + len(cpu_columns)) + "|")
    for r in rows:
        ratio = f"{r.per_second / base:.2f}×" if base else "–"
        problems = ", ".join(f"{k}: {v}" for k, v in sorted(r.problems.items())) or "0"
        cpu = " | ".join(f"{r.cpu.get(key, float('nan')):.2f}" for key, _ in cpu_columns)
        print(
            f"| {r.processes} | {r.clients} | {r.done} | {r.per_second:.2f} | {ratio} "
            f"| {r.p50_ms:,.0f} | {r.p95_ms:,.0f} | {r.appends_per_second:.1f} "
            f"| {cpu} | {r.cpu.get('busy', float('nan')):.0%} | {problems} |"
        )
    notes = [f"{r.processes}: {r.note}" for r in rows if r.note]
    if notes:
        print("\n" + "; ".join(notes))


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    name = f"guard_bench_scale_{os.getpid()}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2,4", help="Process counts, e.g. 1,2,4.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Check load per count.")
    parser.add_argument("--warmup", type=float, default=6.0, help="Check warm-up per count.")
    parser.add_argument("--jobs", type=int, default=40, help="Jobs submitted per count.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 1,2; 4 s; 6 jobs.")
    parser.add_argument(
        "--sections", default="checks,jobs", help="Which measurements: checks, jobs or both."
    )
    args = parser.parse_args()
    if args.quick:
        args.processes, args.seconds, args.warmup, args.jobs = "1,2", 4.0, 3.0, 6
    counts = [int(n) for n in args.processes.split(",")]
    sections = set(args.sections.split(","))
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    check_rows: list[Row] = []
    job_rows: list[Row] = []
    with fresh_database() as name, tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        deployment = prepare(name, Path(tmp), args.jobs)
        engine = create_engine(deployment.url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            _, base = deployment.serve(1)
            consenting_subject(base, deployment.token)
            deployment.stop_all()
            if "checks" in sections:
                for n in counts:
                    row = bench_checks(deployment, engine, n, args.warmup, args.seconds)
                    check_rows.append(row)
                    print(
                        f"  checks, {n} API workers, {row.clients} clients: "
                        f"{row.per_second:.1f}/s, p50 {row.p50_ms:.0f} ms, problems "
                        f"{dict(row.problems) or 0}",
                        file=sys.stderr,
                    )
            if "jobs" in sections:
                api, base = deployment.serve(1)
                for n in counts:
                    row = bench_jobs(deployment, engine, n, args.jobs, api, base, timeout=600)
                    job_rows.append(row)
                    print(
                        f"  jobs, {n} job workers: {row.per_second:.2f}/s, p50 "
                        f"{row.p50_ms:.0f} ms, problems {dict(row.problems) or 0}",
                        file=sys.stderr,
                    )
        except BaseException:
            for process in deployment.started:
                tail = process.output()[-3000:]
                print(f"--- {process.log.name} (last lines) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            deployment.stop_all()
            engine.dispose()
            _print_worker_warnings(Path(tmp))
    print(
        f"\nmachine: {os.cpu_count()} CPUs ({_cpu_model()}); {started:%Y-%m-%d %H:%M} UTC; "
        f"command: python bench/scale.py {' '.join(sys.argv[1:])}".rstrip()
    )
    print(
        "load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f} "
        "(this run's own processes included)".format(*load_before, *os.getloadavg())
    )
    for failure in deployment.failures:
        print(f"\nA server start that never became ready (retried):\n{failure}")
    if check_rows:
        table(
            f"checks/s (POST /v1/checks, 512² photo, one consenting face), {args.seconds:g} s "
            f"after {args.warmup:g} s warm-up; baseline: 1 API worker",
            "checks/s",
            check_rows,
            ("clients", "answered"),
            [
                ("api", "API cores"),
                ("load", "load cores"),
                ("postgres", "PostgreSQL cores"),
                ("rest", "rest of machine cores"),
            ],
        )
    if job_rows:
        table(
            f"jobs/s ({args.jobs} jobs POST /v1/jobs relight 512², first submit to last finish; "
            "1 API worker submits); baseline: 1 job worker",
            "jobs/s",
            job_rows,
            ("submitters", "succeeded"),
            [
                ("workers", "workers cores"),
                ("api", "API cores"),
                ("load", "submitters cores"),
                ("postgres", "PostgreSQL cores"),
                ("rest", "rest of machine cores"),
            ],
        )


def _print_worker_warnings(folder: Path) -> None:
    """Anything a worker or server logged at WARNING or above, or a traceback, verbatim."""
    for log in sorted(folder.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        bad = [
            line
            for line in lines
            if any(word in line for word in ("Traceback", "ERROR", "WARNING", "Error", "error"))
        ]
        if bad:
            print(f"--- {log.name}: {len(bad)} warning/error lines ---", file=sys.stderr)
            for line in bad[:30]:
                print(f"  {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
