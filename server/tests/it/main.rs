//! The server over HTTP on a loopback port: the API end to end, keys and
//! tenants, tenant isolation on every operation of the spec, hostile input,
//! the served spec against the committed `openapi.json`, and the
//! worker-scaling publisher against mocked AWS clients. One binary, so the
//! crate and DataFusion are linked once and every test shares one
//! throwaway PostgreSQL cluster (`crunch_db::testing`).

mod common;

mod api;
mod auth;
mod hostile;
mod isolation;
mod scaling;
mod spec;
