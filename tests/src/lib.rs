//! Helpers for shim6d's integration tests: a pcap writer and tshark driver for the
//! independent-decoder checks, and (later) network-namespace topologies for failure
//! injection. The tests themselves live in `tests/tests/`.
