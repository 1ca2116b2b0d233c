//! The one crate of shim6d that talks to the kernel over netlink. **Not written yet**
//! (issues: daemon, MipShim6, MPTCP path manager).
//!
//! It will hold typed, async wrappers over rtnetlink (links, addresses with change
//! notifications, routes, rules, ip6tnl tunnels), XFRM (IPsec SAs and policies protecting
//! MIPv6 signalling) and the `mptcp_pm` generic-netlink family, built on the rust-netlink
//! crates. Attribute enums keep an `Other(..)` fallback so that newer kernels do not break
//! parsing. See `docs/ARCHITECTURE.md`.
