// Compiled, never run: calls the way the API's documentation says they may be
// made, so that `tsc` (in scripts/gen-clients) fails if the generated types
// stop allowing them. (clients/tests/tour.ts makes such calls for real.)
import { createCrunchClient, rawBody, type Schemas, type UploadFormat } from "./index";

export async function contract(): Promise<void> {
  // Every /v1 operation needs a key: each request sends `Authorization: Bearer <key>`.
  const client = createCrunchClient("http://127.0.0.1:8080", { apiKey: "crk_0123456789abcdefghijABCDEFGHIJ01" });

  // An upload: a raw body, sent as application/octet-stream, with `format`
  // naming its encoding; `name` is the one required query parameter, and the
  // others (`null`, `header` with its default, ...) may be left out.
  const format: UploadFormat = "csv";
  const created = await client.POST("/v1/datasets", {
    params: { query: { name: "prices", format, null: ["NA"] } },
    ...rawBody("day,price\n2024-06-01,1.5\n"),
  });
  const dataset: string | undefined = created.data?.dataset.id;

  // Appending a part: the same body option; a Blob or bytes will do too.
  const part = await client.POST("/v1/datasets/{id}/parts", {
    params: { path: { id: dataset ?? "" }, query: { format: "ndjson" } },
    ...rawBody(new Blob(['{"day": "2024-06-02", "price": 1.75}\n'])),
  });
  const rows: number | undefined = part.data?.rows;
  void rows;

  // A job with only its required fields: the server fills in `priority`,
  // `max_attempts`, `timeout_seconds` and an analysis' `filters`.
  const job: Schemas["NewJob"] = {
    inputs: [{ table: "prices", dataset: dataset ?? "" }],
    analysis: { type: "group_by", table: "prices", keys: ["day"], aggregates: [{ function: "count" }] },
  };
  const submitted = await client.POST("/v1/jobs", { params: { query: { wait: 30 } }, body: job });
  if (submitted.error) {
    // A problem's `errors` is left out when empty, its `detail` may be null.
    const problem: Schemas["Problem"] = { type: "about:blank", title: "Bad Request", status: 400, detail: null };
    void problem;
  } else {
    // Optional fields of a job may be absent or null.
    const error: string | null | undefined = submitted.data.error;
    const result: Schemas["ResultSummary"] | null | undefined = submitted.data.result;
    void error;
    void result;
  }

  // Query parameters with a server-side default may be left out.
  const page = await client.GET("/v1/jobs", { params: { query: {} } });
  void page.data?.items;
  const result = await client.GET("/v1/jobs/{id}/result", { params: { path: { id: "x" } } });
  void result.data;
  // A result as CSV: text, not JSON.
  const csv = await client.GET("/v1/jobs/{id}/result", {
    params: { path: { id: "x" }, query: { format: "csv" } },
    parseAs: "text",
  });
  void csv.data;
  // Outside AWS the queue's `scaling` is null.
  const queue = await client.GET("/v1/queue");
  const scaling: Schemas["ScalingReading"] | null | undefined = queue.data?.scaling;
  void scaling;
  // The whole service's numbers (the admin scope).
  const fleetView = await client.GET("/v1/queue", { params: { query: { fleet: true } } });
  const fleet: boolean | undefined = fleetView.data?.fleet;
  void fleet;

  // Without a key: a 401, documented like every error, so `error` is a Problem.
  const anonymous = createCrunchClient("http://127.0.0.1:8080");
  const refused = await anonymous.GET("/v1/datasets");
  const status: number | undefined = refused.error?.status;
  void status;

  // Keys of the caller's tenant (the admin scope): created with scopes and an
  // optional expiry, the secret in that answer only; listed without secrets;
  // revoked by display prefix.
  const minted = await client.POST("/v1/keys", {
    body: { name: "ci", scopes: ["read", "write"], expires_at: "2030-01-01T00:00:00Z" },
  });
  const secret: string | undefined = minted.data?.secret;
  const scopes: Schemas["KeyScope"][] | undefined = minted.data?.key.scopes;
  void secret;
  void scopes;
  const keys = await client.GET("/v1/keys");
  const revokedAt: (string | null | undefined)[] | undefined = keys.data?.items.map((k) => k.revoked_at);
  void revokedAt;
  const revoked = await client.DELETE("/v1/keys/{prefix}", { params: { path: { prefix: "crk_01234567" } } });
  void revoked.response.status;
}
