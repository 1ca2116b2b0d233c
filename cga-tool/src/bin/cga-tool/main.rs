//! The `cga-tool` binary (being written).
fn main() {}
