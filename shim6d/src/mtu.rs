//! MTU handling (placeholder being written).
