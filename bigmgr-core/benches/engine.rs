//! Benchmark of the engine's own overhead (to be written).

fn main() {}
