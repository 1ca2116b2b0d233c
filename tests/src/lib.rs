//! Helpers for shim6d's integration tests; the tests themselves live in `tests/tests/`.
//!
//! | module | what it gives a test |
//! |---|---|
//! | [`pcap`] | a minimal pcap writer (raw-IP link type) for packets we emit |
//! | [`samples`] | sample packets: a Shim6 control message of every type, a payload-header packet |
//! | [`tshark`] | runs `tshark` on such a file and gives back its decode as JSON, with helpers to find fields, expert infos and malformed-packet markers |
//! | [`daemons`] | two real shim6d processes on the LinShim6 testbed (HBA sets from cga-tool), a byte-checked TCP stream between the ULIDs, the failover scenario and its timeline (`./demo.sh`) |
//! | [`mip_testbed`] | the MipShim6 topology: mobile node, correspondent, two home agents, a router, two visited networks per mobile host; `[mip6]` sections and daemons for it |
//! | [`testbed`] | network-namespace topologies: the LinShim6 testbed (2 hosts × 3 prefixes, a router that breaks or delays each of the 18 unidirectional paths) and the multi-interface topology (provider links that go down), with UDP probes |

pub mod daemons;
pub mod mip_testbed;
pub mod pcap;
pub mod samples;
pub mod testbed;
pub mod tshark;
