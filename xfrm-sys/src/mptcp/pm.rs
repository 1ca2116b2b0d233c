//! The commands ([`Pm`]) and the commands with address-ID bookkeeping and the
//! path-failure recipe ([`Manager`]).

use std::{
    io,
    net::{IpAddr, SocketAddr},
    num::NonZeroU8,
};

use super::{
    AddrEntry, AddrFlags, Event, EventOptions, EventStream, Limits, LocalAddr, Token,
    ids::{AddrIds, IdMismatch},
    wire::{self, FAMILY_NAME},
};
use crate::{
    Error, Result,
    genl::{Family, Genl},
};

/// The kernel's reasons for refusing a path-manager command, recognised from the
/// extended-ACK text of an [`Error::Kernel`] (mptcp-pm.md §2, checked on 6.18 against
/// `net/mptcp/pm_userspace.c`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// `EINVAL "invalid token"`: no such connection in this namespace.
    InvalidToken,
    /// `EINVAL "userspace PM not selected"`: the connection uses the in-kernel PM.
    UserspacePmNotSelected,
    /// `EINVAL "did not match address and id"`: the address is pinned to another ID,
    /// or the ID to another address (pitfall 2).
    AddrIdMismatch,
    /// `EINVAL "invalid addr flags"` (SIGNAL in `SUBFLOW_CREATE`).
    InvalidAddrFlags,
    /// `EINVAL "invalid addr id"` (ANNOUNCE with ID 0).
    InvalidAddrId,
    /// `EINVAL "address with id N not found"` (REMOVE).
    AddressIdNotFound,
    /// `ESRCH "subflow not found"` (`SUBFLOW_DESTROY`, `SET_FLAGS`).
    SubflowNotFound,
    /// `"missing local port"` (`SUBFLOW_DESTROY`).
    MissingLocalPort,
    /// `"connect error: -N"` (`SUBFLOW_CREATE`): the subflow socket's connect failed with
    /// errno N (`EADDRNOTAVAIL`, `ENETUNREACH`, `ENOTCONN` before ESTABLISHED).
    ConnectError(i32),
}

impl Refusal {
    /// Classifies `e`; `None` when it is not a kernel refusal with a known text.
    pub fn of(e: &Error) -> Option<Self> {
        let Error::Kernel {
            message: Some(m), ..
        } = e
        else {
            return None;
        };
        let m = m.as_str();
        Some(match m {
            "invalid token" => Self::InvalidToken,
            "userspace PM not selected" => Self::UserspacePmNotSelected,
            "did not match address and id" => Self::AddrIdMismatch,
            "invalid addr flags" => Self::InvalidAddrFlags,
            "invalid addr id" => Self::InvalidAddrId,
            "subflow not found" => Self::SubflowNotFound,
            "missing local port" => Self::MissingLocalPort,
            _ if m.starts_with("address with id ") && m.ends_with(" not found") => {
                Self::AddressIdNotFound
            }
            _ => {
                let n = m.strip_prefix("connect error: ")?.parse::<i32>().ok()?;
                Self::ConnectError(n.saturating_abs())
            }
        })
    }
}

/// The `mptcp_pm` commands of one namespace (userspace path manager).
///
/// Cheap to clone. Commands other than [`Pm::addresses`] and [`Pm::limits`] need
/// `CAP_NET_ADMIN`.
#[derive(Clone, Debug)]
pub struct Pm {
    genl: Genl,
    family: Family,
}

impl Pm {
    /// Resolves `mptcp_pm` over `genl` (the family id and groups are dynamic).
    pub async fn new(genl: Genl) -> Result<Self> {
        let family = genl.resolve(FAMILY_NAME).await?;
        Ok(Self { genl, family })
    }

    /// [`Pm::new`] over a fresh [`Genl`] in the calling thread's namespace.
    pub async fn open() -> Result<Self> {
        Self::new(Genl::new()?).await
    }

    /// [`Pm::new`] over a fresh [`Genl`] in `/run/netns/NAME`.
    pub async fn in_netns(name: &str) -> Result<Self> {
        Self::new(Genl::in_netns(name)?).await
    }

    /// The family as the kernel described it.
    pub fn family(&self) -> &Family {
        &self.family
    }

    /// The request connection.
    pub fn genl(&self) -> &Genl {
        &self.genl
    }

    /// Opens an [`EventStream`] in the same namespace.
    pub async fn events(&self, opts: EventOptions) -> Result<EventStream> {
        EventStream::open(&self.genl, opts).await
    }

    async fn ack(&self, msg: crate::genl::Message, op: String) -> Result<()> {
        self.genl.request(msg, &op).await.map(drop)
    }

    /// `SUBFLOW_CREATE`: a new subflow (`MP_JOIN`) from `local` to `remote`.
    ///
    /// The ACK only means the SYN left; [`Event::SubEstablished`] (or
    /// [`Event::SubClosed`] with `error`) is the result. `remote`'s port is mandatory in
    /// practice (pitfall 3: port 0 connects to port 0); use the ESTABLISHED event's.
    /// `local.flags` must not contain SIGNAL.
    pub async fn subflow_create(
        &self,
        token: Token,
        local: &LocalAddr,
        remote: SocketAddr,
    ) -> Result<()> {
        let op = format!(
            "mptcp subflow create token {token} local {} id {} remote {remote}",
            local.addr, local.id
        );
        let f = &self.family;
        self.ack(
            wire::subflow_create(f.id, f.version, token, local, remote),
            op,
        )
        .await
    }

    /// `SUBFLOW_DESTROY`: closes the subflow with exactly this 4-tuple (both ports
    /// needed). The kernel also drops the local address's entry and ID.
    pub async fn subflow_destroy(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<()> {
        let op = format!("mptcp subflow destroy token {token} local {local} remote {remote}");
        let f = &self.family;
        self.ack(
            wire::subflow_destroy(f.id, f.version, token, local, remote),
            op,
        )
        .await
    }

    /// ANNOUNCE: sends `ADD_ADDR` for `local` (SIGNAL is added to its flags).
    ///
    /// The kernel opens **no** listener for it (mptcp-pm.md §2); announcing with a port
    /// may be dropped silently when TCP timestamps leave no option space (pitfall 7).
    pub async fn announce(&self, token: Token, local: &LocalAddr) -> Result<()> {
        let op = format!(
            "mptcp announce token {token} addr {} id {}",
            local.addr, local.id
        );
        let f = &self.family;
        self.ack(wire::announce(f.id, f.version, token, local), op)
            .await
    }

    /// REMOVE: sends `RM_ADDR` for local ID `id` and frees it. The peer closes its
    /// subflows from that address; the **local** ones stay until the peer's FIN arrives
    /// (never on a dead path: see [`Manager::detach_path`]).
    pub async fn remove(&self, token: Token, id: NonZeroU8) -> Result<()> {
        let op = format!("mptcp remove token {token} id {id}");
        let f = &self.family;
        self.ack(wire::remove(f.id, f.version, token, id), op).await
    }

    /// `SET_FLAGS`: sets or clears backup on one subflow (`MP_PRIO` to the peer, which gets
    /// `SUB_PRIORITY`; this side gets no event).
    pub async fn set_backup(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
    ) -> Result<()> {
        let op =
            format!("mptcp set flags token {token} local {local} remote {remote} backup {backup}");
        let flags = if backup {
            AddrFlags::BACKUP
        } else {
            AddrFlags::empty()
        };
        let f = &self.family;
        self.ack(
            wire::set_flags(f.id, f.version, token, local, remote, flags),
            op,
        )
        .await
    }

    /// `GET_ADDR` dump with TOKEN: the connection's local address list as the kernel
    /// keeps it (to check [`AddrIds`] against).
    pub async fn addresses(&self, token: Token) -> Result<Vec<AddrEntry>> {
        let op = format!("mptcp get addresses token {token}");
        let f = &self.family;
        self.genl
            .dump(wire::get_addr(f.id, f.version, token), &op)
            .await?
            .iter()
            .map(|m| {
                wire::parse_addr_entry(m).map_err(|source| Error::Decode {
                    op: op.clone(),
                    source,
                })
            })
            .collect()
    }

    /// `GET_LIMITS`: the in-kernel PM's limits (also allowed without privileges).
    pub async fn limits(&self) -> Result<Limits> {
        let op = "mptcp get limits".to_owned();
        let f = &self.family;
        let answers = self
            .genl
            .request(wire::get_limits(f.id, f.version), &op)
            .await?;
        let first = answers
            .first()
            .ok_or_else(|| Error::unexpected(&op, "no answer before the ACK"))?;
        wire::parse_limits(first).map_err(|source| Error::Decode { op, source })
    }
}

/// What [`Manager::detach_path`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Detached {
    /// The local ID withdrawn with REMOVE (`RM_ADDR` to the peer), if that step ran.
    pub removed_id: Option<NonZeroU8>,
    /// `SUBFLOW_DESTROY` closed the local subflow (`false`: it was already gone).
    pub destroyed: bool,
}

/// [`Pm`] plus the per-connection address-ID book the kernel requires (pitfalls 1, 2)
/// and the path-failure recipe (pitfall 5).
#[derive(Debug)]
pub struct Manager {
    pm: Pm,
    ids: AddrIds,
}

impl Manager {
    /// A manager with an empty ID book.
    pub fn new(pm: Pm) -> Self {
        Self {
            pm,
            ids: AddrIds::new(),
        }
    }

    /// The raw commands.
    pub fn pm(&self) -> &Pm {
        &self.pm
    }

    /// The ID book.
    pub fn ids(&self) -> &AddrIds {
        &self.ids
    }

    /// Keeps the book in step with events: CLOSED frees the connection's IDs.
    pub fn observe(&mut self, event: &Event) {
        if let Event::Closed { token, .. } = event {
            self.ids.closed(*token);
        }
    }

    /// A subflow from `local` (any port) to `remote`, with the ID pinned to `local` on
    /// this connection (allocated lowest-free from 1 on first use). Returns the ID.
    ///
    /// When all 255 IDs are taken this is an [`Error::Io`] whose source wraps
    /// [`IdsExhausted`](super::IdsExhausted). A refused command does not keep a newly
    /// allocated ID. A book that does not match the kernel's (a restarted daemon) gets
    /// `"did not match address and id"`: call [`Manager::adopt`] for the connections that
    /// already existed first.
    pub async fn create_subflow(
        &mut self,
        token: Token,
        local: IpAddr,
        remote: SocketAddr,
        backup: bool,
    ) -> Result<NonZeroU8> {
        let (id, fresh) = self
            .ids
            .id_for(token, local, 0)
            .map_err(|e| Error::io("mptcp subflow create", io::Error::other(e)))?;
        let addr = LocalAddr::subflow(id, local).backup(backup);
        match self.pm.subflow_create(token, &addr, remote).await {
            Ok(()) => Ok(id),
            Err(e) => {
                if fresh {
                    self.ids.unpin(token, local, 0);
                }
                Err(e)
            }
        }
    }

    /// `SUBFLOW_DESTROY` of one subflow; the kernel frees its local address's ID and so
    /// does the book.
    pub async fn destroy_subflow(
        &mut self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<()> {
        self.pm.subflow_destroy(token, local, remote).await?;
        self.ids.subflow_destroyed(token, local.ip());
        Ok(())
    }

    /// ANNOUNCE of `local` (port 0: none) with the ID pinned to it on this connection
    /// (allocated on first use, like [`Manager::create_subflow`]). Returns the ID.
    pub async fn announce(&mut self, token: Token, local: IpAddr, port: u16) -> Result<NonZeroU8> {
        let (id, fresh) = self
            .ids
            .id_for(token, local, port)
            .map_err(|e| Error::io("mptcp announce", io::Error::other(e)))?;
        let mut addr = LocalAddr::subflow(id, local);
        addr.port = port;
        addr.flags = AddrFlags::SIGNAL;
        match self.pm.announce(token, &addr).await {
            Ok(()) => Ok(id),
            Err(e) => {
                if fresh {
                    self.ids.unpin(token, local, port);
                }
                Err(e)
            }
        }
    }

    /// REMOVE of the ID pinned to `(local, port)`; `Ok(None)` when none is pinned.
    pub async fn remove_address(
        &mut self,
        token: Token,
        local: IpAddr,
        port: u16,
    ) -> Result<Option<NonZeroU8>> {
        let Some(id) = self.ids.conn(token).and_then(|c| c.get(local, port)) else {
            return Ok(None);
        };
        self.pm.remove(token, id).await?;
        self.ids.removed(token, id);
        Ok(Some(id))
    }

    /// Takes a dead path's subflow off **both** sides (mptcp-pm.md pitfall 5).
    ///
    /// The kernel notices nothing when a path goes silent, so REAP's verdict drives this:
    /// 1. unless `local_in_use` (another subflow still uses the local address: see
    ///    [`EventStream::local_address_in_use`]), REMOVE the local address's ID (from the
    ///    book, or from the kernel's list when the book has none): `RM_ADDR`
    ///    travels over a surviving subflow and the peer closes its half at once;
    /// 2. `SUBFLOW_DESTROY` the 4-tuple: the local half closes at once (its FIN is lost on
    ///    the dead path, which is why step 1 is needed for the peer).
    ///
    /// The order matters: `SUBFLOW_DESTROY` frees the ID, after which REMOVE fails with
    /// `"address with id N not found"`. With `local_in_use`, REMOVE would tear down the
    /// working subflows from the same address too, so only step 2 runs and the peer's
    /// half lingers until it times out.
    pub async fn detach_path(
        &mut self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
        local_in_use: bool,
    ) -> Result<Detached> {
        let mut removed_id = None;
        if !local_in_use && let Some(id) = self.local_id(token, local.ip()).await? {
            match self.pm.remove(token, id).await {
                Ok(()) => removed_id = Some(id),
                // The kernel already forgot it (e.g. an earlier SUBFLOW_DESTROY).
                Err(e) if Refusal::of(&e) == Some(Refusal::AddressIdNotFound) => {}
                Err(e) => return Err(e),
            }
            self.ids.removed(token, id);
        }
        let destroyed = match self.pm.subflow_destroy(token, local, remote).await {
            Ok(()) => true,
            Err(e) if Refusal::of(&e) == Some(Refusal::SubflowNotFound) => false,
            Err(e) => return Err(e),
        };
        self.ids.subflow_destroyed(token, local.ip());
        Ok(Detached {
            removed_id,
            destroyed,
        })
    }

    /// The ID of local address `addr` (port 0) on `token`: from the book, else from the
    /// kernel's list (a book that lost track, e.g. after a restart).
    async fn local_id(&self, token: Token, addr: IpAddr) -> Result<Option<NonZeroU8>> {
        if let Some(id) = self.ids.conn(token).and_then(|c| c.get(addr, 0)) {
            return Ok(Some(id));
        }
        Ok(self
            .pm
            .addresses(token)
            .await?
            .iter()
            .find(|e| e.addr == addr && e.port == 0)
            .and_then(|e| NonZeroU8::new(e.id)))
    }

    /// Compares the book of `token` with the kernel's `GET_ADDR` dump.
    pub async fn verify(&self, token: Token) -> Result<Vec<IdMismatch>> {
        let kernel = self.pm.addresses(token).await?;
        Ok(self.ids.verify(token, &kernel))
    }

    /// Replaces the book of `token` with the kernel's list (after a restart).
    pub async fn adopt(&mut self, token: Token) -> Result<()> {
        let kernel = self.pm.addresses(token).await?;
        self.ids.adopt(token, &kernel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(errno: i32, m: &str) -> Error {
        Error::Kernel {
            errno,
            op: "x".into(),
            message: Some(m.into()),
        }
    }

    #[test]
    fn refusals_are_recognised_from_the_kernel_text() {
        let cases = [
            ("invalid token", Refusal::InvalidToken),
            ("did not match address and id", Refusal::AddrIdMismatch),
            ("subflow not found", Refusal::SubflowNotFound),
            ("address with id 9 not found", Refusal::AddressIdNotFound),
            ("invalid addr flags", Refusal::InvalidAddrFlags),
            ("invalid addr id", Refusal::InvalidAddrId),
            ("missing local port", Refusal::MissingLocalPort),
            ("userspace PM not selected", Refusal::UserspacePmNotSelected),
            ("connect error: -107", Refusal::ConnectError(107)),
        ];
        for (text, want) in cases {
            assert_eq!(
                Refusal::of(&kernel(libc::EINVAL, text)),
                Some(want),
                "{text}"
            );
        }
        assert_eq!(Refusal::of(&kernel(libc::EINVAL, "something else")), None);
        assert_eq!(Refusal::of(&Error::unexpected("x", "y")), None);
        let no_text = Error::Kernel {
            errno: libc::EINVAL,
            op: "x".into(),
            message: None,
        };
        assert_eq!(Refusal::of(&no_text), None);
    }
}
