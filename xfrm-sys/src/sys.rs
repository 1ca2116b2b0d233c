//! The crate's only `unsafe` code, two calls:
//! - `setns(2)`, which `libc` exposes as an `unsafe fn`;
//! - registering a netlink socket with the tokio reactor (`AsyncFd::register`, `unsafe`
//!   since tokio 1.54 because the reactor cannot check that the descriptor stays valid).
//!
//! Everything else goes through safe wrappers (`netlink-sys`, tokio, std).
#![allow(unsafe_code)]

use std::{
    fs::File,
    io,
    os::fd::{AsFd, AsRawFd},
};

use netlink_sys::Socket;
use tokio::io::unix::AsyncFd;

/// Moves the calling thread into the network namespace that `ns` (an open
/// `/run/netns/NAME` or `/proc/PID/ns/net`) refers to.
///
/// Only this thread changes namespace (`CLONE_NEWNET` is per thread); sockets it opens
/// afterwards belong to the new namespace for their whole life.
pub(crate) fn setns_net(ns: &File) -> io::Result<()> {
    let fd = ns.as_fd();
    // SAFETY: setns(2) reads no memory of ours; it takes a descriptor and a flag. `fd`
    // borrows `ns`, so the descriptor stays open for the duration of the call, and the
    // kernel checks that it refers to a network namespace (EINVAL otherwise).
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Registers `socket` with the reactor of the current tokio runtime.
///
/// Fails (never panics) outside a runtime or in one without I/O enabled.
pub(crate) fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("not inside a tokio runtime"));
    }
    // SAFETY: `AsyncFd::register` needs the descriptor to stay open and to stay the one
    // `as_raw_fd` returns for the life of the `AsyncFd`. `Socket` owns its descriptor and
    // closes it only in its `Drop`, which runs when the `AsyncFd` (after deregistering)
    // drops it; `as_raw_fd` returns the stored field. The `AsyncFd` lives in
    // `handle::NlSocket`, private to this crate, which never replaces the `Socket`
    // through `get_mut` and never clones it (a clone would close the descriptor twice).
    unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)
}
