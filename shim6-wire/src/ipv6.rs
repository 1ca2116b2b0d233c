//! Not written yet: see the crate documentation for what belongs here.
