//! PostgreSQL run locally: clusters of the machine's binaries started,
//! stopped, restarted and killed (`cluster`), sessions named after their
//! process (`connect`), and the fresh database per test that
//! `crunch_db::testing` hands out (`test_db`). The cluster tests
//! start clusters of their own and never touch the one the `test_db` tests
//! share.

mod cluster;
mod connect;
mod test_db;
