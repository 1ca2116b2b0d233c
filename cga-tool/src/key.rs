//! RSA keys: generation, PEM files with safe permissions, and the DER
//! `SubjectPublicKeyInfo` that goes into the CGA Parameters (RFC 3972 §3).
//!
//! RSA is the only algorithm RFC 3972 §3 and RFC 5533 use; the `openssl` crate provides
//! it (`ring` and `aws-lc-rs` cannot sign with SHA-1 or use 1024-bit keys).
//!
//! Private keys are written as unencrypted PKCS#8 PEM, created with mode 0600 and never
//! replacing an existing file unless asked to. Loading refuses a key file that group or
//! others can access, the way ssh does.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::Rsa;

use crate::error::{Error, Result};

/// The default modulus size.
pub const DEFAULT_BITS: u32 = 2048;
/// Modulus sizes [`PrivateKey::generate`] accepts.
pub const ACCEPTED_BITS: [u32; 4] = [1024, 2048, 3072, 4096];
/// Smallest key a verifier accepts: RFC 3972 §3 says keys SHOULD be at least 384 bits.
pub const MIN_VERIFY_BITS: u32 = 384;
/// Largest key a verifier accepts (RFC 3972 §3: verifiers SHOULD accept up to 2048 and
/// MAY accept more; 4096 bounds the work a peer can ask for).
pub const MAX_VERIFY_BITS: u32 = 4096;
/// Public exponent of generated keys.
const EXPONENT: u32 = 65537;

/// An RSA private key.
pub struct PrivateKey {
    pkey: PKey<Private>,
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        write!(f, "PrivateKey(RSA-{})", self.bits())
    }
}

impl PrivateKey {
    /// Generates a key of `bits` (one of [`ACCEPTED_BITS`]) with exponent 65537.
    pub fn generate(bits: u32) -> Result<Self> {
        if !ACCEPTED_BITS.contains(&bits) {
            return Err(Error::KeyBits(bits));
        }
        let e = openssl::bn::BigNum::from_u32(EXPONENT)?;
        let rsa = Rsa::generate_with_e(bits, &e)?;
        Ok(Self {
            pkey: PKey::from_rsa(rsa)?,
        })
    }

    /// Parses a PEM private key (PKCS#8 or PKCS#1 "RSA PRIVATE KEY"); it must be RSA.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let pkey = PKey::private_key_from_pem(pem)
            .map_err(|e| Error::Key(format!("not a PEM private key: {e}")))?;
        if pkey.id() != Id::RSA {
            return Err(Error::Key("not an RSA key (RFC 3972 uses RSA)".into()));
        }
        Ok(Self { pkey })
    }

    /// Reads a private key file, refusing one that group or others may access.
    pub fn load(path: &Path) -> Result<Self> {
        let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(Error::KeyPermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let _ = meta;
        let pem = fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_pem(&pem).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
    }

    /// Writes the key as PKCS#8 PEM to a new file with mode 0600. An existing file is
    /// an error ([`Error::KeyExists`]) unless `overwrite`, in which case it is replaced
    /// and its mode reset to 0600.
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<()> {
        let pem = self.to_pem()?;
        let mut opts = fs::OpenOptions::new();
        opts.write(true);
        if overwrite {
            opts.create(true).truncate(true);
        } else {
            opts.create_new(true);
        }
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::KeyExists(path.to_owned())
            } else {
                Error::io(path, e)
            }
        })?;
        #[cfg(unix)]
        {
            // `mode` only applies to files the open created; a replaced file keeps its
            // old bits, so set them explicitly before writing the key into it.
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(path, e))?;
        }
        f.write_all(&pem).map_err(|e| Error::io(path, e))?;
        f.sync_all().map_err(|e| Error::io(path, e))
    }

    /// The key as unencrypted PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<Vec<u8>> {
        Ok(self.pkey.private_key_to_pem_pkcs8()?)
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> u32 {
        self.pkey.bits()
    }

    /// The public half.
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_der(&self.pkey.public_key_to_der()?)
    }

    pub(crate) fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }
}

/// An RSA public key with its DER `SubjectPublicKeyInfo` (`AlgorithmIdentifier`
/// rsaEncryption with NULL parameters, BIT STRING holding the `RSAPublicKey`, RFC 3279
/// §2.3.1): the exact octets of the Public Key field.
#[derive(Clone)]
pub struct PublicKey {
    der: Vec<u8>,
    pkey: PKey<Public>,
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "PublicKey(RSA-{}, {} octets)",
            self.bits(),
            self.der.len()
        )
    }
}

/// Decodes a DER `SubjectPublicKeyInfo` holding an RSA key (RFC 3279 §2.3.1).
///
/// This goes through `d2i_RSA_PUBKEY` (`Rsa::public_key_from_der`) rather than the
/// generic `PKey::public_key_from_der`: on OpenSSL 3 the generic decoder searches the
/// providers for a matching decoder on every call and costs 115–135 µs here, the RSA one
/// 1–3 µs, which is most of a CGA-verified I2's processing time at the responder
/// (`docs/bench/proto.md`). A non-RSA key fails to decode, as RFC 3972 keys are RSA.
pub(crate) fn rsa_public_from_spki(der: &[u8]) -> core::result::Result<PKey<Public>, String> {
    let rsa = Rsa::public_key_from_der(der)
        .map_err(|e| format!("not a DER SubjectPublicKeyInfo with an RSA key: {e}"))?;
    let pkey = PKey::from_rsa(rsa).map_err(|e| format!("RSA key: {e}"))?;
    debug_assert_eq!(pkey.id(), Id::RSA);
    Ok(pkey)
}

impl PublicKey {
    /// Parses a DER `SubjectPublicKeyInfo`; it must be RSA, and the octets must be
    /// exactly one DER element.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let pkey = rsa_public_from_spki(der).map_err(Error::Key)?;
        if shim6_wire::cga::der_element_len(der)? != der.len() {
            return Err(Error::Key("trailing octets after the public key".into()));
        }
        Ok(Self {
            der: der.to_vec(),
            pkey,
        })
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> u32 {
        self.pkey.bits()
    }
}
