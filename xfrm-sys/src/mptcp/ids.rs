//! Address-ID bookkeeping per connection, mirroring the kernel's userspace-PM local
//! address list (mptcp-pm.md §4, pitfalls 1 and 2). No I/O.
//!
//! The kernel keeps, per connection, a list of local address entries `(addr, port) → id`.
//! `SUBFLOW_CREATE` and ANNOUNCE add an entry (or must reuse the existing one: another ID
//! for the same address, or the same ID for another address, is `EINVAL "did not match
//! address and id"`); the entry stays pinned even after its subflow died, until
//! `SUBFLOW_DESTROY` (which drops the entry of the subflow's local *address*, whatever
//! the port) or REMOVE (by ID) frees it; CLOSED frees them all. ID 0 belongs to the
//! initial subflow's address and is never handed out.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    num::NonZeroU8,
};

use super::{AddrEntry, Token};

/// Every ID 1..=255 of a connection is taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("connection {token}: all 255 local address IDs are in use")]
pub struct IdsExhausted {
    /// The connection.
    pub token: Token,
}

/// A difference between our map and the kernel's `GET_ADDR` dump.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IdMismatch {
    /// We hold `(addr, port) → id`, the kernel has no such entry.
    MissingInKernel {
        /// Address.
        addr: IpAddr,
        /// Port (0: any).
        port: u16,
        /// Our ID.
        id: NonZeroU8,
    },
    /// The kernel has an entry we do not know (or with another ID).
    UnknownToUs(AddrEntry),
}

/// The local address IDs of one connection.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct ConnIds {
    by_addr: BTreeMap<(IpAddr, u16), NonZeroU8>,
}

impl ConnIds {
    /// The ID of `(addr, port)`, if one is pinned.
    pub fn get(&self, addr: IpAddr, port: u16) -> Option<NonZeroU8> {
        self.by_addr.get(&(addr, port)).copied()
    }

    /// The entry holding `id`.
    pub fn by_id(&self, id: NonZeroU8) -> Option<(IpAddr, u16)> {
        self.by_addr
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| *k)
    }

    /// All entries, by (address, port).
    pub fn iter(&self) -> impl Iterator<Item = ((IpAddr, u16), NonZeroU8)> + '_ {
        self.by_addr.iter().map(|(k, v)| (*k, *v))
    }

    fn lowest_free(&self) -> Option<NonZeroU8> {
        let mut used = [false; 256];
        for id in self.by_addr.values() {
            used[usize::from(id.get())] = true;
        }
        (1..=255u8)
            .find(|i| !used[usize::from(*i)])
            .and_then(NonZeroU8::new)
    }
}

/// Per-connection address-ID maps, keyed by token.
#[derive(Clone, Default, Debug)]
pub struct AddrIds {
    conns: HashMap<Token, ConnIds>,
}

impl AddrIds {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// The IDs of one connection.
    pub fn conn(&self, token: Token) -> Option<&ConnIds> {
        self.conns.get(&token)
    }

    /// The ID for `(addr, port)` on `token`: the pinned one if any (pitfall 2: the
    /// kernel insists on it), else the lowest free ID, which is then pinned. The bool is
    /// `true` when the ID was newly allocated (so a failed command can
    /// [`AddrIds::unpin`] it).
    pub fn id_for(
        &mut self,
        token: Token,
        addr: IpAddr,
        port: u16,
    ) -> Result<(NonZeroU8, bool), IdsExhausted> {
        let conn = self.conns.entry(token).or_default();
        if let Some(id) = conn.get(addr, port) {
            return Ok((id, false));
        }
        let id = conn.lowest_free().ok_or(IdsExhausted { token })?;
        conn.by_addr.insert((addr, port), id);
        Ok((id, true))
    }

    /// Forgets exactly `(addr, port)`.
    pub fn unpin(&mut self, token: Token, addr: IpAddr, port: u16) -> Option<NonZeroU8> {
        let conn = self.conns.get_mut(&token)?;
        conn.by_addr.remove(&(addr, port))
    }

    /// What `SUBFLOW_DESTROY` does to the kernel's list: it drops the entry of the local
    /// address, looked up without the port (the subflow's own port differs from the
    /// entry's, usually 0). Prefers the port-0 entry; returns the ID freed.
    pub fn subflow_destroyed(&mut self, token: Token, local: IpAddr) -> Option<NonZeroU8> {
        let conn = self.conns.get_mut(&token)?;
        let key = if conn.by_addr.contains_key(&(local, 0)) {
            (local, 0)
        } else {
            *conn.by_addr.keys().find(|(a, _)| *a == local)?
        };
        conn.by_addr.remove(&key)
    }

    /// What REMOVE does: drops the entry holding `id`; returns its (address, port).
    pub fn removed(&mut self, token: Token, id: NonZeroU8) -> Option<(IpAddr, u16)> {
        let conn = self.conns.get_mut(&token)?;
        let key = conn.by_id(id)?;
        conn.by_addr.remove(&key);
        Some(key)
    }

    /// The connection closed: all its IDs go.
    pub fn closed(&mut self, token: Token) {
        self.conns.remove(&token);
    }

    /// Connections known.
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.conns.keys().copied()
    }

    /// Compares our map of `token` with the kernel's `GET_ADDR` dump (entries with ID 0,
    /// the initial subflow's address, are not ours and are ignored).
    pub fn verify(&self, token: Token, kernel: &[AddrEntry]) -> Vec<IdMismatch> {
        let empty = ConnIds::default();
        let ours = self.conns.get(&token).unwrap_or(&empty);
        let mut out = Vec::new();
        for ((addr, port), id) in ours.iter() {
            if !kernel
                .iter()
                .any(|e| e.addr == addr && e.port == port && e.id == id.get())
            {
                out.push(IdMismatch::MissingInKernel { addr, port, id });
            }
        }
        for e in kernel.iter().filter(|e| e.id != 0) {
            if ours.get(e.addr, e.port).map(NonZeroU8::get) != Some(e.id) {
                out.push(IdMismatch::UnknownToUs(*e));
            }
        }
        out
    }

    /// Replaces our map of `token` with the kernel's dump (after a restart, or when
    /// [`AddrIds::verify`] found differences).
    pub fn adopt(&mut self, token: Token, kernel: &[AddrEntry]) {
        let conn = self.conns.entry(token).or_default();
        conn.by_addr = kernel
            .iter()
            .filter_map(|e| NonZeroU8::new(e.id).map(|id| ((e.addr, e.port), id)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mptcp::AddrFlags;

    const T: Token = Token(0xa871_3a27);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nz(i: u8) -> NonZeroU8 {
        NonZeroU8::new(i).unwrap()
    }

    #[test]
    fn ids_start_at_one_and_stay_pinned_per_address_and_port() {
        let mut ids = AddrIds::new();
        assert_eq!(ids.id_for(T, ip("2001:db8:2::1"), 0), Ok((nz(1), true)));
        assert_eq!(ids.id_for(T, ip("2001:db8:3::1"), 0), Ok((nz(2), true)));
        // Same address again: the pinned ID, not a new one (pitfall 2).
        assert_eq!(ids.id_for(T, ip("2001:db8:2::1"), 0), Ok((nz(1), false)));
        // The port is part of the key.
        assert_eq!(ids.id_for(T, ip("2001:db8:2::1"), 9000), Ok((nz(3), true)));
        // Another connection has its own space.
        assert_eq!(
            ids.id_for(Token(1), ip("2001:db8:2::1"), 0),
            Ok((nz(1), true))
        );
    }

    #[test]
    fn freed_ids_are_reused_lowest_first() {
        let mut ids = AddrIds::new();
        for i in 1..=3u8 {
            ids.id_for(T, ip(&format!("2001:db8:{i}::1")), 0).unwrap();
        }
        assert_eq!(ids.removed(T, nz(2)), Some((ip("2001:db8:2::1"), 0)));
        assert_eq!(ids.removed(T, nz(2)), None);
        assert_eq!(ids.id_for(T, ip("2001:db8:9::1"), 0), Ok((nz(2), true)));
        // SUBFLOW_DESTROY frees by address, whatever the subflow's port.
        assert_eq!(ids.subflow_destroyed(T, ip("2001:db8:1::1")), Some(nz(1)));
        assert_eq!(ids.subflow_destroyed(T, ip("2001:db8:1::1")), None);
        assert_eq!(ids.id_for(T, ip("2001:db8:8::1"), 0), Ok((nz(1), true)));
        ids.closed(T);
        assert!(ids.conn(T).is_none());
        assert_eq!(ids.id_for(T, ip("2001:db8:3::1"), 0), Ok((nz(1), true)));
    }

    #[test]
    fn all_255_then_exhausted() {
        let mut ids = AddrIds::new();
        for i in 1..=255u16 {
            let a = ip(&format!("2001:db8::{i:x}"));
            assert_eq!(
                ids.id_for(T, a, 0).unwrap().0.get(),
                u8::try_from(i).unwrap()
            );
        }
        assert_eq!(
            ids.id_for(T, ip("2001:db8::1:0"), 0),
            Err(IdsExhausted { token: T })
        );
        ids.unpin(T, ip("2001:db8::7"), 0);
        assert_eq!(ids.id_for(T, ip("2001:db8::1:0"), 0), Ok((nz(7), true)));
    }

    #[test]
    fn verify_against_a_dump_and_adopt_it() {
        let mut ids = AddrIds::new();
        ids.id_for(T, ip("2001:db8:2::1"), 0).unwrap();
        ids.id_for(T, ip("2001:db8:3::1"), 0).unwrap();
        let entry = |id, a: &str| AddrEntry {
            id,
            addr: ip(a),
            port: 0,
            flags: AddrFlags::SUBFLOW,
            if_idx: None,
        };
        let initial = entry(0, "2001:db8:1::1");
        let kernel = [
            initial,
            entry(1, "2001:db8:2::1"),
            entry(2, "2001:db8:3::1"),
        ];
        assert_eq!(ids.verify(T, &kernel), []);
        let kernel2 = [entry(1, "2001:db8:2::1"), entry(5, "2001:db8:4::1")];
        assert_eq!(
            ids.verify(T, &kernel2),
            [
                IdMismatch::MissingInKernel {
                    addr: ip("2001:db8:3::1"),
                    port: 0,
                    id: nz(2)
                },
                IdMismatch::UnknownToUs(kernel2[1]),
            ]
        );
        ids.adopt(T, &kernel2);
        assert_eq!(ids.verify(T, &kernel2), []);
        assert_eq!(ids.id_for(T, ip("2001:db8:4::1"), 0), Ok((nz(5), false)));
    }
}
