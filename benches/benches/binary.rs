//! Binary node codec benchmarks (filled in by issue 2).
fn main() {}
