//! The fault suite: real `crunch-server` and `crunch-worker` processes
//! against a real PostgreSQL, under crashes, restarts, signals and deploys
//! (see `crunch_faults` for the environment each case runs in). One binary;
//! `cargo test -p crunch-faults --test it worker_crash` runs one case's
//! module. The cases run one at a time: each holds the suite's turn for as
//! long as its [`crunch_faults::Env`] lives.

mod cancel;
mod database_restart;
mod deploy;
mod memory_limit;
mod panic;
mod poison_job;
mod scale_in_protection;
mod server_sigterm;
mod worker_crash;
mod worker_sigterm;
