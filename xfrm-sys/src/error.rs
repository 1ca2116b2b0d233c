//! Errors, split the way rtnetlink splits them (style.md, "Error model"):
//!
//! - [`Error::Kernel`]: the kernel answered a request with a negative errno. `op` names the
//!   request in `ip` terms (`"add route 2001:db8::/64 table 51"`), `message` carries the
//!   kernel's extended-ACK text when it sent one.
//! - [`Error::Io`]: the socket itself failed (open, bind, receive).
//! - [`Error::Unexpected`]: the kernel's reply broke the netlink protocol as we expect it
//!   (no ACK, a dump without `NLMSG_DONE`, an answer of the wrong type).
//! - [`Error::Decode`] wrapping a [`DecodeError`]: a message parsed as netlink but does not
//!   make sense as the typed object we build from it (an `RTM_NEWADDR` without an
//!   address, an IPv4 route in an IPv6 dump).
//!
//! Callers that want to be idempotent test [`Error::is_already_exists`] and
//! [`Error::is_not_found`] instead of matching errno values; the errno each operation
//! returns differs (see those methods).

use std::io;

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A kernel message that does not make sense as the typed object built from it.
///
/// `context` says which message was being decoded (for example `"RTM_NEWADDR"`), `detail`
/// says what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {context}: {detail}")]
pub struct DecodeError {
    context: String,
    detail: String,
}

impl DecodeError {
    /// A decode error for the message named by `context`.
    pub fn new(context: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            detail: detail.into(),
        }
    }

    /// Which message was being decoded.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// What was wrong with it.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// Everything that can go wrong while talking rtnetlink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel refused the request `op` with `errno` (positive, as in `libc::EEXIST`).
    #[error("{op}: {}{}", io::Error::from_raw_os_error(*.errno), extack_suffix(.message))]
    Kernel {
        /// The positive errno value.
        errno: i32,
        /// The request, in `ip` terms.
        op: String,
        /// The kernel's extended-ACK message (`NLMSGERR_ATTR_MSG`), when it sent one.
        message: Option<String>,
    },
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel's reply did not follow the netlink protocol as expected.
    #[error("{op}: unexpected netlink reply: {detail}")]
    Unexpected {
        /// The request.
        op: String,
        /// What was unexpected.
        detail: String,
    },
    /// A reply could not be decoded into the typed object.
    #[error("{op}: {source}")]
    Decode {
        /// The request whose reply failed to decode.
        op: String,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },
}

fn extack_suffix(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(" (kernel: {m})"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn unexpected(op: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Unexpected {
            op: op.into(),
            detail: detail.into(),
        }
    }

    /// The errno of a [`Error::Kernel`] (positive), `None` for the other variants.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The kernel said the object already exists (`EEXIST`): an add with create-exclusive
    /// semantics (address, route, rule) found an identical one.
    pub fn is_already_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The kernel said the object does not exist. The errno depends on the object:
    ///
    /// | operation | errno |
    /// | --- | --- |
    /// | link lookup by name or index | `ENODEV` |
    /// | delete an IPv6 address that is not there (or with another prefix length) | `EADDRNOTAVAIL` |
    /// | delete an IPv6 route that is not there | `ESRCH` |
    /// | delete a rule that is not there | `ENOENT` |
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENOENT | libc::ESRCH | libc::ENODEV | libc::EADDRNOTAVAIL)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_names_op_errno_and_extack() {
        let e = Error::Kernel {
            errno: libc::EEXIST,
            op: "add route 2001:db8::/64 table 51".into(),
            message: Some("route exists".into()),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("add route 2001:db8::/64 table 51: "),
            "{text}"
        );
        assert!(text.contains("File exists"), "{text}");
        assert!(text.ends_with("(kernel: route exists)"), "{text}");
        assert!(e.is_already_exists());
        assert!(!e.is_not_found());
    }

    #[test]
    fn not_found_covers_each_objects_errno() {
        for errno in [libc::ENOENT, libc::ESRCH, libc::ENODEV, libc::EADDRNOTAVAIL] {
            let e = Error::Kernel {
                errno,
                op: "x".into(),
                message: None,
            };
            assert!(e.is_not_found(), "{errno}");
            assert!(!e.is_already_exists());
        }
        let e = Error::Kernel {
            errno: libc::EINVAL,
            op: "x".into(),
            message: None,
        };
        assert!(!e.is_not_found());
        assert!(!Error::unexpected("x", "y").is_not_found());
        assert_eq!(Error::unexpected("x", "y").errno(), None);
    }

    #[test]
    fn decode_error_display() {
        let e = DecodeError::new("RTM_NEWADDR", "no IFA_ADDRESS");
        assert_eq!(e.to_string(), "cannot decode RTM_NEWADDR: no IFA_ADDRESS");
        assert_eq!(e.context(), "RTM_NEWADDR");
        assert_eq!(e.detail(), "no IFA_ADDRESS");
    }
}
