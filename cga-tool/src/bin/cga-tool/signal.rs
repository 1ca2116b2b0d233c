//! Ctrl-C: the binary's only `unsafe` code.
//!
//! A long Sec 2 search must stop cleanly on SIGINT so that `--resume` can continue it:
//! the handler only raises an [`AtomicBool`] that the search workers poll between
//! batches (`cga::search`). A second SIGINT gets the default action (the process ends at
//! once), because the handler is installed with `SA_RESETHAND`.
//!
//! # Safety argument
//! - `on_sigint` is async-signal-safe: it performs one relaxed store to a static atomic,
//!   which is lock-free on every platform Rust supports with `AtomicBool`; it allocates
//!   nothing, takes no lock and touches no other state.
//! - `sigaction` is called with a fully initialised `struct sigaction` (zeroed, then the
//!   handler address, an empty mask from `sigemptyset`, and flags) and a null pointer
//!   for the old action, as POSIX allows. The handler is an `extern "C" fn(c_int)`, the
//!   signature `sa_handler` expects since `SA_SIGINFO` is not set.
//! - Nothing else in this module is `unsafe`.

#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Installs the SIGINT handler.
pub fn install() -> io::Result<()> {
    // SAFETY: see the module's safety argument: a zero-initialised sigaction is a valid
    // value of the C struct, every field we rely on is then set explicitly, and the
    // handler only stores to an atomic.
    let rc = unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
        libc::sigaction(libc::SIGINT, &sa, core::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The flag the handler raises.
pub fn flag() -> &'static AtomicBool {
    &INTERRUPTED
}
