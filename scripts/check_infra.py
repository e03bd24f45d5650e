#!/usr/bin/env python3
"""Consistency checks between the deployment files and the code.

Run by scripts/check-infra with the venv that holds checkov, whose
dependencies provide `hcl2` (bc-python-hcl2) and `yaml` (PyYAML).

1. Every environment variable the ECS task definitions (terraform/*.tf) or the
   crunch services of compose.yaml set, and every ENV of the Dockerfile, is
   one the binaries read: a variable of the README's Configuration table, or
   a standard AWS one.
2. The worker-scaling metric in terraform (namespace, metric name, dimension
   names, dimension value = the worker service's name) equals the constants
   of server/src/scaling/, or the agreed defaults while that file does not
   exist. Every metric of the namespace that terraform charts or alarms on
   uses the same dimensions, and, once scaling.rs exists, appears as a string
   literal in server/src (something publishes it).
3. Every `#checkov:skip` carries a reason, and no checkov config file skips
   checks wholesale.
4. The Dockerfile's dependency layer copies the manifest of, and writes a
   stub crate for, every workspace member before its first `cargo build`:
   cargo loads the whole workspace, so one missing member fails the build.
5. /metrics stays off the internet: the server serves it only on
   CRUNCH_METRICS_LISTEN, so the load balancer must reach the API tasks on
   the API's port alone (target groups, the ALB's egress, the API tasks'
   ingress from it, the container's port mappings), that port must not be
   the metrics port, and no listener rule may forward a /metrics path.
   compose.yaml publishes the API on the host's loopback unless the user
   opts in, and never publishes the metrics port.

Exits 1 listing every problem found.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import hcl2
import yaml

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
README = ROOT / "README.md"
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SCALING_RS = ROOT / "server" / "src" / "scaling" / "mod.rs"
SERVER_SRC = ROOT / "server" / "src"

# Set by AWS tooling conventions rather than by crunch's own table.
STANDARD_AWS_VARIABLES = {"AWS_REGION", "AWS_DEFAULT_REGION"}

# The contract while server/src/scaling/ does not exist yet.
DEFAULT_NAMESPACE = "Crunch"
DEFAULT_METRIC_NAME = "BacklogPerTask"
DEFAULT_DIMENSIONS = {"ServiceName"}

# The worker ECS service, whose name is the metric's dimension value.
WORKER_SERVICE = "worker"

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

problems: list[str] = []


def problem(message: str) -> None:
    problems.append(message)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- the documented variables ---------------------------------------------------


def documented_variables() -> set[str]:
    """First column of the table under the README's `## Configuration`."""
    lines = README.read_text(encoding="utf-8").splitlines()
    names: set[str] = set()
    in_section = False
    for line in lines:
        if line.startswith("## "):
            in_section = line.strip().lower() == "## configuration"
            continue
        if not in_section or not line.lstrip().startswith("|"):
            continue
        first = line.strip().strip("|").split("|")[0].strip().strip("`").strip()
        if ENV_NAME.match(first):
            names.add(first)
    if not names:
        problem(f"{rel(README)}: no variables found in the table under '## Configuration'")
    return names


# --- terraform --------------------------------------------------------------------


def unwrap(value: Any) -> Any:
    """hcl2 wraps attribute values in one-element lists."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


class Terraform:
    def __init__(self) -> None:
        self.locals: dict[str, Any] = {}
        self.resources: list[tuple[str, str, dict[str, Any], Path]] = []
        files = sorted(TERRAFORM.glob("*.tf"))
        if not files:
            problem(f"{rel(TERRAFORM)}: no .tf files")
        for path in files:
            try:
                with path.open(encoding="utf-8") as f:
                    doc = hcl2.load(f)
            except Exception as e:  # noqa: BLE001 - report any parse failure
                problem(f"{rel(path)}: cannot parse: {e}")
                continue
            for block in doc.get("locals", []):
                for key, value in block.items():
                    if not key.startswith("__"):
                        self.locals[key] = unwrap(value)
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for rname, body in named.items():
                        self.resources.append((rtype, rname, body, path))

    def of_type(self, rtype: str) -> list[tuple[str, dict[str, Any], Path]]:
        return [(n, b, p) for t, n, b, p in self.resources if t == rtype]

    def resolve(self, value: Any, depth: int = 0) -> Any:
        """Follow `local.a.b` references (wrapped in ${} or bare) to values."""
        value = unwrap(value)
        if not isinstance(value, str) or depth > 10:
            return value
        text = value.strip()
        inner = text[2:-1].strip() if text.startswith("${") and text.endswith("}") else text
        m = re.fullmatch(r"local\.([A-Za-z_][\w-]*)((?:\.[A-Za-z_][\w-]*)*)", inner)
        if not m or m.group(1) not in self.locals:
            return value
        current: Any = self.locals[m.group(1)]
        for attr in filter(None, m.group(2).split(".")):
            current = unwrap(current)
            if not isinstance(current, dict) or attr not in current:
                return value
            current = current[attr]
        return self.resolve(current, depth + 1)


def bracketed(text: str, start: int) -> str:
    """The text from the first '[' at or after start to its matching ']'."""
    open_at = text.find("[", start)
    if open_at < 0:
        return ""
    depth = 0
    quote = ""
    for i in range(open_at, len(text)):
        c = text[i]
        if quote:
            if c == quote and text[i - 1] != "\\":
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return text[open_at : i + 1]
    return text[open_at:]


def terraform_environment(tf: Terraform) -> list[tuple[str, str]]:
    """(variable, where) for every variable the task definitions set."""
    found: list[tuple[str, str]] = []
    task_definitions = tf.of_type("aws_ecs_task_definition")
    if not task_definitions:
        problem("terraform: no aws_ecs_task_definition found")
    for name, body, path in task_definitions:
        where = f"{rel(path)}: aws_ecs_task_definition.{name}"
        definitions = str(unwrap(body.get("container_definitions", "")))
        for key in ("environment", "secrets"):
            for m in re.finditer(rf"['\"]{key}['\"]\s*:", definitions):
                segment = bracketed(definitions, m.end())
                names: list[str] = []
                for ref in re.findall(r"local\.([A-Za-z_][\w-]*)", segment):
                    value = tf.locals.get(ref)
                    if not isinstance(value, dict):
                        problem(
                            f"{where}: {key} comes from local.{ref}, which is not a literal map "
                            "(keep container variables in literal maps so they can be checked)"
                        )
                        continue
                    names += [k for k in value if not k.startswith("__")]
                names += re.findall(r"['\"]name['\"]\s*:\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]", segment)
                if not names and segment.strip("[] "):
                    problem(f"{where}: cannot tell which variables its {key} sets")
                found += [(n, f"{where} ({key})") for n in names]
    return found


# --- compose and Dockerfile --------------------------------------------------------


def compose_environment() -> list[tuple[str, str]]:
    """(variable, where) for the services that run the crunch image."""
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8")) or {}
    found: list[tuple[str, str]] = []
    crunch_services = 0
    for service, spec in (doc.get("services") or {}).items():
        spec = spec or {}
        image = str(spec.get("image", ""))
        if "build" not in spec and not image.startswith("crunch"):
            continue  # postgres and other third-party images
        crunch_services += 1
        where = f"{rel(COMPOSE)}: services.{service}"
        if "env_file" in spec:
            problem(f"{where}: env_file cannot be checked; set environment inline")
        env = spec.get("environment") or {}
        if isinstance(env, list):
            names = [str(item).split("=", 1)[0] for item in env]
        else:
            names = list(env)
        found += [(n, where) for n in names]
    if not crunch_services:
        problem(f"{rel(COMPOSE)}: no service runs the crunch image")
    return found


def dockerfile_environment() -> list[tuple[str, str]]:
    if not DOCKERFILE.exists():
        return []
    found: list[tuple[str, str]] = []
    # Join continuation lines, then read `ENV A=1 B=2` and `ENV A 1`.
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stage = "?"
    for line in text.splitlines():
        words = line.strip().split()
        if not words:
            continue
        if words[0].upper() == "FROM":
            stage = words[-1]
        if words[0].upper() != "ENV" or len(words) < 2:
            continue
        if "=" in words[1]:
            names = [w.split("=", 1)[0] for w in words[1:] if "=" in w]
        else:
            names = [words[1]]
        # The build stage's ENV (cargo settings) never reaches the binaries.
        if stage.lower() in ("builder", "build"):
            continue
        found += [(n, f"{rel(DOCKERFILE)} (stage {stage})") for n in names]
    return found


def check_environment(tf: Terraform) -> None:
    documented = documented_variables()
    allowed = documented | STANDARD_AWS_VARIABLES
    for name, where in terraform_environment(tf) + compose_environment() + dockerfile_environment():
        if name not in allowed:
            problem(
                f"{where}: sets {name}, which the binaries do not read "
                "(not in README.md's Configuration table, nor AWS_REGION/AWS_DEFAULT_REGION)"
            )


# --- metrics ---------------------------------------------------------------------------


def rust_str_const(text: str, name_pattern: str) -> dict[str, str]:
    pattern = (
        r"(?:pub(?:\s*\([^)]*\))?\s+)?const\s+(" + name_pattern + r")\s*:\s*&\s*(?:'static\s+)?str\s*=\s*\"([^\"]*)\"\s*;"
    )
    return dict(re.findall(pattern, text))


def metric_contract() -> tuple[str, str, set[str], str]:
    if not SCALING_RS.exists():
        return DEFAULT_NAMESPACE, DEFAULT_METRIC_NAME, set(DEFAULT_DIMENSIONS), "defaults (server/src/scaling/ absent)"
    text = SCALING_RS.read_text(encoding="utf-8")
    namespace = rust_str_const(text, "METRIC_NAMESPACE").get("METRIC_NAMESPACE")
    metric = rust_str_const(text, "METRIC_NAME").get("METRIC_NAME")
    dimensions = set(rust_str_const(text, r"\w*DIMENSION\w*").values())
    where = rel(SCALING_RS)
    if namespace is None:
        problem(f'{where}: no `pub const METRIC_NAMESPACE: &str = "...";`')
    if metric is None:
        problem(f'{where}: no `pub const METRIC_NAME: &str = "...";`')
    if not dimensions:
        problem(f'{where}: no dimension constant (`pub const METRIC_DIMENSION: &str = "...";`)')
    return namespace or DEFAULT_NAMESPACE, metric or DEFAULT_METRIC_NAME, dimensions or set(DEFAULT_DIMENSIONS), where


QUOTED = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"


def python_literal_tokens(row: str) -> list[str]:
    return [a or b for a, b in re.findall(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", row)]


def check_metrics(tf: Terraform) -> None:
    namespace, metric_name, dimensions, source = metric_contract()
    worker_refs = {
        "${aws_ecs_service.%s.name}" % WORKER_SERVICE,
        "${local.worker_service_name}",
        str(tf.resolve("${local.worker_service_name}")),
    }

    # The worker service exists and is named as the references assume.
    workers = [b for n, b, _ in tf.of_type("aws_ecs_service") if n == WORKER_SERVICE]
    if not workers:
        problem(f"terraform: no aws_ecs_service.{WORKER_SERVICE}")

    def is_worker_name(value: Any) -> bool:
        return isinstance(value, str) and (value in worker_refs or tf.resolve(value) in worker_refs)

    used: dict[str, str] = {}  # metric name -> where
    # Alarms and charts are recognised by the contract's namespace or the one
    # terraform declares, so a mismatch between the two is reported, not missed.
    namespaces = {namespace, str(tf.resolve("${local.metric_namespace}"))}

    # The autoscaling policy.
    policies = []
    for name, body, path in tf.of_type("aws_appautoscaling_policy"):
        for config in body.get("target_tracking_scaling_policy_configuration", []):
            for spec in config.get("customized_metric_specification", []):
                policies.append((f"{rel(path)}: aws_appautoscaling_policy.{name}", spec))
    if len(policies) != 1:
        problem(f"terraform: expected one target-tracking policy on a custom metric, found {len(policies)}")
    for where, spec in policies:
        got_ns = tf.resolve(spec.get("namespace"))
        got_name = tf.resolve(spec.get("metric_name"))
        dims = {str(tf.resolve(d.get("name"))): unwrap(d.get("value")) for d in spec.get("dimensions", [])}
        if got_ns != namespace:
            problem(f"{where}: namespace {got_ns!r} != {namespace!r} ({source})")
        if got_name != metric_name:
            problem(f"{where}: metric_name {got_name!r} != {metric_name!r} ({source})")
        if set(dims) != dimensions:
            problem(f"{where}: dimensions {sorted(dims)} != {sorted(dimensions)} ({source})")
        for dim, value in dims.items():
            if not is_worker_name(value):
                problem(f"{where}: dimension {dim} = {value!r}, not the worker service's name")
        if isinstance(got_name, str):
            used[got_name] = where

    # Alarms on the namespace.
    for name, body, path in tf.of_type("aws_cloudwatch_metric_alarm"):
        where = f"{rel(path)}: aws_cloudwatch_metric_alarm.{name}"
        got_ns = tf.resolve(body.get("namespace"))
        if got_ns not in namespaces:
            continue
        if got_ns != namespace:
            problem(f"{where}: namespace {got_ns!r} != {namespace!r} ({source})")
        dims = tf.resolve(body.get("dimensions"))
        if not isinstance(dims, dict):
            problem(f"{where}: cannot read its dimensions ({dims!r})")
            continue
        names = {str(tf.resolve(k)) for k in dims if not k.startswith("__")}
        if names != dimensions:
            problem(f"{where}: dimensions {sorted(names)} != {sorted(dimensions)} ({source})")
        for value in dims.values():
            if not is_worker_name(value):
                problem(f"{where}: dimension value {value!r} is not the worker service's name")
        used[str(tf.resolve(body.get("metric_name")))] = where

    # Dashboard rows: [namespace, metric, dim, value, ..., {options}].
    for name, body, path in tf.of_type("aws_cloudwatch_dashboard"):
        where = f"{rel(path)}: aws_cloudwatch_dashboard.{name}"
        text = str(unwrap(body.get("dashboard_body", "")))
        rows = 0
        for m in re.finditer(r"\[\s*(" + QUOTED + r"(?:\s*,\s*" + QUOTED + r")*)", text):
            tokens = [str(tf.resolve(t)) for t in python_literal_tokens(m.group(1))]
            if len(tokens) < 2 or tokens[0] not in namespaces:
                continue
            rows += 1
            if tokens[0] != namespace:
                problem(f"{where}: metric {tokens[1]} in namespace {tokens[0]!r} != {namespace!r} ({source})")
            pairs = tokens[2:]
            dims_in_row = dict(zip(pairs[0::2], pairs[1::2]))
            if set(dims_in_row) != dimensions or len(pairs) % 2:
                problem(f"{where}: metric {tokens[1]} has dimensions {sorted(dims_in_row)} != {sorted(dimensions)}")
            for value in dims_in_row.values():
                if not is_worker_name(value):
                    problem(f"{where}: metric {tokens[1]} dimension value {value!r} is not the worker service's name")
            used.setdefault(tokens[1], where)
        if not rows:
            problem(f"{where}: charts no {namespace} metric")

    if metric_name not in used:
        problem(f"terraform: nothing uses {namespace}/{metric_name}")

    # Once the publisher exists, everything charted or alarmed on must be
    # something the server names.
    if SCALING_RS.exists():
        literals: set[str] = set()
        for rs in SERVER_SRC.rglob("*.rs"):
            literals |= set(re.findall(r'"([A-Za-z][A-Za-z0-9]*)"', rs.read_text(encoding="utf-8")))
        for metric, where in sorted(used.items()):
            if metric not in literals:
                problem(
                    f"{where}: uses {namespace}/{metric}, but no string literal \"{metric}\" in server/src "
                    "publishes it"
                )


# --- checkov skips ---------------------------------------------------------------------


def check_skips() -> None:
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            m = re.search(r"#\s*checkov:skip=(CKV2?_[A-Z0-9]+_\d+):(.*)$", line)
            if not m or len(m.group(2).strip()) < 20:
                problem(f"{rel(path)}:{number}: a checkov skip needs `#checkov:skip=CKV_...:<reason>` with a real reason")
    for config in [*ROOT.glob(".checkov.y*ml"), *TERRAFORM.rglob(".checkov.y*ml")]:
        problem(f"{rel(config)}: skip checks inline with a reason, not in a checkov config file")


# --- exposure --------------------------------------------------------------------------


def port_of(address: Any) -> int | None:
    """The port of `host:port` (`[v6]:port` too), none if it has none."""
    m = re.search(r":(\d+)$", str(address).strip())
    return int(m.group(1)) if m else None


def as_int(tf: Terraform, value: Any) -> int | None:
    value = tf.resolve(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def check_exposure(tf: Terraform) -> None:
    api_port = as_int(tf, "${local.container_port}")
    if api_port is None:
        problem("terraform: local.container_port is not a number")
        return
    alb_sg = "${aws_security_group.alb.id}"

    for name, body, path in tf.of_type("aws_lb_target_group"):
        where = f"{rel(path)}: aws_lb_target_group.{name}"
        if as_int(tf, body.get("port")) != api_port:
            problem(f"{where}: port {unwrap(body.get('port'))!r} is not the API's ({api_port}); "
                    "only the API may be behind the load balancer")
        for check in body.get("health_check", []):
            if "metrics" in str(unwrap(check.get("path", ""))):
                problem(f"{where}: health check on {unwrap(check.get('path'))!r}")
    for name, body, path in tf.of_type("aws_lb_listener_rule"):
        text = str(body)
        if "metrics" in text and "forward" in text:
            problem(f"{rel(path)}: aws_lb_listener_rule.{name} forwards a /metrics path to the internet")

    for rtype in ("aws_vpc_security_group_egress_rule", "aws_vpc_security_group_ingress_rule"):
        for name, body, path in tf.of_type(rtype):
            from_alb = (rtype.endswith("egress_rule") and unwrap(body.get("security_group_id")) == alb_sg) or (
                rtype.endswith("ingress_rule") and unwrap(body.get("referenced_security_group_id")) == alb_sg
            )
            if not from_alb:
                continue
            ports = (as_int(tf, body.get("from_port")), as_int(tf, body.get("to_port")))
            if ports != (api_port, api_port):
                problem(f"{rel(path)}: {rtype}.{name} lets the load balancer reach ports {ports}, "
                        f"not only the API's {api_port}")

    for name, body, path in tf.of_type("aws_ecs_task_definition"):
        definitions = str(unwrap(body.get("container_definitions", "")))
        ports = re.findall(r"['\"]containerPort['\"]\s*:\s*(?:'([^']*)'|\"([^\"]*)\"|(\d+))", definitions)
        for port in ("".join(groups) for groups in ports):
            if as_int(tf, port) != api_port and name == "api":
                problem(f"{rel(path)}: aws_ecs_task_definition.{name} maps port {port}, not only the API's")
    metrics = tf.locals.get("api_environment", {}).get("CRUNCH_METRICS_LISTEN")
    if metrics is not None and port_of(tf.resolve(metrics)) in (api_port, None):
        problem(f"terraform: CRUNCH_METRICS_LISTEN {metrics!r} must be a port of its own, not the API's {api_port}")

    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8")) or {}
    for service, spec in (doc.get("services") or {}).items():
        spec = spec or {}
        where = f"{rel(COMPOSE)}: services.{service}"
        published: list[int] = []
        for mapping in spec.get("ports") or []:
            text = str(mapping.get("published", "")) if isinstance(mapping, dict) else str(mapping)
            # The host side with compose's ${VAR:-default} resolved to its default.
            host_side = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text).rsplit(":", 1)[0]
            container = port_of(text if not isinstance(mapping, dict) else f":{mapping.get('target')}")
            if container is not None:
                published.append(container)
            if not (host_side.startswith("127.0.0.1:") or host_side.startswith("[::1]:")):
                problem(f"{where}: publishes {text!r} beyond the host's loopback by default; "
                        "let the user opt in (e.g. ${CRUNCH_PUBLISH:-127.0.0.1:8080})")
        env = spec.get("environment") or {}
        if isinstance(env, list):
            env = dict(str(item).split("=", 1) for item in env)
        metrics = env.get("CRUNCH_METRICS_LISTEN")
        if metrics and port_of(metrics) in published:
            problem(f"{where}: publishes the metrics port of CRUNCH_METRICS_LISTEN={metrics}")


def workspace_members() -> list[str]:
    text = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    m = re.search(r"^members\s*=\s*\[([^\]]*)\]", text, re.MULTILINE)
    if not m:
        problem("Cargo.toml: no workspace members found")
        return []
    return re.findall(r'"([^"]+)"', m.group(1))


def check_dockerfile_workspace() -> None:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    first_build = text.find("cargo build")
    if first_build < 0:
        problem(f"{rel(DOCKERFILE)}: no `cargo build`")
        return
    layer = text[:first_build]
    stubbed: set[str] = set()
    for crates in re.findall(r"for\s+crate\s+in\s+([^;]+);", layer):
        stubbed.update(crates.split())
    for member in workspace_members():
        if not re.search(rf"^COPY\s+{re.escape(member)}/Cargo\.toml\b", layer, re.MULTILINE):
            problem(f"{rel(DOCKERFILE)}: the dependency layer does not copy {member}/Cargo.toml")
        if member not in stubbed:
            problem(f"{rel(DOCKERFILE)}: the dependency layer writes no stub source for {member}")


def main() -> int:
    tf = Terraform()
    check_environment(tf)
    check_metrics(tf)
    check_skips()
    check_dockerfile_workspace()
    check_exposure(tf)
    if problems:
        print(f"check_infra: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(
        "check_infra: environment variables, metric names, the Dockerfile's workspace and what is exposed "
        "are consistent"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
