//! Mobile IPv6 (RFC 6275): not written yet.
