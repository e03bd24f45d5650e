//! Long-poll support: a request that waits for a job to finish parks in the
//! queue's [`JobWaiters`](crunch_queue::JobWaiters), which wakes it when the
//! job is seen finished; the server closes them on shutdown so every
//! long-poll answers at once.

pub use crunch_queue::{JobWaiters as Waiters, Parked};
