//! TCP re-send (placeholder being written).
