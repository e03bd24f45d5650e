#!/usr/bin/env python3
"""The README's five-minute tour through the generated Python client.

    CRUNCH_API_KEY=crk_... python clients/tests/tour.py http://127.0.0.1:8080

Every call goes through `crunch_client`'s API functions, with an
`AuthenticatedClient` holding the key in CRUNCH_API_KEY (a key with every
scope, as a standalone server writes to `<data-dir>/api-key`). Every call
runs with `raise_on_unexpected_status`, and every answer is checked as the
parsed model, not as raw JSON.

Besides the README's tour it checks what the key guards: a call without a
key, or with an unknown or malformed one, is a 401 that the client parses as
a Problem, with the bearer challenge; the open operations need no key. And
it manages keys through the API with the first key: creates a read-only
key, which reads the tenant's datasets but is refused writes and key
management (403, naming the scope), revokes it, after which it is refused
everything (401). If CRUNCH_TOUR_SECRETS names a file, the secrets of the
keys it creates are appended to it, one a line (scripts/client-tour checks
that the server logs none of them).

On top of that, an httpx response hook validates every JSON response
against its schema in openapi.json (the schema of the operation, status and
media type): a required field that is missing, a null where the spec does
not say `nullable: true`, a value of another type or outside its enum, an
undocumented status or media type, or a missing response header that the
spec says is required (the 401s' and 403s' `WWW-Authenticate`) fails the
call.

Exits non-zero, with a message saying what did not hold, on any failure.
Needs a running server with an in-process worker (standalone mode) and
crunch_client installed (`pip install ./clients/python`).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from crunch_client import AuthenticatedClient, Client
from crunch_client.api.datasets import append_dataset_part, create_dataset, get_dataset, list_datasets
from crunch_client.api.jobs import (
    cancel_job,
    download_job_result_csv,
    download_job_result_parquet,
    get_job,
    get_job_result,
    list_jobs,
    submit_job,
)
from crunch_client.api.keys import create_api_key, list_api_keys, revoke_api_key
from crunch_client.api.operations import get_liveness, get_queue_stats, get_readiness
from crunch_client.models import (
    Aggregate,
    AggregateFunction,
    AnalysisGroupByAnalysis,
    AnalysisGroupByAnalysisType,
    AnalysisSqlAnalysis,
    AnalysisSqlAnalysisType,
    AnalysisSummaryAnalysis,
    AnalysisSummaryAnalysisType,
    ApiKeyList,
    CreatedApiKey,
    DatasetCreated,
    DatasetDetail,
    DatasetPage,
    Filter,
    FilterOp,
    Job,
    JobInput,
    JobPage,
    JobState,
    KeyScope,
    NewApiKey,
    NewJob,
    Part,
    Problem,
    QueueStats,
    Readiness,
    ResultPage,
    ScalingReading,
    UploadFormat,
)
from crunch_client.types import UNSET, File, Unset

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SPEC_PATH = ROOT / "openapi.json"

# Bounds: no call or wait of the tour runs unbounded.
REQUEST_TIMEOUT = 90.0  # seconds, per request (a long-poll waits at most WAIT)
WAIT = 30  # the `wait` of long-polls, seconds
JOB_DEADLINE = 120.0  # a job of the tour must finish within this
CANCEL_DEADLINE = 60.0  # a cancelled job must be `cancelled` within this
TERMINAL = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
# A key as the server mints it; its display prefix is its first 12 characters.
KEY_FORM = re.compile(r"^crk_[A-Za-z0-9]{32}$")
PREFIX_LENGTH = len("crk_") + 8
ALL_SCOPES = {KeyScope.READ, KeyScope.WRITE, KeyScope.ADMIN}


class TourFailure(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise TourFailure(message)


def expect(value: Any, model: type, what: str) -> Any:
    """`value` (a parsed response) is a `model`; a Problem is shown."""
    if isinstance(value, Problem):
        raise TourFailure(f"{what}: the server answered a problem: {value.status} {value.title}: {value.detail}")
    check(isinstance(value, model), f"{what}: expected a {model.__name__}, got {value!r}")
    return value


def given(value: Any) -> Any:
    """An optional field's value, with UNSET (left out) as None."""
    return None if isinstance(value, Unset) else value


# ---------------------------------------------------------------------------- the spec check


class SpecCheck:
    """Checks JSON responses against openapi.json (OpenAPI 3.0).

    A null is allowed where the schema applied to the value, or the property
    schema that leads to it, says `nullable: true`, and where the schema says
    nothing of the value's type (`{}`, as for result row values); `$ref`,
    `allOf`, `oneOf` (by its discriminator, if it has one) and `anyOf` are
    followed.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.operations: list[tuple[str, re.Pattern[str], str, dict[str, Any]]] = []
        for path, item in spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    self.operations.append((method.upper(), pattern, path, operation))
        self.responses = 0
        self.objects = 0
        self.nulls = 0
        self.headers = 0
        self.failures: list[str] = []

    # -- the hook

    def hook(self, response: httpx.Response) -> None:
        request = response.request
        where = f"{request.method} {request.url.path} -> {response.status_code}"
        found = [(p, o) for m, pat, p, o in self.operations if m == request.method and pat.match(request.url.path)]
        if not found:
            return  # not an operation of the spec (e.g. /openapi.json itself)
        path, operation = found[0]
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        documented = operation["responses"].get(str(response.status_code)) or operation["responses"].get("default")
        if documented is None:
            self.fail(f"{where}: status {response.status_code} is not documented for {path}")
        for name, header in (documented.get("headers") or {}).items():
            if header.get("required"):
                # httpx's headers are case-insensitive, as HTTP's are.
                if name not in response.headers:
                    self.fail(f"{where}: the required header {name} is missing")
                self.headers += 1
        content = {k.split(";")[0].strip().lower(): v for k, v in (documented.get("content") or {}).items()}
        if content and media not in content:
            self.fail(f"{where}: content type {media!r} is not documented (documented: {sorted(content)})")
        if not (media == "application/json" or media.endswith("+json")):
            return
        response.read()
        try:
            body = response.json()
        except ValueError as e:
            self.fail(f"{where}: the body is not JSON: {e}")
        schema = content[media].get("schema", {})
        errors: list[str] = []
        self.validate(body, schema, "$", errors, count=True)
        self.responses += 1
        if errors:
            shown = "\n  ".join(errors[:20])
            self.fail(f"{where}: the body does not match its schema in {SPEC_PATH.name}:\n  {shown}")

    def fail(self, message: str) -> None:
        self.failures.append(message)
        raise TourFailure(message)

    # -- validation

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema:
            ref = schema["$ref"]
            check(ref.startswith("#/"), f"unsupported $ref {ref}")
            node: Any = self.spec
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
            seen += 1
            check(seen < 50, f"a $ref cycle at {ref}")
        return schema

    def validate(
        self, value: Any, schema: dict[str, Any], at: str, errors: list[str], *, count: bool, nullable: bool = False
    ) -> None:
        schema = self.resolve(schema)
        nullable = nullable or bool(schema.get("nullable"))
        if value is None:
            composed = any(k in schema for k in ("allOf", "oneOf", "anyOf"))
            untyped = "type" not in schema and not composed and "properties" not in schema
            if nullable or untyped:
                if count:
                    self.nulls += 1
                return
            errors.append(f"{at}: null, but its schema does not say nullable")
            return
        if isinstance(value, dict) and count:
            self.objects += 1
        for sub in schema.get("allOf", []):
            # The object is counted once, not once per part of it.
            self.validate(value, sub, at, errors, count=False)
        if "oneOf" in schema:
            discriminator = schema.get("discriminator")
            if discriminator and isinstance(value, dict):
                tag = value.get(discriminator["propertyName"])
                target = (discriminator.get("mapping") or {}).get(tag)
                if target is None:
                    errors.append(f"{at}: {discriminator['propertyName']}={tag!r} is not one of the mapping's")
                else:
                    self.validate(value, {"$ref": target}, at, errors, count=False)
            else:
                fits = [s for s in schema["oneOf"] if not self.errors_of(value, s, at)]
                if len(fits) != 1:
                    errors.append(f"{at}: matches {len(fits)} of the oneOf schemas, not exactly one")
        if "anyOf" in schema and not any(not self.errors_of(value, s, at) for s in schema["anyOf"]):
            errors.append(f"{at}: matches none of the anyOf schemas")
        if "enum" in schema and value not in schema["enum"]:
            errors.append(f"{at}: {value!r} is not one of {schema['enum']}")
        kind = schema.get("type")
        if kind is None and "properties" in schema:
            kind = "object"
        if kind is not None and not self.is_type(value, kind):
            errors.append(f"{at}: expected {kind}, got {type(value).__name__} {value!r}"[:300])
            return
        if kind == "object":
            properties = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    errors.append(f"{at}: the required field {name!r} is missing")
            extra = schema.get("additionalProperties", True)
            for name, item in value.items():
                if name in properties:
                    sub = properties[name]
                elif isinstance(extra, dict):
                    sub = extra
                elif extra is False:
                    errors.append(f"{at}: {name!r} is not a property of the schema")
                    continue
                else:
                    continue
                self.validate(item, sub, f"{at}.{name}", errors, count=count)
        elif kind == "array":
            for i, item in enumerate(value):
                self.validate(item, schema.get("items", {}), f"{at}[{i}]", errors, count=count)

    def self_test(self) -> None:
        """The check is not vacuous: it finds what it is meant to in bodies made wrong on purpose."""
        schema = {"$ref": "#/components/schemas/JobPage"}
        job = {
            "id": "01a23bf0-6cd6-7099-9fa5-5c446dd896eb",
            "type": "sql",
            "state": "running",
            "attempt": 1,
            "max_attempts": 3,
            "priority": 0,
            "queue_wait_ms": 5,
            "cancel_requested": False,
            "inputs": [{"table": "t", "dataset": "01a23bf0-6cd6-7099-9fa5-5c446dd896eb"}],
            "created_at": "2026-01-01T00:00:00Z",
            "error": None,
            "result": None,
        }
        check(not self.errors_of({"items": [job], "next_cursor": None}, schema, "$"), "self-test: a valid page")
        cases = {
            "$.items[0]: the required field 'state' is missing": {k: v for k, v in job.items() if k != "state"},
            "$.items[0].priority: null, but its schema does not say nullable": {**job, "priority": None},
            "$.items[0].inputs[0].table: null, but its schema does not say nullable": {
                **job,
                "inputs": [{"table": None, "dataset": job["inputs"][0]["dataset"]}],
            },
            "$.items[0].state: 'sleeping' is not one of": {**job, "state": "sleeping"},
            "$.items[0].result: expected object": {**job, "result": 3},
        }
        for wanted, bad in cases.items():
            found = self.errors_of({"items": [bad]}, schema, "$")
            check(any(e.startswith(wanted) for e in found), f"self-test: expected {wanted!r}, the check found {found}")
        # A 401 must carry its bearer challenge, as the spec says it does.
        request = httpx.Request("GET", "http://127.0.0.1/v1/datasets")
        problem = {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": None}
        without = httpx.Response(401, json=problem, request=request)
        without.headers["content-type"] = "application/problem+json"
        try:
            self.hook(without)
        except TourFailure as e:
            check(
                "www-authenticate" in str(e).lower(),
                f"self-test: a 401 without WWW-Authenticate fails as such, not {e}",
            )
        else:
            raise TourFailure("self-test: a 401 without WWW-Authenticate passed the check")
        with_challenge = httpx.Response(401, json=problem, request=request)
        with_challenge.headers["content-type"] = "application/problem+json"
        with_challenge.headers["www-authenticate"] = 'Bearer realm="crunch"'
        self.hook(with_challenge)
        self.failures.clear()
        self.responses = self.objects = self.nulls = self.headers = 0

    def errors_of(self, value: Any, schema: dict[str, Any], at: str) -> list[str]:
        errors: list[str] = []
        self.validate(value, schema, at, errors, count=False)
        return errors

    @staticmethod
    def is_type(value: Any, kind: str) -> bool:
        if kind == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if kind == "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, {"string": str, "boolean": bool, "array": list, "object": dict}[kind])


# ---------------------------------------------------------------------------- helpers


def upload(client: AuthenticatedClient, name: str, data: bytes, fmt: UploadFormat, **params: Any) -> DatasetCreated:
    created = create_dataset.sync(
        client=client,
        name=name,
        format_=fmt,
        body=File(payload=io.BytesIO(data), mime_type="application/octet-stream"),
        **params,
    )
    created = expect(created, DatasetCreated, f"uploading {name} ({fmt})")
    check(created.dataset.name == name, f"uploaded {name}, the dataset is named {created.dataset.name}")
    check(created.dataset.parts == 1, f"{name}: a new dataset has one part, not {created.dataset.parts}")
    check(created.part.rows == created.dataset.rows, f"{name}: its first part holds all its rows")
    print(
        f"uploaded {name} ({fmt}): {created.dataset.rows} rows, {created.dataset.bytes_} bytes, id {created.dataset.id}"
    )
    return created


def wait_for(client: AuthenticatedClient, job: Job, what: str, deadline: float = JOB_DEADLINE) -> Job:
    """Long-polls the job with `wait` until it is finished."""
    end = time.monotonic() + deadline
    while job.state not in TERMINAL:
        check(time.monotonic() < end, f"{what}: job {job.id} still {job.state} after {deadline:.0f} s")
        job = expect(get_job.sync(job.id, client=client, wait=WAIT), Job, f"{what}: polling job {job.id}")
    return job


def run_job(client: AuthenticatedClient, what: str, body: NewJob) -> Job:
    job = expect(submit_job.sync(client=client, body=body, wait=WAIT), Job, f"{what}: submitting")
    job = wait_for(client, job, what)
    check(
        job.state == JobState.SUCCEEDED,
        f"{what}: job {job.id} ended {job.state}, not succeeded (error: {given(job.error)})",
    )
    result = given(job.result)
    check(result is not None, f"{what}: a succeeded job has a result summary")
    check(isinstance(job.run_time_ms, int), f"{what}: a finished job has run_time_ms")
    check(job.attempt >= 1, f"{what}: a finished job was attempted, attempt={job.attempt}")
    print(f"{what}: job {job.id} succeeded in {job.run_time_ms} ms: {result.rows} rows, {result.bytes_} bytes")
    return job


def download_csv(client: AuthenticatedClient, job: Job) -> str:
    """A result as CSV, through the generated downloadJobResultCsv."""
    text = download_job_result_csv.sync(job.id, client=client)
    check(isinstance(text, str), f"CSV result of {job.id}: {text!r}")
    return text


def download_parquet(client: AuthenticatedClient, job: Job) -> bytes:
    """A result's Parquet file, through the generated downloadJobResultParquet."""
    file = download_job_result_parquet.sync(job.id, client=client)
    check(isinstance(file, File), f"Parquet result of {job.id}: {file!r}")
    return file.payload.read()


def all_rows(client: AuthenticatedClient, job: Job, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every row of the JSON result, `limit` a page, following next_cursor."""
    rows: list[dict[str, Any]] = []
    cursor: str | Unset = UNSET
    pages = 0
    while True:
        page = expect(
            get_job_result.sync(job.id, client=client, limit=limit, cursor=cursor),
            ResultPage,
            f"result page {pages + 1} of {job.id}",
        )
        pages += 1
        check(len(page.rows) <= limit, f"a page of limit {limit} has {len(page.rows)} rows")
        check([c.name for c in page.columns] == [c.name for c in job.result.columns], "page columns = job's")
        rows.extend(row.to_dict() for row in page.rows)
        next_cursor = given(page.next_cursor)
        if next_cursor is None:
            return rows, pages
        check(pages < 1000, "paging did not end")
        cursor = next_cursor


def refused(response: Any, status: int, what: str) -> str:
    """`response` is a `status` (401 or 403) that the client parsed as a Problem; its bearer challenge."""
    check(
        response.status_code == status,
        f"{what}: expected {status}, got {response.status_code}: {response.content[:300]!r}",
    )
    problem = response.parsed
    check(isinstance(problem, Problem), f"{what}: the client parses the {status} as a Problem, not {problem!r}")
    check(problem.status == status, f"{what}: the problem's status is {problem.status}, not {status}")
    challenge = response.headers.get("www-authenticate", "")
    check(challenge.startswith("Bearer "), f"{what}: the {status} has a bearer challenge, not {challenge!r}")
    return challenge


def dataset_names(client: AuthenticatedClient) -> list[str]:
    """The names of every dataset the key's tenant has, following next_cursor."""
    names: list[str] = []
    cursor: str | Unset = UNSET
    while True:
        page = expect(list_datasets.sync(client=client, limit=100, cursor=cursor), DatasetPage, "list datasets")
        names.extend(d.name for d in page.items)
        if given(page.next_cursor) is None:
            return names
        check(len(names) < 100_000, "dataset paging did not end")
        cursor = page.next_cursor


def remember(secret: str) -> None:
    """Appends a created key's secret to CRUNCH_TOUR_SECRETS, if set (for the log check)."""
    path = os.environ.get("CRUNCH_TOUR_SECRETS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(secret + "\n")


# ---------------------------------------------------------------------------- keys


def without_a_key(client: AuthenticatedClient, anonymous: Client, make_client: Any) -> None:
    """The open operations answer without a key; every other call without a valid key is a 401."""
    check(get_liveness.sync(client=anonymous) is not None, "liveness answers without a key")
    ready = expect(get_readiness.sync(client=anonymous), Readiness, "readiness without a key")
    check(ready.status == "ok", f"readiness: {ready.status}")

    # The generated functions of secured operations are typed to take an
    # AuthenticatedClient; a plain Client is what a caller without a key has.
    response = list_datasets.sync_detailed(client=anonymous)  # type: ignore[arg-type]
    challenge = refused(response, 401, "listing datasets without a key")
    # RFC 6750: no error code when the request carried no credentials.
    check("error=" not in challenge, f"the challenge to a request without a key names no error: {challenge!r}")
    print(f"without a key: {response.status_code}, {response.parsed.title}; WWW-Authenticate: {challenge}")

    for token, what in (("crk_" + "0" * 32, "an unknown key"), ("not-a-key", "a malformed key")):
        with make_client(token) as stranger:
            response = list_datasets.sync_detailed(client=stranger)
            challenge = refused(response, 401, f"listing datasets with {what}")
            check('error="invalid_token"' in challenge, f"{what}: the challenge says invalid_token: {challenge!r}")
    print("with an unknown key and with a malformed one: 401, invalid_token")

    # A write without a key stores nothing.
    response = create_dataset.sync_detailed(
        client=anonymous,  # type: ignore[arg-type]
        name="no-key",
        format_=UploadFormat.CSV,
        body=File(payload=io.BytesIO(b"a\n1\n"), mime_type="application/octet-stream"),
    )
    refused(response, 401, "uploading without a key")
    response = submit_job.sync_detailed(
        client=anonymous,  # type: ignore[arg-type]
        body=NewJob(
            inputs=[JobInput(table="t", dataset=UUID(int=1))],
            analysis=AnalysisSqlAnalysis(type_=AnalysisSqlAnalysisType.SQL, query="SELECT 1"),
        ),
    )
    refused(response, 401, "submitting a job without a key")
    check("no-key" not in dataset_names(client), "an upload refused with 401 stored no dataset")


def key_management(client: AuthenticatedClient, key: str, make_client: Any, ids: dict[str, UUID]) -> None:
    """Keys through the API with the first key: a read-only key reads, is refused writes, and is revoked."""
    listed = expect(list_api_keys.sync(client=client), ApiKeyList, "listing keys")
    first = [k for k in listed.items if k.prefix == key[:PREFIX_LENGTH]]
    check(len(first) == 1, f"the first key is listed once by its prefix: {[k.prefix for k in listed.items]}")
    check(set(first[0].scopes) == ALL_SCOPES, f"the first key has every scope: {first[0].scopes}")
    check(given(first[0].revoked_at) is None, "the first key is not revoked")
    print(f"keys: {len(listed.items)} listed; the first, {first[0].prefix} ({first[0].name}), has every scope")

    # A read-only key that expires tomorrow (to the second: the API's times are).
    expires = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).replace(microsecond=0)
    response = create_api_key.sync_detailed(
        client=client, body=NewApiKey(name="tour read-only", scopes=[KeyScope.READ], expires_at=expires)
    )
    created = expect(response.parsed, CreatedApiKey, "creating a read-only key")
    check(response.status_code == 201, f"creating a key is 201, not {response.status_code}")
    secret = created.secret
    remember(secret)
    check(KEY_FORM.match(secret) is not None, "the new key is crk_ and 32 letters and digits")
    check(secret != key, "the new key is not the first key")
    check(secret[:PREFIX_LENGTH] == created.key.prefix, "the new key starts with its display prefix")
    check(created.key.scopes == [KeyScope.READ], f"the new key is read-only: {created.key.scopes}")
    check(created.key.name == "tour read-only", f"the new key's name: {created.key.name!r}")
    check(given(created.key.expires_at) == expires, f"it expires at {expires}, not {given(created.key.expires_at)}")
    check(given(created.key.revoked_at) is None, "a new key is not revoked")
    response = list_api_keys.sync_detailed(client=client)
    listed = expect(response.parsed, ApiKeyList, "listing keys")
    check(listed.items[0].prefix == created.key.prefix, "the newest key is listed first")
    check(secret.encode() not in response.content and key.encode() not in response.content, "a listing holds no secret")
    print(f"created the read-only key {created.key.prefix}, expiring {expires.isoformat()}")

    with make_client(secret) as reader:
        # It reads the tenant's data, side by side with the first key (as in a rotation).
        page = expect(list_datasets.sync(client=reader, limit=100), DatasetPage, "listing with the read-only key")
        check(set(ids.values()) <= {d.id for d in page.items}, "the read-only key sees the tenant's datasets")
        expect(get_dataset.sync(ids["prices"], client=reader), DatasetDetail, "get prices with the read-only key")
        own = expect(get_queue_stats.sync(client=reader), QueueStats, "the queue with the read-only key")
        check(not own.fleet, "a read key gets its tenant's queue numbers")

        # Writes and key management need scopes it does not have.
        response = create_dataset.sync_detailed(
            client=reader,
            name="read-only upload",
            format_=UploadFormat.CSV,
            body=File(payload=io.BytesIO(b"a\n1\n"), mime_type="application/octet-stream"),
        )
        challenge = refused(response, 403, "uploading with the read-only key")
        check(
            'error="insufficient_scope"' in challenge and 'scope="write"' in challenge,
            f"the 403 names the scope it needs: {challenge!r}",
        )
        response = submit_job.sync_detailed(
            client=reader,
            body=NewJob(
                inputs=[JobInput(table="prices", dataset=ids["prices"])],
                analysis=AnalysisSqlAnalysis(type_=AnalysisSqlAnalysisType.SQL, query="SELECT 1 AS one"),
            ),
        )
        refused(response, 403, "submitting with the read-only key")
        for what, response in (
            ("listing keys", list_api_keys.sync_detailed(client=reader)),
            (
                "creating a key",
                create_api_key.sync_detailed(client=reader, body=NewApiKey(name="escalation", scopes=list(ALL_SCOPES))),
            ),
            ("revoking the first key", revoke_api_key.sync_detailed(key[:PREFIX_LENGTH], client=reader)),
            ("the fleet's queue numbers", get_queue_stats.sync_detailed(client=reader, fleet=True)),
        ):
            challenge = refused(response, 403, f"{what} with the read-only key")
            check('scope="admin"' in challenge, f"{what}: the 403 names the admin scope: {challenge!r}")
        check("read-only upload" not in dataset_names(client), "the refused upload stored nothing")
        names = [k.name for k in expect(list_api_keys.sync(client=client), ApiKeyList, "listing keys").items]
        check("escalation" not in names, f"the refused key creation created nothing: {names}")
        print("the read-only key reads; its writes and key management are 403, naming the scope")

        response = revoke_api_key.sync_detailed(created.key.prefix, client=client)
        check(response.status_code == 204, f"revoking a key is 204, not {response.status_code}")
        # Revoked on this replica at once.
        response = list_datasets.sync_detailed(client=reader)
        challenge = refused(response, 401, "listing with the revoked key")
        check('error="invalid_token"' in challenge, f"a revoked key is an invalid token: {challenge!r}")
    response = revoke_api_key.sync_detailed(created.key.prefix, client=client)
    check(response.status_code == 204, f"revoking a revoked key is 204 still, not {response.status_code}")
    listed = expect(list_api_keys.sync(client=client), ApiKeyList, "listing keys")
    revoked = [k for k in listed.items if k.prefix == created.key.prefix]
    check(len(revoked) == 1 and given(revoked[0].revoked_at) is not None, "the revoked key is listed as revoked")
    expect(list_datasets.sync(client=client, limit=1), DatasetPage, "the first key after the revoke")

    # Refused: an unknown prefix, no scopes, an expiry in the past.
    response = revoke_api_key.sync_detailed("crk_00000000", client=client)
    check(response.status_code == 404 and isinstance(response.parsed, Problem), f"an unknown prefix: {response}")
    for what, body in (
        ("no scopes", NewApiKey(name="none", scopes=[])),
        (
            "an expiry in the past",
            NewApiKey(
                name="expired",
                scopes=[KeyScope.READ],
                expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1),
            ),
        ),
    ):
        response = create_api_key.sync_detailed(client=client, body=body)
        check(
            response.status_code in (400, 422) and isinstance(response.parsed, Problem),
            f"a key with {what} is refused as a 400 or 422 problem, not {response.status_code}",
        )
    names = [k.name for k in expect(list_api_keys.sync(client=client), ApiKeyList, "listing keys").items]
    check("none" not in names and "expired" not in names, f"the refused keys were not created: {names}")
    print("revoked it: 401 since; revoking again is 204; an unknown prefix 404; bad keys refused")


# ---------------------------------------------------------------------------- the tour


def tour(client: AuthenticatedClient, anonymous: Client, make_client: Any) -> None:
    # -- what the key guards
    without_a_key(client, anonymous, make_client)

    # -- the three example datasets, `null=NA`
    ids: dict[str, UUID] = {}
    for name in ("prices", "ports", "regions"):
        created = upload(client, name, (EXAMPLES / f"{name}.csv").read_bytes(), UploadFormat.CSV, null=["NA"])
        ids[name] = created.dataset.id
    detail = expect(get_dataset.sync(ids["prices"], client=client), DatasetDetail, "get prices")
    check(detail.dataset.rows == 10, f"prices has 10 rows, not {detail.dataset.rows}")
    check(
        [(c.name, c.data_type) for c in detail.dataset.schema]
        == [("orig_code", "Utf8"), ("dest_code", "Utf8"), ("day", "Date32"), ("price", "Int64")],
        f"prices' inferred schema: {[(c.name, c.data_type) for c in detail.dataset.schema]}",
    )
    check(len(detail.parts) == 1, f"prices has one part, not {len(detail.parts)}")
    regions = expect(get_dataset.sync(ids["regions"], client=client), DatasetDetail, "get regions")
    check(
        {c.name: c.nullable for c in regions.dataset.schema}.get("parent_slug") is True,
        "regions.parent_slug (NA for the top regions) is nullable",
    )

    # -- a malformed upload is refused whole, naming the line and the column
    bad = create_dataset.sync(
        client=client,
        name="bad",
        format_=UploadFormat.CSV,
        schema="a:int64,b:int64",
        body=File(payload=io.BytesIO(b"a,b\n1,2\n3,x\n"), mime_type="application/octet-stream"),
    )
    check(isinstance(bad, Problem), f"a malformed upload is a problem, not {bad!r}")
    check(bad.status == 422, f"a malformed upload is 422, not {bad.status}")
    errors = given(bad.errors) or []
    check(
        any(given(e.line) == 3 and given(e.column) == "b" for e in errors),
        f"the 422 names line 3, column b: {[(given(e.line), given(e.column), e.message) for e in errors]}",
    )
    print(f"a malformed upload: 422, {bad.detail}")

    # -- NDJSON, and a part appended to it
    ndjson = "".join(
        json.dumps({"code": code, "teu": teu, "active": teu > 0}) + "\n"
        for code, teu in [("CNSGH", 47_000), ("CNGGZ", 24_000), ("EETLL", 0)]
    )
    created = upload(client, "throughput", ndjson.encode(), UploadFormat.NDJSON)
    throughput = created.dataset.id
    check(created.dataset.rows == 3, f"throughput: 3 rows, not {created.dataset.rows}")
    part = append_dataset_part.sync(
        throughput,
        client=client,
        format_=UploadFormat.NDJSON,
        body=File(
            payload=io.BytesIO(b'{"code": "NOOSL", "teu": 1000, "active": true}\n'),
            mime_type="application/octet-stream",
        ),
    )
    part = expect(part, Part, "appending a part to throughput")
    check(part.rows == 1, f"the appended part has 1 row, not {part.rows}")
    detail = expect(get_dataset.sync(throughput, client=client), DatasetDetail, "get throughput")
    check(detail.dataset.parts == 2 and len(detail.parts) == 2, f"throughput has 2 parts: {detail.dataset.parts}")
    check(detail.dataset.rows == 4, f"throughput has 4 rows after the append, not {detail.dataset.rows}")
    check(detail.parts[-1].id == part.id, "the appended part is the newest")
    print(f"appended a part to throughput: {detail.dataset.rows} rows in {detail.dataset.parts} parts")

    # -- summary
    summary = run_job(
        client,
        "summary",
        NewJob(
            inputs=[JobInput(table="prices", dataset=ids["prices"])],
            analysis=AnalysisSummaryAnalysis(
                type_=AnalysisSummaryAnalysisType.SUMMARY, table="prices", columns=["price"]
            ),
        ),
    )
    rows, _ = all_rows(client, summary, 1000)
    check(len(rows) == 1 and rows[0]["column"] == "price", f"the summary has one row, for price: {rows}")
    check(rows[0]["count"] == 9 and rows[0]["nulls"] == 1, f"price: 9 values and 1 null (NA): {rows[0]}")

    # -- SQL: examples/freight_rates.sql, as in the README
    sql = run_job(
        client,
        "sql freight_rates",
        NewJob(
            inputs=[JobInput(table=name, dataset=ids[name]) for name in ("prices", "ports", "regions")],
            analysis=AnalysisSqlAnalysis(
                type_=AnalysisSqlAnalysisType.SQL, query=(EXAMPLES / "freight_rates.sql").read_text()
            ),
        ),
    )
    expected = [
        {"day": "2016-01-01", "average_price": 1250.0},
        {"day": "2016-01-02", "average_price": None},
        {"day": "2016-01-03", "average_price": 1200.0},
    ]
    rows, pages = all_rows(client, sql, limit=1)
    check(pages == 3, f"3 rows at limit=1 are 3 pages, not {pages}")
    check(rows == expected, f"freight_rates.sql, paged by 1: {rows}")
    whole, _ = all_rows(client, sql, limit=1000)
    check(whole == rows, "one page of 1000 holds the same rows as three of 1")
    print(f"sql result paged with limit=1: {pages} pages, {rows}")

    csv = download_csv(client, sql)
    check(
        csv.splitlines() == ["day,average_price", "2016-01-01,1250.0", "2016-01-02,", "2016-01-03,1200.0"],
        f"the CSV result, as in the README: {csv!r}",
    )
    parquet = download_parquet(client, sql)
    check(
        parquet[:4] == b"PAR1" and parquet[-4:] == b"PAR1",
        "the Parquet result starts and ends with PAR1",
    )
    print(f"downloaded the sql result: {len(csv)} bytes of CSV, {len(parquet)} bytes of Parquet")

    # -- Parquet: the downloaded result, uploaded as a dataset, and read back
    created = upload(client, "freight_rates", parquet, UploadFormat.PARQUET)
    check(created.dataset.rows == 3, f"the Parquet dataset has the result's 3 rows, not {created.dataset.rows}")
    check(
        [c.name for c in created.dataset.schema] == ["day", "average_price"],
        f"the Parquet dataset's columns: {[c.name for c in created.dataset.schema]}",
    )
    again = run_job(
        client,
        "sql over the parquet dataset",
        NewJob(
            inputs=[JobInput(table="rates", dataset=created.dataset.id)],
            analysis=AnalysisSqlAnalysis(
                type_=AnalysisSqlAnalysisType.SQL, query="SELECT day, average_price FROM rates ORDER BY day"
            ),
        ),
    )
    rows, _ = all_rows(client, again, 1000)
    check(rows == expected, f"the Parquet round trip keeps the rows: {rows}")

    # -- group_by, as in the README
    group_by = run_job(
        client,
        "group_by",
        NewJob(
            inputs=[JobInput(table="prices", dataset=ids["prices"])],
            analysis=AnalysisGroupByAnalysis(
                type_=AnalysisGroupByAnalysisType.GROUP_BY,
                table="prices",
                keys=["day"],
                aggregates=[Aggregate(function=AggregateFunction.MEAN, column="price", alias="average_price")],
                filters=[Filter(column="orig_code", op=FilterOp.IN, value=["CNSGH", "CNGGZ"])],
                min_group_size=3,
            ),
        ),
    )
    rows, _ = all_rows(client, group_by, 1000)
    check(
        sorted(rows, key=lambda r: r["day"]) == expected,
        f"the group_by answers what freight_rates.sql does: {rows}",
    )
    print(f"group_by result: {sorted(rows, key=lambda r: r['day'])}")

    # -- lists, paged
    seen: list[UUID] = []
    cursor: str | Unset = UNSET
    while True:
        page = expect(list_datasets.sync(client=client, limit=2, cursor=cursor), DatasetPage, "list datasets")
        seen.extend(d.id for d in page.items)
        if given(page.next_cursor) is None:
            break
        check(len(seen) < 1000, "dataset paging did not end")
        cursor = page.next_cursor
    check(set(ids.values()) <= set(seen), "every uploaded dataset is listed")
    check(len(seen) == len(set(seen)), "no dataset is listed twice across pages")
    jobs = expect(list_jobs.sync(client=client, state=JobState.SUCCEEDED, limit=100), JobPage, "list jobs")
    listed = {j.id for j in jobs.items}
    check({summary.id, sql.id, group_by.id} <= listed, "the succeeded jobs are listed under state=succeeded")
    print(f"listed {len(seen)} datasets two at a time, {len(listed)} succeeded jobs")

    # -- keys: a read-only key, refused writes, revoked
    key_management(client, client.token, make_client, ids)

    # -- cancel a running job
    data = "x\n" + "".join(f"{i}\n" for i in range(20_000))
    created = upload(client, "t", data.encode(), UploadFormat.CSV)
    check(created.dataset.rows == 20_000, f"t has 20,000 rows, not {created.dataset.rows}")
    job = expect(
        submit_job.sync(
            client=client,
            body=NewJob(
                inputs=[JobInput(table="t", dataset=created.dataset.id)],
                analysis=AnalysisSqlAnalysis(
                    type_=AnalysisSqlAnalysisType.SQL,
                    query="SELECT count(*) AS n FROM t a, t b WHERE a.x * b.x = 7",
                ),
            ),
        ),
        Job,
        "submitting the heavy job",
    )
    end = time.monotonic() + JOB_DEADLINE
    while job.state == JobState.QUEUED:
        check(time.monotonic() < end, f"the heavy job {job.id} did not start within {JOB_DEADLINE:.0f} s")
        time.sleep(0.2)
        job = expect(get_job.sync(job.id, client=client), Job, "polling the heavy job")
    check(job.state == JobState.RUNNING, f"the heavy job is running before the cancel, not {job.state}")
    # Into its query: a long-poll of 2 s answers when the job finishes or when
    # the 2 s are up, and this one must still be running then.
    job = expect(get_job.sync(job.id, client=client, wait=2), Job, "polling the heavy job")
    check(job.state == JobState.RUNNING, f"the heavy job is still running 2 s in, not {job.state}")
    print(f"the heavy job is running: {given(job.progress_message)} after {job.run_time_ms} ms")
    cancelled_at = time.monotonic()
    response = cancel_job.sync_detailed(job.id, client=client)
    job = expect(response.parsed, Job, "cancelling the heavy job")
    check(response.status_code == 202, f"cancelling a running job is 202, not {response.status_code}")
    check(job.cancel_requested, "a cancelled running job has cancel_requested")
    job = wait_for(client, job, "the cancelled job", deadline=CANCEL_DEADLINE)
    took = time.monotonic() - cancelled_at
    check(job.state == JobState.CANCELLED, f"the cancelled job ended {job.state}, not cancelled")
    check(given(job.result) is None, "a cancelled job has no result")
    print(f"cancelled a running job: cancelled {took:.1f} s after the cancel")

    # -- the queue: the tenant's numbers, and with the admin scope the fleet's
    stats = expect(get_queue_stats.sync(client=client), QueueStats, "queue stats")
    check(not stats.fleet, "without fleet=true the numbers are the tenant's")
    check(given(stats.scaling) is None and stats.workers == [], f"a tenant's view names no worker, no scaling: {stats}")
    check(stats.runnable <= stats.queued, f"runnable jobs are queued ones: {stats}")
    check(stats.backlog == stats.runnable + stats.running, f"backlog = runnable + running: {stats}")
    check(stats.succeeded_last_minute >= 4, f"the tour's 4 jobs succeeded in the last minute: {stats}")
    check(stats.cancelled_last_minute >= 1, f"the cancelled job is counted: {stats}")
    fleet = expect(get_queue_stats.sync(client=client, fleet=True), QueueStats, "the fleet's queue stats")
    check(fleet.fleet, "fleet=true gives the fleet's numbers")
    check(not isinstance(fleet.scaling, ScalingReading), "scaling is null outside AWS")
    check(fleet.backlog == fleet.runnable + fleet.running, f"the fleet's backlog = runnable + running: {fleet}")
    check(
        fleet.succeeded_last_minute >= stats.succeeded_last_minute,
        f"the fleet has at least the tenant's successes: {fleet} against {stats}",
    )
    workers = ", ".join(f"{w.worker_id}: {w.running}" for w in fleet.workers) or "none busy"
    print(
        f"queue (tenant): {stats.queued} queued ({stats.runnable} runnable), {stats.waiting} waiting, "
        f"{stats.running} running (backlog {stats.backlog}, oldest queued {stats.oldest_queued_ms} ms); "
        f"last minute: {stats.succeeded_last_minute} succeeded, {stats.failed_last_minute} failed, "
        f"{stats.cancelled_last_minute} cancelled; fleet: workers: {workers}; scaling: {given(fleet.scaling)}"
    )


def main() -> int:
    key = os.environ.get("CRUNCH_API_KEY", "")
    if len(sys.argv) != 2 or not key:
        print(
            f"usage: CRUNCH_API_KEY=KEY {sys.argv[0]} BASE_URL (e.g. http://127.0.0.1:8080), KEY one with every scope",
            file=sys.stderr,
        )
        return 2
    base_url = sys.argv[1]
    spec_check = SpecCheck(json.loads(SPEC_PATH.read_text()))
    try:
        spec_check.self_test()
    except TourFailure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    # The same options for every client of the tour, with and without a key.
    options: dict[str, Any] = {
        "raise_on_unexpected_status": True,
        "timeout": httpx.Timeout(REQUEST_TIMEOUT),
        "httpx_args": {"event_hooks": {"response": [spec_check.hook]}},
    }

    def make_client(token: str) -> AuthenticatedClient:
        return AuthenticatedClient(base_url=base_url, token=token, **options)

    started = time.monotonic()
    try:
        with make_client(key) as client, Client(base_url=base_url, **options) as anonymous:
            tour(client, anonymous, make_client)
    except TourFailure as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return 1
    if spec_check.failures:  # raised in the hook, and so already fatal; for certainty
        print("\nFAILED: " + "\n".join(spec_check.failures), file=sys.stderr)
        return 1
    print(
        f"\nspec check: {spec_check.responses} JSON responses, {spec_check.objects} objects checked against "
        f"{SPEC_PATH.name} ({spec_check.nulls} nulls, each where the spec allows one), "
        f"{spec_check.headers} required response headers present"
    )
    print(f"the tour passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
