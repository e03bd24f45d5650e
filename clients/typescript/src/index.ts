// A typed client for the crunch REST API: openapi-fetch over the types that
// openapi-typescript generates from openapi.json into schema.d.ts (by
// scripts/gen-clients; do not edit that file).
import createClient, { type Client, type ClientOptions } from "openapi-fetch";

import type { components, operations, paths } from "./schema";

export type { components, operations, paths };

/** The API's named schemas, e.g. `Schemas["Job"]`. */
export type Schemas = components["schemas"];

/** A client for every operation in the spec, e.g. `client.GET("/v1/jobs/{id}", ...)`. */
export type CrunchClient = Client<paths>;

/** How an upload's body is encoded: its `format` query parameter, e.g. `"csv"`. */
export type UploadFormat = Schemas["UploadFormat"];

/** The options of {@link createCrunchClient}: openapi-fetch's, and the API key. */
export type CrunchClientOptions = Omit<ClientOptions, "baseUrl"> & {
  /**
   * The API key (`crk_…`) that every request sends as `Authorization: Bearer <key>`;
   * every `/v1` operation needs one (a standalone server writes its first key to
   * `<data-dir>/api-key`). Without it, those operations answer 401.
   */
  apiKey?: string;
};

/**
 * A client for the crunch server at `baseUrl` (e.g. `http://127.0.0.1:8080`),
 * authenticated with `options.apiKey`. The other options are openapi-fetch's
 * (headers, a custom fetch, ...). A 401 (no key, or an unknown, expired or
 * revoked one) or a 403 (the key lacks the operation's scope) comes back as
 * the answer's `error`, a `Problem`, like any other error the spec documents.
 */
export function createCrunchClient(baseUrl: string, options: CrunchClientOptions = {}): CrunchClient {
  const { apiKey, ...rest } = options;
  const client = createClient<paths>({ ...rest, baseUrl });
  if (apiKey !== undefined) {
    // On each request that does not name its own Authorization, so that one
    // call can still be made with another key.
    client.use({
      onRequest({ request }) {
        if (!request.headers.has("Authorization")) {
          request.headers.set("Authorization", `Bearer ${apiKey}`);
        }
        return request;
      },
    });
  }
  return client;
}

/**
 * A request option for uploads (`POST /v1/datasets`, `POST /v1/datasets/{id}/parts`),
 * whose bodies are raw bytes, not JSON: openapi-fetch's default body serializer
 * would JSON-encode them and label them `application/json`. The body goes as
 * `application/octet-stream`, the media type the spec declares, and its encoding
 * is named by the `format` query parameter (`csv`, `ndjson` or `parquet`), which
 * the server requires with that media type. Spread it into the request:
 *
 *     client.POST("/v1/datasets", {
 *       params: { query: { name: "prices", format: "csv", null: ["NA"] } },
 *       ...rawBody(csvText),
 *     });
 *
 * The spec types these bodies as `string` (OpenAPI's `format: binary` has no
 * TypeScript type of its own), so the body is cast; anything `fetch` takes as a
 * body will do: a string, a Blob, a Uint8Array, a ReadableStream.
 */
export function rawBody(body: BodyInit) {
  return {
    body: body as unknown as string,
    bodySerializer: (b: unknown) => b as BodyInit,
    headers: { "Content-Type": "application/octet-stream" },
  };
}
