//! Errors, grouped by who is at fault (style.md "Error model", after rustls), and the
//! silent-drop reasons of the receive and send paths.
//!
//! - [`Error`] is what the API returns: malformed input, a misbehaving or incompatible
//!   peer, or a local misuse of the API.
//! - [`DropReason`] is what a handler reports when it silently discards a packet. Every
//!   drop is counted in [`Stats`](crate::Stats) under its reason. Internal processing
//!   returns [`Error`]s, and the dispatcher maps each one to a [`DropReason`]
//!   ([`Error::drop_reason`]).

use core::fmt;
use std::net::Ipv6Addr;
use std::time::Instant;

use shim6_wire::shim6::ContextTag;

/// Everything that can go wrong, by who is at fault.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The input does not parse (a wire-format error; drop silently, RFC 5533 §12.3).
    Malformed(shim6_wire::Error),
    /// The peer sent something well-formed that breaks the protocol or fails a security
    /// check.
    PeerMisbehaved(PeerMisbehaved),
    /// The peer speaks something we do not (or does not speak Shim6 at all).
    PeerIncompatible(PeerIncompatible),
    /// The caller used the API wrongly.
    ApiMisuse(ApiMisuse),
}

impl Error {
    /// The [`DropReason`] under which a packet rejected with this error is counted.
    pub fn drop_reason(&self) -> DropReason {
        match self {
            Self::Malformed(shim6_wire::Error::BadChecksum { .. }) => DropReason::BadChecksum,
            Self::Malformed(_) => DropReason::Malformed,
            Self::PeerMisbehaved(p) => p.drop_reason(),
            Self::PeerIncompatible(p) => match p {
                PeerIncompatible::UnknownMessageType(_) => DropReason::UnknownMessageType,
                PeerIncompatible::UnrecognizedCriticalOption { .. } => {
                    DropReason::UnrecognizedCriticalOption
                }
                PeerIncompatible::UnsupportedVerificationMethod(_) => {
                    DropReason::UnsupportedVerificationMethod
                }
                PeerIncompatible::NoSupport => DropReason::WrongState,
            },
            Self::ApiMisuse(_) => DropReason::Internal,
        }
    }
}

impl From<shim6_wire::Error> for Error {
    fn from(e: shim6_wire::Error) -> Self {
        Self::Malformed(e)
    }
}

impl From<PeerMisbehaved> for Error {
    fn from(e: PeerMisbehaved) -> Self {
        Self::PeerMisbehaved(e)
    }
}

impl From<ApiMisuse> for Error {
    fn from(e: ApiMisuse) -> Self {
        Self::ApiMisuse(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed packet: {e}"),
            Self::PeerMisbehaved(e) => write!(f, "peer misbehaved: {e}"),
            Self::PeerIncompatible(e) => write!(f, "peer incompatible: {e}"),
            Self::ApiMisuse(e) => write!(f, "API misuse: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A well-formed message that breaks the protocol or fails a security check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// The Responder Validator of an I2/I2bis is not one we computed for these inputs
    /// (RFC 5533 §7.13, §7.18).
    ValidatorMismatch,
    /// The Responder Nonce is older than the validator lifetime, or from the future
    /// (RFC 5533 §7.13: nonces no older than `VALIDATOR_MIN_LIFETIME` are recent).
    StaleResponderNonce,
    /// An I2/I2bis without the Responder Validator option it MUST carry.
    MissingValidator,
    /// The CGA Parameter Data Structure does not verify against ULID(peer)
    /// (RFC 5533 §7.13: "MUST correspond to the ULID").
    PdsMismatch(String),
    /// A Locator List without the PDS needed to verify it (RFC 5533 §5.15.4).
    MissingPds,
    /// CGA-method locators without a CGA Signature option (RFC 5533 §5.15.5).
    MissingSignature,
    /// The CGA Signature over the Locator List does not verify (RFC 5533 §7.2).
    BadSignature(String),
    /// An HBA-method locator that is not a member of the peer's HBA set (RFC 5535 §7.2).
    LocatorNotInHbaSet(Ipv6Addr),
    /// HBA method while the PDS has no Multi-Prefix extension, or another inconsistency
    /// between the list and the PDS (RFC 5533 §10: ignore the message, Error code 2).
    InconsistentVerification(Ipv6Addr),
    /// The packet's source locator is neither in Ls(peer) nor in the message's verified
    /// list (RFC 5533 §7.13, §7.18, §10.4).
    SourceLocatorUnknown(Ipv6Addr),
    /// A payload header or type 64–127 message names a tag we do not know (RFC 5533
    /// §7.17: answered with R1bis, rate limited).
    UnknownContextTag,
    /// No context matches the message's key (RFC 5533 §7.12, §7.15, §7.17, dispatcher
    /// table digest §1.12).
    NoMatchingContext,
    /// The context is in a state where this message is discarded (RFC 5533 App. B).
    WrongState,
    /// An Update Acknowledgement whose nonce is not the outstanding request's (§10.5).
    StaleUpdateNonce,
    /// Locator Preferences for another generation (§10.4, Error code 3).
    PreferencesGenerationMismatch,
    /// Locator Preferences with the wrong number of elements (§10.4, Error code 4).
    PreferencesCountMismatch,
    /// A Probe whose first "sent" record does not describe this very packet (RFC 5534
    /// §5.2): its addresses differ from the IPv6 header's.
    ProbeRecordMismatch,
    /// A control message or payload header from or to a multicast or unspecified address
    /// (RFC 5533 §12.3).
    BadAddress,
    /// A handshake message addressed to an ULID we do not own.
    NotOurUlid(Ipv6Addr),
}

impl PeerMisbehaved {
    fn drop_reason(&self) -> DropReason {
        match self {
            Self::ValidatorMismatch => DropReason::ValidatorMismatch,
            Self::StaleResponderNonce => DropReason::StaleResponderNonce,
            Self::MissingValidator => DropReason::ValidatorMismatch,
            Self::PdsMismatch(_) => DropReason::PdsMismatch,
            Self::MissingPds => DropReason::MissingPds,
            Self::MissingSignature | Self::BadSignature(_) => DropReason::BadSignature,
            Self::LocatorNotInHbaSet(_) => DropReason::LocatorNotInHbaSet,
            Self::InconsistentVerification(_) => DropReason::UnsupportedVerificationMethod,
            Self::SourceLocatorUnknown(_) => DropReason::SourceLocatorUnknown,
            Self::NoMatchingContext => DropReason::NoMatchingContext,
            Self::UnknownContextTag => DropReason::UnknownContextTag,
            Self::WrongState => DropReason::WrongState,
            Self::StaleUpdateNonce => DropReason::StaleUpdateNonce,
            Self::PreferencesGenerationMismatch | Self::PreferencesCountMismatch => {
                DropReason::PreferencesMismatch
            }
            Self::ProbeRecordMismatch => DropReason::ProbeRecordMismatch,
            Self::BadAddress => DropReason::BadAddress,
            Self::NotOurUlid(_) => DropReason::NotOurUlid,
        }
    }
}

impl fmt::Display for PeerMisbehaved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ValidatorMismatch => f.write_str("responder validator does not match"),
            Self::StaleResponderNonce => f.write_str("responder nonce is not recent"),
            Self::MissingValidator => f.write_str("no Responder Validator option"),
            Self::PdsMismatch(e) => write!(f, "CGA parameters do not verify the ULID: {e}"),
            Self::MissingPds => f.write_str("Locator List without CGA parameters"),
            Self::MissingSignature => f.write_str("CGA locators without a CGA Signature"),
            Self::BadSignature(e) => write!(f, "CGA Signature rejected: {e}"),
            Self::LocatorNotInHbaSet(a) => write!(f, "locator {a} is not in the HBA set"),
            Self::InconsistentVerification(a) => {
                write!(
                    f,
                    "locator {a}: verification method inconsistent with the PDS"
                )
            }
            Self::SourceLocatorUnknown(a) => write!(f, "source locator {a} is not verified"),
            Self::NoMatchingContext => f.write_str("no matching context"),
            Self::UnknownContextTag => f.write_str("unknown context tag"),
            Self::WrongState => f.write_str("message not accepted in this context state"),
            Self::StaleUpdateNonce => f.write_str("Update Acknowledgement for another request"),
            Self::PreferencesGenerationMismatch => {
                f.write_str("Locator Preferences for another Locator List Generation")
            }
            Self::PreferencesCountMismatch => {
                f.write_str("Locator Preferences element count differs from the list")
            }
            Self::ProbeRecordMismatch => {
                f.write_str("probe's first sent record does not match the IPv6 header")
            }
            Self::BadAddress => f.write_str("multicast or unspecified address"),
            Self::NotOurUlid(a) => write!(f, "{a} is not one of our ULIDs"),
        }
    }
}

/// The peer speaks something we do not.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerIncompatible {
    /// An unknown control message type (RFC 5533 §12.3: Error code 0).
    UnknownMessageType(u8),
    /// A critical option we do not know, or not valid in this message (RFC 5533 §5.15,
    /// §12.3: Error code 1). `offset` is from the start of the Shim6 header.
    UnrecognizedCriticalOption {
        /// The option's offset from the first octet of the Shim6 header.
        offset: usize,
    },
    /// A Locator List verification method we do not implement (RFC 5533 §10, Error
    /// code 2).
    UnsupportedVerificationMethod(u8),
    /// The peer does not run Shim6 (ICMPv6 "unrecognized Next Header" for our I1,
    /// RFC 5533 §7.6 / digest §7.6).
    NoSupport,
}

impl fmt::Display for PeerIncompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownMessageType(t) => write!(f, "unknown Shim6 message type {t}"),
            Self::UnrecognizedCriticalOption { offset } => {
                write!(f, "unrecognised critical option at offset {offset}")
            }
            Self::UnsupportedVerificationMethod(m) => {
                write!(f, "unsupported locator verification method {m}")
            }
            Self::NoSupport => f.write_str("peer does not support Shim6"),
        }
    }
}

/// A local mistake in using the API.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// [`Config::rng_seed`](crate::Config::rng_seed) is `None`: the shell must fill it
    /// from OS entropy (style.md "Time and randomness").
    NoSeed,
    /// The configuration is unusable; the string says why.
    Config(String),
    /// The address is not one of our configured ULIDs.
    UnknownLocalUlid(Ipv6Addr),
    /// No context has this tag.
    UnknownContext(ContextTag),
    /// A context for this ULID pair already exists (use `fork` for another instance).
    ContextExists(ContextTag),
    /// The ULID pair is in a hold-down after a failed establishment (E-FAILED or
    /// NO-SUPPORT, RFC 5533 §7.5, §7.6) until the given instant.
    HeldDown {
        /// When the hold-down ends.
        until: Instant,
    },
    /// The packet buffer or range given to a handler is unusable.
    BadBuffer(&'static str),
    /// A local identity problem (key, parameters, signing).
    Identity(String),
}

impl fmt::Display for ApiMisuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSeed => f.write_str("Config::rng_seed is None: the shell must provide a seed"),
            Self::Config(s) => write!(f, "bad configuration: {s}"),
            Self::UnknownLocalUlid(a) => write!(f, "{a} is not a configured local ULID"),
            Self::UnknownContext(t) => write!(f, "no context with tag {t}"),
            Self::ContextExists(t) => write!(f, "a context already exists for this pair ({t})"),
            Self::HeldDown { .. } => f.write_str("ULID pair is in an establishment hold-down"),
            Self::BadBuffer(s) => write!(f, "bad packet buffer: {s}"),
            Self::Identity(s) => write!(f, "local identity: {s}"),
        }
    }
}

/// Why a handler silently discarded a packet. Each has its counter in
/// [`Stats::drops`](crate::Stats::drops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// Does not parse (wire error other than the checksum).
    Malformed,
    /// Shim6 control checksum wrong (RFC 5533 §12.3).
    BadChecksum,
    /// Inbound packet carries no Shim6 header and is not an ICMPv6 error about one.
    NotShim6,
    /// Unknown control message type (answered with Error 0, rate limited).
    UnknownMessageType,
    /// Unrecognised critical option (answered with Error 1, rate limited).
    UnrecognizedCriticalOption,
    /// Multicast or unspecified source or destination (RFC 5533 §12.3).
    BadAddress,
    /// Handshake message for an ULID we do not own.
    NotOurUlid,
    /// Responder Validator missing or wrong (RFC 5533 §7.13).
    ValidatorMismatch,
    /// Responder Nonce older than the validator lifetime.
    StaleResponderNonce,
    /// PDS does not verify against ULID(peer).
    PdsMismatch,
    /// Locator List without a PDS.
    MissingPds,
    /// CGA Signature missing or invalid.
    BadSignature,
    /// HBA locator outside the peer's HBA set.
    LocatorNotInHbaSet,
    /// Unsupported or inconsistent verification method (Error 2 sent).
    UnsupportedVerificationMethod,
    /// Source locator not verified for the context.
    SourceLocatorUnknown,
    /// No context matches (R1, R2, R1bis, Error, ICMP).
    NoMatchingContext,
    /// Message not accepted in the context's state (RFC 5533 App. B "discard").
    WrongState,
    /// Payload header or type 64–127 message with an unknown tag (R1bis sent or
    /// rate limited, RFC 5533 §7.17).
    UnknownContextTag,
    /// Update Acknowledgement with a stale nonce (RFC 5533 §10.5).
    StaleUpdateNonce,
    /// Locator Preferences generation or count mismatch (Errors 3 and 4).
    PreferencesMismatch,
    /// Probe's first sent record does not match the IPv6 header (RFC 5534 §5.2).
    ProbeRecordMismatch,
    /// An internal limit or invariant (e.g. no room to insert the payload header).
    Internal,
}

impl DropReason {
    /// Every reason, in counter-table order.
    pub const ALL: [Self; 22] = [
        Self::Malformed,
        Self::BadChecksum,
        Self::NotShim6,
        Self::UnknownMessageType,
        Self::UnrecognizedCriticalOption,
        Self::BadAddress,
        Self::NotOurUlid,
        Self::ValidatorMismatch,
        Self::StaleResponderNonce,
        Self::PdsMismatch,
        Self::MissingPds,
        Self::BadSignature,
        Self::LocatorNotInHbaSet,
        Self::UnsupportedVerificationMethod,
        Self::SourceLocatorUnknown,
        Self::NoMatchingContext,
        Self::WrongState,
        Self::UnknownContextTag,
        Self::StaleUpdateNonce,
        Self::PreferencesMismatch,
        Self::ProbeRecordMismatch,
        Self::Internal,
    ];

    /// Index in [`DropReason::ALL`] (and in the counter table).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// A short stable name (logs, control socket).
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadChecksum => "bad-checksum",
            Self::NotShim6 => "not-shim6",
            Self::UnknownMessageType => "unknown-message-type",
            Self::UnrecognizedCriticalOption => "unrecognized-critical-option",
            Self::BadAddress => "bad-address",
            Self::NotOurUlid => "not-our-ulid",
            Self::ValidatorMismatch => "validator-mismatch",
            Self::StaleResponderNonce => "stale-responder-nonce",
            Self::PdsMismatch => "pds-mismatch",
            Self::MissingPds => "missing-pds",
            Self::BadSignature => "bad-signature",
            Self::LocatorNotInHbaSet => "locator-not-in-hba-set",
            Self::UnsupportedVerificationMethod => "unsupported-verification-method",
            Self::SourceLocatorUnknown => "source-locator-unknown",
            Self::NoMatchingContext => "no-matching-context",
            Self::WrongState => "wrong-state",
            Self::UnknownContextTag => "unknown-context-tag",
            Self::StaleUpdateNonce => "stale-update-nonce",
            Self::PreferencesMismatch => "preferences-mismatch",
            Self::ProbeRecordMismatch => "probe-record-mismatch",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_indices_are_distinct() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
    }
}
