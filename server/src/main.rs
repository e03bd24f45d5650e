//! The crunch HTTP API.

fn main() {}
