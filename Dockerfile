# syntax=docker/dockerfile:1
#
# One image for both binaries: `crunch-server` (the default command) and
# `crunch-worker`. Build:  docker build -t crunch .
#
# The server needs no PostgreSQL binaries here: containers always get a
# DATABASE_URL (compose's postgres service, RDS on AWS).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- build ----------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# 1. Dependencies, in their own layer: the manifests, the lock file and stub
#    sources for every workspace member. This layer is rebuilt only when a
#    Cargo.toml or Cargo.lock changes, not on every source edit.
#    .cargo/config.toml sets SQLX_OFFLINE=true (queries are checked against
#    .sqlx/, no database needed at build time).
COPY Cargo.toml Cargo.lock ./
COPY .cargo/ .cargo/
COPY db/Cargo.toml db/build.rs db/
COPY queue/Cargo.toml queue/
COPY store/Cargo.toml store/
COPY engine/Cargo.toml engine/
COPY worker/Cargo.toml worker/
COPY server/Cargo.toml server/
COPY bench/Cargo.toml bench/
COPY faults/Cargo.toml faults/
RUN set -eux; \
    for crate in db queue store engine worker server faults; do \
        mkdir -p "$crate/src"; \
        : > "$crate/src/lib.rs"; \
    done; \
    for crate in worker server bench; do \
        mkdir -p "$crate/src"; \
        echo 'fn main() {}' > "$crate/src/main.rs"; \
    done; \
    cargo build --release --locked -p crunch-server -p crunch-worker

# 2. The workspace itself. COPY keeps the files' original mtimes, which may be
#    older than the stub build; touch them so cargo rebuilds the workspace
#    crates instead of keeping the stubs. The fault suite (faults/) is not
#    built here and keeps its stub; the worker's `failpoints` feature, which
#    only that suite turns on, is therefore never in the image.
#    `install -s` strips the symbol tables as well as the debug info the
#    release profile leaves out: every Fargate task pulls these bytes at a
#    cold start (155 + 134 MB stripped, against 199 + 169 MB with symbols).
#    A panic still logs its message and source location; a backtrace in
#    the image shows addresses only.
COPY .sqlx/ .sqlx/
COPY migrations/ migrations/
COPY db/ db/
COPY queue/ queue/
COPY store/ store/
COPY engine/ engine/
COPY worker/ worker/
COPY server/ server/
COPY bench/ bench/
RUN set -eux; \
    find db queue store engine worker server bench -name '*.rs' -exec touch {} +; \
    cargo build --release --locked -p crunch-server -p crunch-worker; \
    install -s -m 0755 target/release/crunch-server target/release/crunch-worker /usr/local/bin/

# --- runtime --------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim

# ca-certificates: TLS to S3 and the other AWS APIs. tini: PID 1 that
# forwards SIGTERM to the binary (workers drain on it) and reaps children.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates tini; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 crunch; \
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/crunch \
        --no-create-home --shell /usr/sbin/nologin crunch; \
    install -d -o 10001 -g 10001 /var/lib/crunch /var/lib/crunch/.crunch /data

COPY --from=builder /usr/local/bin/crunch-server /usr/local/bin/crunch-worker /usr/local/bin/

# CRUNCH_DATA_DIR defaults to .crunch under the working directory; /data is
# owned by the crunch user so a named volume mounted there (compose) is
# writable, e.g. CRUNCH_STORE_URL=file:///data/store.
WORKDIR /var/lib/crunch
USER 10001:10001

# The API, when CRUNCH_LISTEN=0.0.0.0:8080 (the default listens on loopback).
EXPOSE 8080

# No HEALTHCHECK: the same image runs workers, which serve no HTTP. compose
# and the ALB probe the server's /readyz themselves.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["crunch-server"]
