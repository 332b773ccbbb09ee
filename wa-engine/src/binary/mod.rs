//! Binary node codec.
