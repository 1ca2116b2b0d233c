//! Helpers for shim6d's integration tests; the tests themselves live in `tests/tests/`.
//!
//! | module | what it gives a test |
//! |---|---|
//! | [`pcap`] | a minimal pcap writer (raw-IP link type) for packets we emit |
//! | [`samples`] | sample packets: a Shim6 control message of every type, a payload-header packet |
//! | [`tshark`] | runs `tshark` on such a file and gives back its decode as JSON, with helpers to find fields, expert infos and malformed-packet markers |
//!
//! Network-namespace topologies for failure injection will join them with the daemon.

pub mod pcap;
pub mod samples;
pub mod tshark;
