#!/usr/bin/env python3
"""compose.yaml without a Docker engine: run the real binaries with exactly
the environment and commands compose.yaml gives each service, and complete
a job through the API.

What stands in for the containers, and nothing else changes:
- the `postgres` service is a throwaway cluster from the machine's
  PostgreSQL binaries, with the user, password and database that service's
  environment names;
- host names of services map to 127.0.0.1, and each container port to a
  free loopback port (two containers may both use 8080, one host cannot);
- each named volume is a temporary directory, and a path under a volume's
  mount point becomes the same path under that directory;
- `depends_on` conditions are honoured in order: postgres healthy (it
  answers), migrate completed with exit 0, then server and workers start;
  the server's healthcheck (GET /readyz is 200) gates the job;
- `${NAME:-default}` in compose.yaml is substituted as compose does, from
  an environment that holds only CRUNCH_BOOTSTRAP_KEY_SHA256: the hash of a
  key from `crunch-server keys generate`, as README.md's compose steps do.

Then: check that /v1 refuses a request without the key (401) and one for a
host the server is not known by (400), upload examples/prices.csv with the
key, run a summary job with two worker replicas (`--scale worker=2`), read
the result, SIGTERM every process and require exit status 0.

Usage: compose_smoke.py <directory holding crunch-server and crunch-worker>
Needs PyYAML (scripts/check-infra's venv has it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKER_REPLICAS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        sys.exit(f"{name} not found (install PostgreSQL's server binaries)")
    return str(candidates[-1])


def as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


# ${NAME}, ${NAME:-default} (also when NAME is empty), ${NAME-default}.
SUBSTITUTION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def substitute(text: str, variables: dict[str, str]) -> str:
    """compose's variable substitution, for the forms compose.yaml uses."""

    def value(m: re.Match[str]) -> str:
        name, kind, default = m.group(1), m.group(2), m.group(3) or ""
        found = variables.get(name)
        if found is None or (found == "" and kind == ":-"):
            return default if kind else ""
        return found

    return SUBSTITUTION.sub(value, text)


def env_of(service: dict[str, Any], variables: dict[str, str] | None = None) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: substitute("" if v is None else str(v), variables or {}) for k, v in env.items()}


class Mapping:
    """Service host names and container ports to loopback, volume mount
    points to directories."""

    def __init__(self, compose: dict[str, Any], volumes_dir: Path) -> None:
        self.hosts = set(compose["services"])
        self.ports: dict[int, int] = {}
        self.mounts: dict[str, Path] = {}
        for name in compose.get("volumes") or {}:
            (volumes_dir / name).mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(volumes_dir / name, "postgres")
        for service in compose["services"].values():
            for volume in service.get("volumes") or []:
                source, target = str(volume).split(":")[:2]
                self.mounts[target] = volumes_dir / source

    def port(self, container_port: int) -> int:
        if container_port not in self.ports:
            self.ports[container_port] = free_port()
        return self.ports[container_port]

    def value(self, text: str) -> str:
        # host:port of another service, or a listen address in a container.
        def host_port(m: re.Match[str]) -> str:
            host, port = m.group(1), int(m.group(2))
            if host in self.hosts or host == "0.0.0.0":
                return f"127.0.0.1:{self.port(port)}"
            return m.group(0)

        text = re.sub(r"(?<![\w.-])([A-Za-z0-9_.-]+):(\d{2,5})\b", host_port, text)
        for target, directory in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            text = re.sub(rf"(?<![\w/]){re.escape(target)}(?=/|$)", str(directory), text)
            text = text.replace(f"file://{target}", f"file://{directory}")
        return text


def wait_for(what: str, check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    sys.exit(f"compose smoke: gave up waiting for {what}")


def http(method: str, url: str, body: bytes | None = None, ctype: str | None = None,
         key: str | None = None, host: str | None = None):
    request = urllib.request.Request(url, data=body, method=method)
    if ctype:
        request.add_header("content-type", ctype)
    if key:
        request.add_header("authorization", f"Bearer {key}")
    if host:
        request.add_header("host", host)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    bin_dir = Path(sys.argv[1]).resolve()
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    tmp = Path(tempfile.mkdtemp(prefix="crunch-compose-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    mapping = Mapping(compose, tmp / "volumes")
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    pg_data = tmp / "volumes" / "postgres" / "pgdata"
    pg_port = mapping.port(5432)

    # The first key, generated outside the server: it sees only the hash.
    generated = subprocess.run([str(bin_dir / "crunch-server"), "keys", "generate"],
                               check=True, capture_output=True, text=True).stdout.split()
    if len(generated) != 2:
        sys.exit(f"compose smoke: `crunch-server keys generate` printed {generated!r}, not a key and a hash")
    key, key_sha256 = generated
    variables = {"CRUNCH_BOOTSTRAP_KEY_SHA256": key_sha256}

    def start(name: str, service: dict[str, Any]) -> subprocess.Popen[bytes]:
        command = [str(bin_dir / service["command"][0]), *service["command"][1:]]
        env = {k: mapping.value(v) for k, v in env_of(service, variables).items()}
        env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        workdir = tmp / f"work-{name}"
        workdir.mkdir(exist_ok=True)
        log = open(tmp / f"{name}.log", "wb")
        print(f"compose smoke: {name}: {' '.join(command)} with {sorted(env)}")
        return subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)

    try:
        # postgres: the service's user, password and database.
        pg_env = env_of(services["postgres"])
        user, password = pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"]
        database = pg_env.get("POSTGRES_DB", user)
        pwfile = tmp / "pw"
        pwfile.write_text(password)
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        subprocess.run(
            as_postgres([pg_bin("initdb"), "-D", str(pg_data), "-U", user, "--pwfile", str(pwfile),
                         "--auth=scram-sha-256"]),
            check=True, stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            as_postgres([pg_bin("pg_ctl"), "-D", str(pg_data), "-l", str(tmp / "postgres.log"), "-w", "-o",
                         f"-c port={pg_port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''",
                         "start"]),
            check=True, stdout=subprocess.DEVNULL,
        )
        if database != "postgres":
            subprocess.run(
                [pg_bin("psql"), "-q", f"postgres://{user}:{password}@127.0.0.1:{pg_port}/postgres",
                 "-c", f'CREATE DATABASE "{database}"'],
                check=True, stdout=subprocess.DEVNULL,
            )
        print(f"compose smoke: postgres on 127.0.0.1:{pg_port} (healthy)")

        # migrate: must complete with status 0 before server and workers.
        migrate = start("migrate", services["migrate"])
        if migrate.wait(timeout=120) != 0:
            sys.exit(f"compose smoke: migrate exited {migrate.returncode}; see {tmp}/migrate.log")
        print("compose smoke: migrate completed")

        server = start("server", services["server"])
        processes.append(("server", server))
        for n in range(WORKER_REPLICAS):
            processes.append((f"worker-{n + 1}", start(f"worker-{n + 1}", services["worker"])))

        ports = substitute(str(services["server"]["ports"][0]), variables)
        published, container = ports.rsplit(":", 1)
        if not published.startswith("127.0.0.1:"):
            sys.exit(f"compose smoke: the API is published on {published}, not on the host's loopback")
        base = f"http://127.0.0.1:{mapping.port(int(container))}"
        wait_for("the server's healthcheck (/readyz 200)", lambda: http("GET", f"{base}/readyz")[0] == 200)
        print(f"compose smoke: server healthy at {base}")

        status, _ = http("GET", f"{base}/v1/datasets")
        if status != 401:
            sys.exit(f"compose smoke: /v1/datasets without a key answered {status}, not 401")
        status, _ = http("GET", f"{base}/v1/datasets", key=key, host="rebound.example")
        if status != 400:
            sys.exit(f"compose smoke: a request for host rebound.example answered {status}, not 400")
        print("compose smoke: no key is 401, a foreign Host is 400")

        status, body = http("POST", f"{base}/v1/datasets?name=prices&null=NA",
                            (ROOT / "examples" / "prices.csv").read_bytes(), "text/csv", key=key)
        if status != 201:
            sys.exit(f"compose smoke: upload answered {status}: {body[:300]!r}")
        dataset = json.loads(body)["dataset"]["id"]
        job = {
            "inputs": [{"table": "prices", "dataset": dataset}],
            "analysis": {"type": "summary", "table": "prices", "columns": ["price"]},
        }
        status, body = http("POST", f"{base}/v1/jobs", json.dumps(job).encode(), "application/json", key=key)
        if status not in (200, 201, 202):
            sys.exit(f"compose smoke: submit answered {status}: {body[:300]!r}")
        job_id = json.loads(body)["id"]
        state = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, body = http("GET", f"{base}/v1/jobs/{job_id}?wait=30", key=key)
            state = json.loads(body).get("state") if status == 200 else None
            if state in ("succeeded", "failed", "cancelled"):
                break
            if status is None:
                time.sleep(0.5)
        if state != "succeeded":
            sys.exit(f"compose smoke: job ended {state!r}: {body[:500]!r}")
        status, body = http("GET", f"{base}/v1/jobs/{job_id}/result?format=csv", key=key)
        rows = body.decode().strip().splitlines()
        if status != 200 or len(rows) != 2 or not rows[1].startswith("price,"):
            sys.exit(f"compose smoke: result answered {status}: {body[:300]!r}")
        results = list((tmp / "volumes" / "data").rglob("*.parquet"))
        if not results:
            sys.exit("compose smoke: nothing written to the data volume")
        print(f"compose smoke: job {job_id} succeeded; result row: {rows[1][:80]}")
    finally:
        failures = []
        for name, process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in processes:
            try:
                code = process.wait(timeout=130)
            except subprocess.TimeoutExpired:
                process.kill()
                code = "killed after 130 s"
            if code != 0:
                failures.append(f"{name} exited {code} (log: {tmp}/{name}.log)")
        subprocess.run(as_postgres([pg_bin("pg_ctl"), "-D", str(pg_data), "-m", "fast", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Said here too: an earlier failure leaves the block by sys.exit.
        for failure in failures:
            print(f"compose smoke: {failure}", file=sys.stderr)
    if failures:
        sys.exit("compose smoke: " + "; ".join(failures))
    shutil.rmtree(tmp, ignore_errors=True)
    print("compose smoke: ok, every process exited 0 on SIGTERM")


if __name__ == "__main__":
    main()
