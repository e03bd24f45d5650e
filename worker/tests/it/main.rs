//! The worker library against fakes on 127.0.0.1: the scale-in protection
//! client against the fake ECS agent (`crunch_worker::fake_agent`).

mod protection;
