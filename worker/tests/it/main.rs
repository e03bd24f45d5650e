//! The worker library against fakes on 127.0.0.1 and a real PostgreSQL:
//! the scale-in protection client against the fake ECS agent
//! (`crunch_worker::fake_agent`), and the job handler's tenant isolation
//! over a real store and queue (a fresh database per test,
//! `crunch_db::testing`).

mod isolation;
mod protection;
