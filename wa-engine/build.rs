//! Build script: nothing to generate for wa-engine.
fn main() {}
