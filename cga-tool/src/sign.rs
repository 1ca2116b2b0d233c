//! CGA signatures (RFC 3972 §6) and the Shim6 locator-list signature (RFC 5533 §5.15.5).
//!
//! A CGA signature is RSASSA-PKCS1-v1_5 (RFC 3447 §8.2) with SHA-1 over
//! `128-bit type tag ‖ message`, made with the private key whose public half is in the
//! CGA Parameters. The tag is never sent; both sides know it from context. For Shim6 the
//! tag is [`SHIM6_CGA_TAG`] and the message is the Locator List Generation followed by
//! every CGA-verified locator in list order (RFC 5533 §5.15.5).
//!
//! Signing is expensive (a 2048-bit RSA private operation), so a host signs its own
//! locator list once per list generation ([`LocatorListSigner::update`]) and the cached
//! signature is what goes out in I2, R2 and Update messages; the receive path only ever
//! reads the cache ([`LocatorListSigner::signature_for`]), so a peer cannot make us sign.

use std::net::Ipv6Addr;

use openssl::hash::MessageDigest;
use openssl::sign::{Signer, Verifier};
use shim6_wire::cga::Packet;

use crate::error::Result;
use crate::key::{MAX_VERIFY_BITS, MIN_VERIFY_BITS, PrivateKey, rsa_public_from_spki};
use crate::verify::{VerifyError, verify_cga};

/// The Shim6 CGA Message Type tag, `0x4A30 5662 4858 574B 3655 416F 506A 6D48`
/// (RFC 5533 §5.15.5; IANA "CGA Message Type" name space of RFC 3972 §8).
pub const SHIM6_CGA_TAG: [u8; 16] = [
    0x4a, 0x30, 0x56, 0x62, 0x48, 0x58, 0x57, 0x4b, 0x36, 0x55, 0x41, 0x6f, 0x50, 0x6a, 0x6d, 0x48,
];

/// Why a signature was not made or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The CGA address does not verify against the parameters (RFC 3972 §6 step 2).
    #[error("the address does not verify against the parameters: {0}")]
    Address(#[from] VerifyError),
    /// The parameters belong to a pure HBA set (Multi-Prefix P = 0): the key field is a
    /// random value, not a key, so nothing can be signed or verified with it
    /// (RFC 5535 §5). It is deliberately not parsed.
    #[error("the parameters are pure HBA (Multi-Prefix P = 0): they carry no public key")]
    NoPublicKey,
    /// The Public Key field is not a usable RSA `SubjectPublicKeyInfo`.
    #[error("the parameters' public key is not usable: {0}")]
    BadKey(String),
    /// RSA verification failed: wrong key, message or signature.
    #[error("the signature does not verify (RSASSA-PKCS1-v1_5 with SHA-1, RFC 3972 §6)")]
    Invalid,
    /// OpenSSL failed while signing.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Signs `tag ‖ message` with RSASSA-PKCS1-v1_5 and SHA-1 (RFC 3972 §6 "generation").
pub fn sign(key: &PrivateKey, tag: &[u8; 16], message: &[u8]) -> Result<Vec<u8>> {
    let mut s = Signer::new(MessageDigest::sha1(), key.pkey())?;
    s.update(tag)?;
    s.update(message)?;
    Ok(s.sign_to_vec()?)
}

/// Verifies an RSASSA-PKCS1-v1_5/SHA-1 signature over `tag ‖ message` with the public key
/// found in `params` (RFC 3972 §6 "verification" step 3). It does not check any address:
/// see [`verify_cga_signature`].
pub fn verify_signature(
    params: &[u8],
    tag: &[u8; 16],
    message: &[u8],
    signature: &[u8],
) -> core::result::Result<(), SignatureError> {
    let p = Packet::new_checked(params).map_err(VerifyError::Malformed)?;
    // RFC 5535 §5: with P = 0 the key field is a random pseudo-key; never parse it.
    match p.multi_prefix() {
        Some(Ok(mp)) if !mp.public_key_flag() => return Err(SignatureError::NoPublicKey),
        Some(Err(e)) => return Err(VerifyError::Malformed(e).into()),
        _ => {}
    }
    let pkey = rsa_public_from_spki(p.public_key()).map_err(SignatureError::BadKey)?;
    let bits = pkey.bits();
    if !(MIN_VERIFY_BITS..=MAX_VERIFY_BITS).contains(&bits) {
        return Err(SignatureError::BadKey(format!(
            "{bits}-bit RSA key outside the accepted {MIN_VERIFY_BITS}–{MAX_VERIFY_BITS} bits \
             (RFC 3972 §3)"
        )));
    }
    let ok = (|| {
        let mut v = Verifier::new(MessageDigest::sha1(), &pkey)?;
        v.update(tag)?;
        v.update(message)?;
        v.verify(signature)
    })();
    match ok {
        Ok(true) => Ok(()),
        // A signature of the wrong length or structure is just as invalid.
        Ok(false) | Err(_) => Err(SignatureError::Invalid),
    }
}

/// RFC 3972 §6 verification in full: the address must be the CGA of `params` (§5) and
/// the signature must verify with its key.
pub fn verify_cga_signature(
    address: &Ipv6Addr,
    params: &[u8],
    tag: &[u8; 16],
    message: &[u8],
    signature: &[u8],
) -> core::result::Result<(), SignatureError> {
    verify_cga(address, params)?;
    verify_signature(params, tag, message, signature)
}

/// The Shim6 signed message without the tag: Locator List Generation (4 octets) followed
/// by every locator whose verification method is CGA, in list order (RFC 5533 §5.15.5).
pub fn shim6_message(generation: u32, cga_locators: &[Ipv6Addr]) -> Vec<u8> {
    let mut m = Vec::with_capacity(4 + 16 * cga_locators.len());
    m.extend_from_slice(&generation.to_be_bytes());
    for l in cga_locators {
        m.extend_from_slice(&l.octets());
    }
    m
}

/// Verifies a peer's CGA Signature option (RFC 5533 §5.15.5, §7.2): `ulid` must be the
/// CGA of `params` and `signature` must cover `generation ‖ cga_locators` under the
/// Shim6 tag.
pub fn verify_locator_list(
    ulid: &Ipv6Addr,
    params: &[u8],
    generation: u32,
    cga_locators: &[Ipv6Addr],
    signature: &[u8],
) -> core::result::Result<(), SignatureError> {
    verify_cga_signature(
        ulid,
        params,
        &SHIM6_CGA_TAG,
        &shim6_message(generation, cga_locators),
        signature,
    )
}

/// A locator list with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedList {
    /// The Locator List Generation the signature covers.
    pub generation: u32,
    /// The CGA-method locators, in list order.
    pub locators: Vec<Ipv6Addr>,
    /// RSASSA-PKCS1-v1_5/SHA-1 over the Shim6 tag, generation and locators.
    pub signature: Vec<u8>,
}

/// Signs the local locator list once per generation and hands out the cached signature.
///
/// Only [`update`](Self::update) signs, and it signs only when the generation or the
/// locators changed; the methods a message handler uses only read the cache.
#[derive(Debug)]
pub struct LocatorListSigner {
    key: PrivateKey,
    current: Option<SignedList>,
    signatures_made: u64,
}

impl LocatorListSigner {
    /// A signer with no list yet.
    pub fn new(key: PrivateKey) -> Self {
        Self {
            key,
            current: None,
            signatures_made: 0,
        }
    }

    /// Records the local list `generation` with its CGA-method locators and returns its
    /// signature, signing only if it differs from the cached list. Call it when the
    /// local locators change, never in reply to a peer.
    pub fn update(&mut self, generation: u32, cga_locators: &[Ipv6Addr]) -> Result<&SignedList> {
        let list = match self.current.take() {
            Some(c) if c.generation == generation && c.locators == cga_locators => c,
            old => {
                let message = shim6_message(generation, cga_locators);
                match sign(&self.key, &SHIM6_CGA_TAG, &message) {
                    Ok(signature) => {
                        self.signatures_made += 1;
                        SignedList {
                            generation,
                            locators: cga_locators.to_vec(),
                            signature,
                        }
                    }
                    Err(e) => {
                        self.current = old;
                        return Err(e);
                    }
                }
            }
        };
        Ok(self.current.insert(list))
    }

    /// The cached list and signature, if any.
    pub fn current(&self) -> Option<&SignedList> {
        self.current.as_ref()
    }

    /// The cached signature if it is for `generation`. Never signs.
    pub fn signature_for(&self, generation: u32) -> Option<&[u8]> {
        self.current
            .as_ref()
            .filter(|c| c.generation == generation)
            .map(|c| c.signature.as_slice())
    }

    /// How many RSA signatures this signer has computed (for tests and statistics).
    pub fn signatures_made(&self) -> u64 {
        self.signatures_made
    }
}
