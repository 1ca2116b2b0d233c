//! Generation of CGAs (RFC 3972 §4) and HBA sets (RFC 5535 §6).
//!
//! A [`Generator`] holds what the modifier search hashes besides the modifier: the
//! public key (or an HBA pseudo-key) and the extension fields. Its search yields an
//! [`AddressSet`]: the owner's parameters, from which the address and the CGA Parameters
//! of any prefix follow with one SHA-1 each (RFC 3972 §4 steps 4–9, RFC 5535 §6 step 6).
//!
//! # The three kinds (RFC 5535 §4)
//! - **CGA**: [`Generator::cga`], a real key and no Multi-Prefix extension. Since Hash2
//!   does not cover the prefix, one search serves every prefix (RFC 3972 §4: "the old
//!   modifier MAY be reused").
//! - **CGA-compatible HBA**: [`Generator::hba`] with a key: Multi-Prefix P = 1.
//! - **Pure HBA**: [`Generator::hba`] without a key: Multi-Prefix P = 0 and a random
//!   pseudo-key in the Public Key field, encoded by [`hba_pseudo_key`].

use std::net::Ipv6Addr;

use shim6_wire::cga::{ExtensionRepr, MultiPrefixRepr, Packet, Prefix, Repr, der_element_len};

use crate::addr::{Prefix64, iid_from_hash1};
use crate::error::{Error, Result};
use crate::hash::{hash1, hash2_tail};
use crate::key::PublicKey;
use crate::search::{Outcome, SearchConfig, search};
use crate::sec::Sec;
use crate::verify::AddressKind;

/// Octets of randomness in a pure HBA's pseudo-key: 384 bits (RFC 5535 §6 step 2).
pub const PSEUDO_KEY_RANDOM_LEN: usize = 48;
/// Most prefixes one Multi-Prefix extension can carry: its data length is a 16-bit
/// field (RFC 4581 §2) holding 4 + 8·n octets.
pub const MAX_HBA_PREFIXES: usize = (u16::MAX as usize - 4) / 8;
/// The highest collision count (RFC 3972 §4 step 8: stop after three collisions).
pub const MAX_COLLISION_COUNT: u8 = 2;

/// DER of the `AlgorithmIdentifier` `rsaEncryption` (1.2.840.113549.1.1.1) with NULL
/// parameters (RFC 3279 §2.3.1).
const RSA_ENCRYPTION_ALG_ID: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Encodes 384 random bits as the pure-HBA pseudo-key (RFC 5535 §6 step 2: "a 384-bit
/// random nonce … formatted using the `RSAPublicKey` type").
///
/// The RFC leaves the encoding open (digest §7.17). This library writes a DER
/// `SubjectPublicKeyInfo` for rsaEncryption whose BIT STRING holds
/// `RSAPublicKey { modulus = the nonce, publicExponent = 65537 }`, with the nonce's top
/// bit forced to one, exactly like the modulus of a real 384-bit RSA key. The result is
/// always 78 octets and is valid DER that any X.509 parser reads as a (useless) RSA-384
/// key:
///
/// ```text
/// 30 4c                                      `SubjectPublicKeyInfo`
///    30 0d 06 09 2a864886f70d010101 05 00    rsaEncryption, NULL
///    03 3b 00                                BIT STRING, no unused bits
///       30 38                                `RSAPublicKey`
///          02 31 00 <48 octets, MSB set>     modulus
///          02 03 01 00 01                    publicExponent 65537
/// ```
///
/// Verifiers never parse it: they hash the bytes, and with P = 0 nothing tries to use
/// it as a key (a `LinShim6` pseudo-key, 48 raw octets in the BIT STRING, verifies the
/// same way).
pub fn hba_pseudo_key(random: &[u8; PSEUDO_KEY_RANDOM_LEN]) -> Vec<u8> {
    let mut k = Vec::with_capacity(78);
    k.extend_from_slice(&[0x30, 0x4c]);
    k.extend_from_slice(&RSA_ENCRYPTION_ALG_ID);
    k.extend_from_slice(&[0x03, 0x3b, 0x00, 0x30, 0x38, 0x02, 0x31, 0x00]);
    let modulus = k.len();
    k.extend_from_slice(random);
    // Top bit set: a fixed-length, minimally encoded positive INTEGER (X.690 §8.3).
    k[modulus] |= 0x80;
    k.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
    k
}

/// `n` octets from OpenSSL's CSPRNG.
fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b)?;
    Ok(b)
}

/// A random starting modifier (RFC 3972 §4 step 1: it "SHOULD be random").
pub fn random_modifier() -> Result<[u8; 16]> {
    random()
}

/// What the modifier search hashes besides the modifier, for one CGA key or HBA set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    sec: Sec,
    public_key: Vec<u8>,
    extensions: Vec<ExtensionRepr>,
}

impl Generator {
    /// A CGA for `public_key` (RFC 3972 §4), without extensions.
    pub fn cga(public_key: &PublicKey, sec: Sec) -> Self {
        Self {
            sec,
            public_key: public_key.der().to_vec(),
            extensions: Vec::new(),
        }
    }

    /// An HBA set over `prefixes` (RFC 5535 §6): CGA-compatible (P = 1) with a key, pure
    /// (P = 0, fresh random pseudo-key) without one.
    pub fn hba(prefixes: &[Prefix], public_key: Option<&PublicKey>, sec: Sec) -> Result<Self> {
        match public_key {
            Some(k) => Self::from_parts(sec, k.der().to_vec(), prefixes, true),
            None => Self::from_parts(sec, hba_pseudo_key(&random()?), prefixes, false),
        }
    }

    /// A generator from raw parts: any DER element as the key field, and a Multi-Prefix
    /// extension over `prefixes` with the given P flag unless `prefixes` is empty (then
    /// a plain CGA). Used for test vectors and to resume a search.
    pub fn from_parts(
        sec: Sec,
        public_key: Vec<u8>,
        prefixes: &[Prefix],
        p_flag: bool,
    ) -> Result<Self> {
        if der_element_len(&public_key)? != public_key.len() {
            return Err(Error::Key("trailing octets after the public key".into()));
        }
        let mut extensions = Vec::new();
        if !prefixes.is_empty() {
            if prefixes.len() > MAX_HBA_PREFIXES {
                return Err(Error::PrefixSet(
                    "more prefixes than one Multi-Prefix extension holds",
                ));
            }
            for (i, p) in prefixes.iter().enumerate() {
                if prefixes[..i].contains(p) {
                    return Err(Error::PrefixSet("a prefix appears twice"));
                }
            }
            // RFC 5535 §6 step 1: the extension lists every prefix; P says whether the
            // key field is a real key (RFC 5535 §5).
            extensions.push(ExtensionRepr::MultiPrefix(MultiPrefixRepr {
                public_key: p_flag,
                reserved: 0,
                prefixes: prefixes.to_vec(),
            }));
        }
        Ok(Self {
            sec,
            public_key,
            extensions,
        })
    }

    /// The Sec value.
    pub fn sec(&self) -> Sec {
        self.sec
    }

    /// The Public Key field.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The Multi-Prefix prefixes (empty for a plain CGA).
    pub fn prefixes(&self) -> &[Prefix] {
        self.extensions
            .iter()
            .find_map(|e| match e {
                ExtensionRepr::MultiPrefix(m) => Some(m.prefixes.as_slice()),
                ExtensionRepr::Other { .. } => None,
            })
            .unwrap_or(&[])
    }

    /// The Hash2 input after the modifier: `9 zero octets ‖ key ‖ extensions`
    /// (RFC 3972 §4 step 2).
    pub fn hash2_tail(&self) -> Vec<u8> {
        let mut ke = self.public_key.clone();
        for e in &self.extensions {
            let at = ke.len();
            ke.resize(at + e.buffer_len(), 0);
            e.emit(&mut ke[at..]);
        }
        hash2_tail(&ke)
    }

    /// Runs the modifier search from `start` (RFC 3972 §4 steps 2–3).
    pub fn search(&self, start: [u8; 16], config: &mut SearchConfig<'_>) -> Result<Outcome> {
        search(&self.hash2_tail(), self.sec, start, config)
    }

    /// The parameters for a modifier the search returned, collision count 0 (RFC 3972
    /// §4 step 4, RFC 5535 §6 step 5).
    pub fn finish(&self, modifier: [u8; 16]) -> AddressSet {
        AddressSet {
            sec: self.sec,
            modifier,
            collision_count: 0,
            public_key: self.public_key.clone(),
            extensions: self.extensions.clone(),
        }
    }

    /// Searches from a random modifier and returns the parameters, or
    /// [`Error::Cancelled`] if the configuration's cancel flag stopped the search.
    pub fn generate(&self, config: &mut SearchConfig<'_>) -> Result<(AddressSet, Outcome)> {
        let out = self.search(random_modifier()?, config)?;
        match out {
            Outcome::Found { modifier, .. } => Ok((self.finish(modifier), out)),
            Outcome::Cancelled { hashes, .. } => Err(Error::Cancelled { hashes }),
        }
    }
}

/// An owner's CGA or HBA parameters: everything but the Subnet Prefix, which differs per
/// address (RFC 5535 §6: "only the Subnet Prefix field of each PDS differs").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSet {
    /// The Sec value the modifier satisfies.
    pub sec: Sec,
    /// The modifier found by the search.
    pub modifier: [u8; 16],
    /// The collision count (0 unless duplicate address detection failed).
    pub collision_count: u8,
    /// The Public Key field.
    pub public_key: Vec<u8>,
    /// The extension fields (the Multi-Prefix extension for HBA sets).
    pub extensions: Vec<ExtensionRepr>,
}

impl AddressSet {
    /// Rebuilds the set from any member's parameters, checking the modifier meets Sec.
    pub fn from_params(params: &[u8], sec: Sec) -> Result<Self> {
        let r = Repr::from_bytes(params)?;
        let p = Packet::new_checked(params)?;
        if sec != Sec::ZERO {
            let zero_bits = crate::hash::leading_zero_bits(&crate::hash::hash2(&p));
            if zero_bits < sec.zero_bits() {
                return Err(crate::VerifyError::Hash2 {
                    sec: sec.value(),
                    zero_bits,
                }
                .into());
            }
        }
        Ok(Self {
            sec,
            modifier: r.modifier,
            collision_count: r.collision_count,
            public_key: r.public_key,
            extensions: r.extensions,
        })
    }

    /// The kind of parameters (RFC 5535 §4).
    pub fn kind(&self) -> AddressKind {
        match self.multi_prefix() {
            None => AddressKind::Cga,
            Some(m) if m.public_key => AddressKind::CgaCompatibleHba,
            Some(_) => AddressKind::Hba,
        }
    }

    fn multi_prefix(&self) -> Option<&MultiPrefixRepr> {
        self.extensions.iter().find_map(|e| match e {
            ExtensionRepr::MultiPrefix(m) => Some(m),
            ExtensionRepr::Other { .. } => None,
        })
    }

    /// The HBA set's prefixes (empty for a CGA).
    pub fn prefixes(&self) -> &[Prefix] {
        self.multi_prefix().map_or(&[], |m| m.prefixes.as_slice())
    }

    /// The CGA Parameters of the address with `prefix` (RFC 3972 §4 step 9).
    pub fn params(&self, prefix: &Prefix) -> Repr {
        Repr {
            modifier: self.modifier,
            subnet_prefix: *prefix,
            collision_count: self.collision_count,
            public_key: self.public_key.clone(),
            extensions: self.extensions.clone(),
        }
    }

    /// The address for `prefix`: Hash1 over its parameters, Sec in bits 0–2, u and g
    /// zero (RFC 3972 §4 steps 5–7; RFC 5535 §6 steps 6.1–6.3).
    pub fn address(&self, prefix: &Prefix) -> Ipv6Addr {
        let h1 = hash1(&self.params(prefix).to_bytes());
        Prefix64(*prefix).with_iid(iid_from_hash1(h1, self.sec.value()))
    }

    /// Every member of an HBA set (or nothing for a CGA): prefix, address, parameters.
    pub fn members(&self) -> Vec<(Prefix64, Ipv6Addr, Vec<u8>)> {
        self.prefixes()
            .iter()
            .map(|p| (Prefix64(*p), self.address(p), self.params(p).to_bytes()))
            .collect()
    }

    /// After duplicate address detection found a collision: increments the collision
    /// count, which changes every address of the set (RFC 3972 §4 step 8; for HBA sets
    /// RFC 5535 §6 step 6.4, read as "redo all addresses", digest §7.16).
    pub fn bump_collision_count(&mut self) -> Result<()> {
        if self.collision_count >= MAX_COLLISION_COUNT {
            return Err(Error::TooManyCollisions);
        }
        self.collision_count += 1;
        Ok(())
    }
}
