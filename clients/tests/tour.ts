// A short tour through the TypeScript client (openapi-fetch over the generated
// types): upload a dataset with rawBody(), append a part, submit an SQL job,
// long-poll it with `wait`, and read its result back as JSON and as CSV.
//
//   node <compiled tour.js> http://127.0.0.1:8080
//
// Compiled with the pinned tsc by scripts/client-tour (clients/tests/tsconfig.json,
// into a temporary directory), since Node 20 does not run TypeScript. Exits
// non-zero, saying what did not hold, on any failure.
import { createCrunchClient, rawBody, type Schemas } from "../typescript/src/index.js";

// No @types/node here: the little of `process` the tour uses.
const proc = (globalThis as unknown as { process: { argv: string[]; exitCode?: number } }).process;

const WAIT = 30; // seconds, the long-polls' `wait`
const DEADLINE_MS = 120_000; // a job of the tour must finish within this
const TERMINAL: Schemas["JobState"][] = ["succeeded", "failed", "cancelled"];

function check(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new Error(message);
  }
}

/** The data of an openapi-fetch answer, or a failure naming the problem. */
function ok<T>(what: string, answer: { data?: T; error?: unknown; response: Response }): T {
  check(
    answer.error === undefined && answer.data !== undefined,
    `${what}: ${answer.response.status} ${JSON.stringify(answer.error)}`,
  );
  return answer.data;
}

async function main(baseUrl: string): Promise<void> {
  // Every request is bounded: a long-poll answers within `wait` seconds.
  const crunch = createCrunchClient(baseUrl, {
    fetch: (request: Request) => fetch(request, { signal: AbortSignal.timeout(90_000) }),
  });

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
  console.log("the TypeScript tour passed");
}

const baseUrl = proc.argv[2];
if (baseUrl === undefined) {
  console.error("usage: node tour.js BASE_URL (e.g. http://127.0.0.1:8080)");
  proc.exitCode = 2;
} else {
  try {
    await main(baseUrl);
  } catch (e) {
    console.error(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
    proc.exitCode = 1;
  }
}
