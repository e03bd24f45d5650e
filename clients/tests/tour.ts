// A short tour through the TypeScript client (openapi-fetch over the generated
// types), authenticated with the key in CRUNCH_API_KEY (one with every scope):
// upload a dataset with rawBody(), append a part, submit an SQL job, long-poll
// it with `wait`, and read its result back as JSON and as CSV. Besides, a call
// without a key, or with an unknown one, is a 401 whose `error` is a Problem;
// and a read-only key created through the API reads, is refused a write (403)
// and, once revoked, everything (401).
//
//   CRUNCH_API_KEY=crk_... node <compiled tour.js> http://127.0.0.1:8080
//
// Compiled with the pinned tsc by scripts/client-tour (clients/tests/tsconfig.json,
// into a temporary directory), since Node 20 does not run TypeScript. If
// CRUNCH_TOUR_SECRETS names a file, the secret of the key it creates is
// appended to it (scripts/client-tour checks that the server logs it nowhere).
// Exits non-zero, saying what did not hold, on any failure.
import { createCrunchClient, rawBody, type CrunchClientOptions, type Schemas } from "../typescript/src/index.js";

// No @types/node here: the little of `process` and `fs` the tour uses.
const proc = (
  globalThis as unknown as {
    process: { argv: string[]; env: Record<string, string | undefined>; exitCode?: number };
  }
).process;
type Fs = { appendFileSync(path: string, data: string): void };

const WAIT = 30; // seconds, the long-polls' `wait`
const DEADLINE_MS = 120_000; // a job of the tour must finish within this
const TERMINAL: Schemas["JobState"][] = ["succeeded", "failed", "cancelled"];

function check(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new Error(message);
  }
}

/** The bearer challenge of a `status` answer whose `error` is a Problem of that status. */
function refused(what: string, status: 401 | 403, answer: { error?: unknown; response: Response }): string {
  check(answer.response.status === status, `${what}: expected ${status}, got ${answer.response.status}`);
  const problem = answer.error as Schemas["Problem"] | undefined;
  check(
    problem !== undefined && problem.status === status,
    `${what}: the error is a Problem: ${JSON.stringify(problem)}`,
  );
  check(
    (answer.response.headers.get("content-type") ?? "").startsWith("application/problem+json"),
    `${what}: served as application/problem+json`,
  );
  const challenge = answer.response.headers.get("www-authenticate") ?? "";
  check(challenge.startsWith("Bearer "), `${what}: a bearer challenge, not ${JSON.stringify(challenge)}`);
  return challenge;
}

/** The data of an openapi-fetch answer, or a failure naming the problem. */
function ok<T>(what: string, answer: { data?: T; error?: unknown; response: Response }): T {
  check(
    answer.error === undefined && answer.data !== undefined,
    `${what}: ${answer.response.status} ${JSON.stringify(answer.error)}`,
  );
  return answer.data;
}

async function main(baseUrl: string, apiKey: string): Promise<void> {
  // Every request is bounded: a long-poll answers within `wait` seconds.
  const options: CrunchClientOptions = {
    fetch: (request: Request) => fetch(request, { signal: AbortSignal.timeout(90_000) }),
  };
  const crunch = createCrunchClient(baseUrl, { ...options, apiKey });

  // Without a key, and with an unknown one: 401, the error a Problem.
  const anonymous = createCrunchClient(baseUrl, options);
  let challenge = refused("listing datasets without a key", 401, await anonymous.GET("/v1/datasets"));
  check(!challenge.includes("error="), `no error code without a key (RFC 6750): ${challenge}`);
  const stranger = createCrunchClient(baseUrl, { ...options, apiKey: `crk_${"0".repeat(32)}` });
  challenge = refused("listing datasets with an unknown key", 401, await stranger.GET("/v1/datasets"));
  check(challenge.includes('error="invalid_token"'), `an unknown key is an invalid token: ${challenge}`);
  const ready = ok("readiness without a key", await anonymous.GET("/readyz"));
  check(ready.status === "ok", `readiness: ${ready.status}`);
  console.log("without a key and with an unknown one: 401 problems; /readyz needs none");

  const csv = "orig_code,dest_code,day,price\nCNSGH,EETLL,2016-01-01,1200\nCNGGZ,EETLL,2016-01-01,NA\n";
  const created = ok(
    "uploading prices",
    await crunch.POST("/v1/datasets", {
      params: { query: { name: "ts-prices", format: "csv", null: ["NA"] } },
      ...rawBody(csv),
    }),
  );
  check(created.dataset.rows === 2, `2 rows uploaded, not ${created.dataset.rows}`);
  const id = created.dataset.id;

  const part = ok(
    "appending a part",
    await crunch.POST("/v1/datasets/{id}/parts", {
      params: { path: { id }, query: { format: "csv", null: ["NA"] } },
      ...rawBody(new TextEncoder().encode("orig_code,dest_code,day,price\nCNSGH,NOOSL,2016-01-02,1100\n")),
    }),
  );
  check(part.rows === 1, `the part has 1 row, not ${part.rows}`);
  const detail = ok("getting the dataset", await crunch.GET("/v1/datasets/{id}", { params: { path: { id } } }));
  check(detail.dataset.rows === 3 && detail.parts.length === 2, `3 rows in 2 parts: ${JSON.stringify(detail)}`);
  console.log(`uploaded ${detail.dataset.name}: ${detail.dataset.rows} rows in ${detail.parts.length} parts`);

  const body: Schemas["NewJob"] = {
    inputs: [{ table: "prices", dataset: id }],
    analysis: {
      type: "sql",
      query: "SELECT day, count(price) AS prices, avg(price) AS average_price FROM prices GROUP BY day ORDER BY day",
    },
  };
  let job = ok("submitting", await crunch.POST("/v1/jobs", { params: { query: { wait: WAIT } }, body }));
  const end = Date.now() + DEADLINE_MS;
  while (!TERMINAL.includes(job.state)) {
    check(Date.now() < end, `job ${job.id} still ${job.state} after ${DEADLINE_MS / 1000} s`);
    job = ok(
      "polling",
      await crunch.GET("/v1/jobs/{id}", { params: { path: { id: job.id }, query: { wait: WAIT } } }),
    );
  }
  check(job.state === "succeeded", `job ${job.id} ended ${job.state}: ${job.error ?? ""}`);
  check(job.result != null && job.result.rows === 2, `2 result rows: ${JSON.stringify(job.result)}`);
  console.log(`sql: job ${job.id} succeeded in ${job.run_time_ms ?? "?"} ms`);

  // The result's 200 has three media types (JSON, CSV, Parquet), so its data
  // is typed as the JSON page or a string; without `format` it is the page.
  const answer = ok(
    "the JSON result",
    await crunch.GET("/v1/jobs/{id}/result", { params: { path: { id: job.id }, query: { limit: 10 } } }),
  );
  check(typeof answer !== "string", `the JSON result is an object: ${JSON.stringify(answer)}`);
  const page: Schemas["ResultPage"] = answer;
  check(
    JSON.stringify(page.columns.map((c) => c.name)) === JSON.stringify(["day", "prices", "average_price"]),
    `columns: ${JSON.stringify(page.columns)}`,
  );
  const rows = page.rows.map((r) => [r["day"], r["prices"], r["average_price"]]);
  check(
    JSON.stringify(rows) === JSON.stringify([["2016-01-01", 1, 1200], ["2016-01-02", 1, 1100]]),
    `rows: ${JSON.stringify(page.rows)}`,
  );
  check(page.next_cursor == null, "one page holds the result");

  const text = ok(
    "the CSV result",
    await crunch.GET("/v1/jobs/{id}/result", {
      params: { path: { id: job.id }, query: { format: "csv" } },
      parseAs: "text",
    }),
  );
  check(
    text === "day,prices,average_price\n2016-01-01,1,1200.0\n2016-01-02,1,1100.0\n",
    `CSV: ${JSON.stringify(text)}`,
  );
  console.log(`result: ${JSON.stringify(page.rows)}; as CSV ${text.length} bytes`);

  // A read-only key: reads, is refused a write, then is revoked.
  const minted = ok(
    "creating a read-only key",
    await crunch.POST("/v1/keys", { body: { name: "ts read-only", scopes: ["read"] } }),
  );
  const secretsFile = proc.env["CRUNCH_TOUR_SECRETS"];
  if (secretsFile) {
    // A specifier typed as a string: no @types/node needed.
    const fs = (await import("node:fs" as string)) as Fs;
    fs.appendFileSync(secretsFile, `${minted.secret}\n`);
  }
  check(/^crk_[A-Za-z0-9]{32}$/.test(minted.secret), "the new key is crk_ and 32 letters and digits");
  check(minted.secret.startsWith(minted.key.prefix), "the new key starts with its display prefix");
  check(JSON.stringify(minted.key.scopes) === JSON.stringify(["read"]), `read-only: ${minted.key.scopes}`);
  const reader = createCrunchClient(baseUrl, { ...options, apiKey: minted.secret });
  const seen = ok(
    "getting the dataset with the read-only key",
    await reader.GET("/v1/datasets/{id}", { params: { path: { id } } }),
  );
  check(seen.dataset.rows === 3, `the read-only key sees the tenant's dataset: ${JSON.stringify(seen.dataset)}`);
  challenge = refused(
    "deleting the dataset with the read-only key",
    403,
    await reader.DELETE("/v1/datasets/{id}", { params: { path: { id } } }),
  );
  check(
    challenge.includes('error="insufficient_scope"') && challenge.includes('scope="write"'),
    `the 403 names the write scope: ${challenge}`,
  );
  ok("the dataset after the refused delete", await crunch.GET("/v1/datasets/{id}", { params: { path: { id } } }));
  const revoked = await crunch.DELETE("/v1/keys/{prefix}", { params: { path: { prefix: minted.key.prefix } } });
  check(revoked.response.status === 204 && revoked.error === undefined, `revoking: ${revoked.response.status}`);
  challenge = refused(
    "reading with the revoked key",
    401,
    await reader.GET("/v1/datasets/{id}", { params: { path: { id } } }),
  );
  check(challenge.includes('error="invalid_token"'), `a revoked key is an invalid token: ${challenge}`);
  console.log(`the read-only key ${minted.key.prefix}: reads, a delete is 403, revoked it is 401`);
  console.log("the TypeScript tour passed");
}

const baseUrl = proc.argv[2];
const apiKey = proc.env["CRUNCH_API_KEY"];
if (baseUrl === undefined || !apiKey) {
  console.error("usage: CRUNCH_API_KEY=KEY node tour.js BASE_URL (e.g. http://127.0.0.1:8080), a key with every scope");
  proc.exitCode = 2;
} else {
  try {
    await main(baseUrl, apiKey);
  } catch (e) {
    console.error(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
    proc.exitCode = 1;
  }
}
