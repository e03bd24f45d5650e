//! The queue against a real PostgreSQL: enqueueing, every state
//! transition step by step, and the apalis backend end to end. Each test
//! gets a fresh database on the one throwaway cluster the binary shares
//! (`crunch_db::testing`).

mod common;

mod backend;
mod enqueue;
mod fair;
mod lifecycle;
