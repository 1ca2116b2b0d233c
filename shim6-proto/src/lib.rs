//! The sans-IO Shim6 endpoint (RFC 5533). **Not written yet** (issue: shim6-proto).
//!
//! This crate will hold `Endpoint`: the context table, the I1/R1/I2/R2 handshake with a
//! stateless responder, R1bis/I2bis recovery, Update Request/Acknowledgement, Error
//! messages, locator verification through the `cga` library, and the payload rewriting
//! decisions for the data plane. It will do no I/O and never read the clock: every input
//! carries `now`, randomness comes from a seeded RNG, and outputs are polled
//! (`poll_transmit`, `poll_timeout`, `poll_event`). See `docs/ARCHITECTURE.md`.
