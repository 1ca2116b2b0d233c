//! Endpoint benchmarks (written below).

fn main() {}
