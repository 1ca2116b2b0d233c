//! REAP (RFC 5534): failure detection and locator-pair exploration. **Not written yet**
//! (issue: reap).
//!
//! This crate will hold one sans-IO state machine per Shim6 context: the Operational,
//! Exploring and InboundOk states, the Send and Keepalive timers of Forced Bidirectional
//! Detection, Probe messages with their reports, and the exploration order and pacing.
//! Inputs are events plus `now`; outputs are actions. See `docs/ARCHITECTURE.md`.
