//! The server over HTTP on a loopback port: the API end to end, hostile
//! input, the served spec against the committed `openapi.json`, and the
//! worker-scaling publisher against mocked AWS clients. One binary, so the
//! crate and DataFusion are linked once and every test shares one
//! throwaway PostgreSQL cluster (`crunch_db::testing`).

mod common;

mod api;
mod hostile;
mod scaling;
mod spec;
