//! IPv6-in-IPv6 (RFC 2473): not written yet.
