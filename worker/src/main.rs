//! The crunch worker process.

fn main() {}
