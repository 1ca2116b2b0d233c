//! The CGA Parameters data structure (RFC 3972 §3) with its extension fields (RFC 4581 §2)
//! and the Multi-Prefix extension of Hash-Based Addresses (RFC 5535 §5).
//!
//! ```text
//!  offset  size  field
//!       0    16  Modifier
//!      16     8  Subnet Prefix (the upper 64 bits of the address)
//!      24     1  Collision Count
//!      25     K  Public Key: DER `SubjectPublicKeyInfo`, K taken from its own DER header
//!    25+K     …  Extension Fields: Type (16) | Data Length (16) | Data, up to the end
//! ```
//!
//! The structure has no length field of its own: it ends where its buffer ends (in Shim6
//! it is the whole content of the CGA Parameter Data Structure option, RFC 5533 §5.15.3).
//!
//! This module is pure wire format: it finds the fields and never hashes or parses the
//! key beyond its DER header. Everything in the structure is hashed byte for byte by
//! RFC 3972 §4 and §5, so [`Repr`] keeps every octet (unknown extensions verbatim, the
//! Multi-Prefix reserved bits) and `emit(parse(b)) == b` for every buffer `parse` accepts.
//!
//! The collision count is *not* range-checked here: RFC 3972 §5 step 1 makes it a
//! verification failure, which the `cga` crate reports as such.
//!
//! # Validity
//! [`Packet::check`] is the one length check: it walks the DER header of the key and
//! every extension header. After it passes, no accessor panics and
//! [`Packet::extensions`] yields every extension without error.

use core::fmt;
use std::net::Ipv6Addr;

use crate::error::{Error, Result, check_len};

/// Octets of the Modifier field (RFC 3972 §3).
pub const MODIFIER_LEN: usize = 16;
/// Octets of the Subnet Prefix field (RFC 3972 §3).
pub const PREFIX_LEN: usize = 8;
/// Octets before the Public Key field: modifier, subnet prefix, collision count.
pub const FIXED_LEN: usize = 25;
/// Octets of an extension field header: Type (16) and Data Length (16) (RFC 4581 §2).
pub const EXT_HEADER_LEN: usize = 4;
/// Extension Type of the Multi-Prefix extension (RFC 5535 §5; IANA "CGA Extension Type").
pub const EXT_MULTI_PREFIX: u16 = 0x0012;
/// The DER tag of a `SubjectPublicKeyInfo`: a constructed SEQUENCE (X.690 §8.9, RFC 5280 §4.1).
pub const DER_SEQUENCE: u8 = 0x30;

/// A 64-bit subnet prefix: the upper half of an address.
pub type Prefix = [u8; PREFIX_LEN];

/// Byte ranges of the fixed fields (RFC 3972 §3).
mod field {
    use core::ops::Range;
    pub const MODIFIER: Range<usize> = 0..16;
    pub const SUBNET_PREFIX: Range<usize> = 16..24;
    pub const COLLISION_COUNT: usize = 24;
    pub const PUBLIC_KEY: usize = 25;

    /// Inside an extension field (RFC 4581 §2).
    pub const EXT_TYPE: Range<usize> = 0..2;
    pub const EXT_LEN: Range<usize> = 2..4;

    /// Inside the Multi-Prefix Extension Data (RFC 5535 §5).
    pub const MP_FLAGS: Range<usize> = 0..4;
    pub const MP_PREFIXES: usize = 4;
}

/// Writes a prefix as an IPv6 /64, e.g. `2001:db8:1::/64`.
pub fn fmt_prefix(prefix: &Prefix, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{}/64", prefix_to_addr(prefix))
}

/// The address `prefix::` (interface identifier zero).
pub fn prefix_to_addr(prefix: &Prefix) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[..PREFIX_LEN].copy_from_slice(prefix);
    Ipv6Addr::from(a)
}

/// Length of the DER element that starts `buf`, header included, for the Public Key field.
///
/// RFC 3972 §3 gives the key no length field: "the length of the field is determined by
/// the ASN.1 encoding". The element must be a SEQUENCE (a `SubjectPublicKeyInfo`) with a
/// definite, minimally encoded length (X.690 §10.1) of at most four length octets; the
/// whole element must lie inside `buf`. Never panics.
pub fn der_element_len(buf: &[u8]) -> Result<usize> {
    check_len("CGA public key DER header", buf, 2)?;
    if buf[0] != DER_SEQUENCE {
        return Err(Error::Malformed(
            "CGA public key is not a DER SEQUENCE (SubjectPublicKeyInfo)",
        ));
    }
    let first = buf[1];
    let (header, content) = if first < 0x80 {
        // Short form: the length itself (X.690 §8.1.3.4).
        (2, usize::from(first))
    } else if first == 0x80 {
        // Indefinite form: forbidden in DER (X.690 §10.1).
        return Err(Error::Malformed(
            "CGA public key uses an indefinite DER length",
        ));
    } else {
        // Long form: 0x80 | n, then n length octets (X.690 §8.1.3.5).
        let n = usize::from(first & 0x7f);
        if n > 4 {
            return Err(Error::BadLength {
                what: "CGA public key DER length-of-length",
                value: n,
            });
        }
        check_len("CGA public key DER header", buf, 2 + n)?;
        let bytes = &buf[2..2 + n];
        let value = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if bytes[0] == 0 || value < 0x80 {
            return Err(Error::Malformed(
                "CGA public key DER length is not minimally encoded",
            ));
        }
        (2 + n, value)
    };
    let total = header.checked_add(content).ok_or(Error::BadLength {
        what: "CGA public key DER length",
        value: content,
    })?;
    check_len("CGA public key", buf, total)?;
    Ok(total)
}

/// Checks that `buf` is a sequence of complete extension fields (RFC 4581 §2: "every
/// item in the Extension Fields area MUST be a TLV"). `base` is the offset of `buf` in
/// the enclosing structure, used only to make error messages point at the right octet.
fn check_extensions(buf: &[u8], base: usize) -> Result<()> {
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < EXT_HEADER_LEN {
            return Err(Error::Truncated {
                what: "CGA extension field header",
                needed: base + at + EXT_HEADER_LEN,
                available: base + buf.len(),
            });
        }
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if rest.len() < EXT_HEADER_LEN + len {
            return Err(Error::Truncated {
                what: "CGA extension field data",
                needed: base + at + EXT_HEADER_LEN + len,
                available: base + buf.len(),
            });
        }
        at += EXT_HEADER_LEN + len;
    }
    Ok(())
}

/// A read/write view of a CGA Parameters data structure filling its whole buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without any check. Accessors may panic on a malformed buffer; use
    /// [`Packet::new_checked`] on untrusted input.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Packet::check`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// The one validity check: the 25 fixed octets, a complete DER SEQUENCE for the key,
    /// and nothing after it but complete extension fields.
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("CGA Parameters", b, FIXED_LEN + 2)?;
        let key = der_element_len(&b[field::PUBLIC_KEY..]).map_err(|e| match e {
            // Report lengths relative to the whole structure.
            Error::Truncated {
                what,
                needed,
                available,
            } => Error::Truncated {
                what,
                needed: needed.saturating_add(FIXED_LEN),
                available: available + FIXED_LEN,
            },
            other => other,
        })?;
        let ext = FIXED_LEN + key;
        check_extensions(&b[ext..], ext)
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole structure, as hashed into Hash1 (RFC 3972 §4 step 5, §5 step 3).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The Modifier: 128 bits chosen by the owner (RFC 3972 §3).
    #[inline]
    pub fn modifier(&self) -> [u8; MODIFIER_LEN] {
        let mut m = [0u8; MODIFIER_LEN];
        m.copy_from_slice(&self.buffer.as_ref()[field::MODIFIER]);
        m
    }

    /// The Subnet Prefix: the upper 64 bits of the address (RFC 3972 §3).
    #[inline]
    pub fn subnet_prefix(&self) -> Prefix {
        let mut p = [0u8; PREFIX_LEN];
        p.copy_from_slice(&self.buffer.as_ref()[field::SUBNET_PREFIX]);
        p
    }

    /// The Collision Count (RFC 3972 §3; valid values 0, 1, 2 are checked by verification).
    #[inline]
    pub fn collision_count(&self) -> u8 {
        self.buffer.as_ref()[field::COLLISION_COUNT]
    }

    /// Octets of the Public Key field.
    #[inline]
    pub fn public_key_len(&self) -> usize {
        // Checked by `check`; an unchecked malformed buffer yields 0 rather than a panic.
        der_element_len(&self.buffer.as_ref()[field::PUBLIC_KEY..]).unwrap_or(0)
    }

    /// The Public Key field: a DER `SubjectPublicKeyInfo`, or for a pure HBA a 384-bit
    /// random value in that format (RFC 5535 §6 step 2).
    #[inline]
    pub fn public_key(&self) -> &[u8] {
        let k = self.public_key_len();
        &self.buffer.as_ref()[field::PUBLIC_KEY..field::PUBLIC_KEY + k]
    }

    /// The Extension Fields area: everything after the public key.
    #[inline]
    pub fn extensions_bytes(&self) -> &[u8] {
        let k = self.public_key_len();
        &self.buffer.as_ref()[field::PUBLIC_KEY + k..]
    }

    /// Everything after the collision count (public key and extensions): the part of
    /// the Hash2 input that follows the modifier and nine zero octets (RFC 3972 §4 step 2).
    #[inline]
    pub fn key_and_extensions(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PUBLIC_KEY..]
    }

    /// Iterates over the extension fields in order.
    #[inline]
    pub fn extensions(&self) -> Extensions<'_> {
        Extensions {
            rest: self.extensions_bytes(),
        }
    }

    /// The first Multi-Prefix extension, if any (RFC 5535 §5).
    pub fn multi_prefix(&self) -> Option<Result<MultiPrefix<&[u8]>>> {
        self.extensions()
            .find(|e| e.ext_type() == EXT_MULTI_PREFIX)
            .map(|e| MultiPrefix::new_checked(e.data()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Modifier.
    #[inline]
    pub fn set_modifier(&mut self, value: [u8; MODIFIER_LEN]) {
        self.buffer.as_mut()[field::MODIFIER].copy_from_slice(&value);
    }

    /// Sets the Subnet Prefix.
    #[inline]
    pub fn set_subnet_prefix(&mut self, value: Prefix) {
        self.buffer.as_mut()[field::SUBNET_PREFIX].copy_from_slice(&value);
    }

    /// Sets the Collision Count.
    #[inline]
    pub fn set_collision_count(&mut self, value: u8) {
        self.buffer.as_mut()[field::COLLISION_COUNT] = value;
    }

    /// The octets after the collision count (public key and extensions), writable.
    #[inline]
    pub fn key_and_extensions_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PUBLIC_KEY..]
    }
}

/// One extension field (RFC 4581 §2) inside a checked buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    ext_type: u16,
    data: &'a [u8],
}

impl<'a> Extension<'a> {
    /// The Extension Type.
    #[inline]
    pub fn ext_type(&self) -> u16 {
        self.ext_type
    }

    /// The Extension Data (its length is the Extension Data Length field).
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// Iterator over the extension fields of a checked [`Packet`] (see [`Extensions::new_checked`]
/// for a bare Extension Fields area).
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    rest: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// Checks that `buf` consists of complete extension fields and iterates over them.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        check_extensions(buf, 0)?;
        Ok(Self { rest: buf })
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Extension<'a>;

    fn next(&mut self) -> Option<Extension<'a>> {
        let r = self.rest;
        if r.len() < EXT_HEADER_LEN {
            // Only reachable at the end: the area was checked to hold whole TLVs.
            self.rest = &[];
            return None;
        }
        let ext_type = u16::from_be_bytes([r[field::EXT_TYPE.start], r[field::EXT_TYPE.end - 1]]);
        let len = usize::from(u16::from_be_bytes([
            r[field::EXT_LEN.start],
            r[field::EXT_LEN.end - 1],
        ]));
        let end = (EXT_HEADER_LEN + len).min(r.len());
        self.rest = &r[end..];
        Some(Extension {
            ext_type,
            data: &r[EXT_HEADER_LEN..end],
        })
    }
}

/// A view of the Extension Data of a Multi-Prefix extension (RFC 5535 §5):
///
/// ```text
/// |P|           Reserved (31)           |
/// |        Prefix[1] (64 bits)          |
/// |                ...                  |
/// |        Prefix[n] (64 bits)          |
/// ```
///
/// P is the most significant bit of the first octet (not the least significant bit of
/// the fourth, which is where `LinShim6`'s little-endian bitfield put it; digest §7.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiPrefix<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MultiPrefix<T> {
    /// Wraps Extension Data after checking its length: 4 + 8·n octets.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        check_len("Multi-Prefix extension", b, field::MP_PREFIXES)?;
        if (b.len() - field::MP_PREFIXES) % PREFIX_LEN != 0 {
            return Err(Error::BadLength {
                what: "Multi-Prefix extension data length",
                value: b.len(),
            });
        }
        Ok(Self { buffer })
    }

    /// The P flag: set when the Public Key field holds a real public key (CGA-compatible
    /// HBA), clear for a random pseudo-key (pure HBA) (RFC 5535 §5).
    #[inline]
    pub fn public_key_flag(&self) -> bool {
        self.buffer.as_ref()[0] & 0x80 != 0
    }

    /// The 31 reserved bits, as found (sent as zero, ignored, but hashed).
    #[inline]
    pub fn reserved(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::MP_FLAGS];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff
    }

    /// Number of prefixes.
    #[inline]
    pub fn len(&self) -> usize {
        (self.buffer.as_ref().len() - field::MP_PREFIXES) / PREFIX_LEN
    }

    /// Whether the prefix list is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The prefixes, in order.
    pub fn prefixes(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.buffer.as_ref()[field::MP_PREFIXES..]
            .chunks_exact(PREFIX_LEN)
            .map(|c| {
                let mut p = [0u8; PREFIX_LEN];
                p.copy_from_slice(c);
                p
            })
    }

    /// Whether `prefix` is in the list (RFC 5535 §7.2 step 1).
    pub fn contains(&self, prefix: &Prefix) -> bool {
        self.buffer.as_ref()[field::MP_PREFIXES..]
            .chunks_exact(PREFIX_LEN)
            .any(|c| c == prefix)
    }
}

/// The parsed Multi-Prefix extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultiPrefixRepr {
    /// The P flag: a real public key is in the Public Key field (RFC 5535 §5).
    pub public_key: bool,
    /// The 31 reserved bits (zero when we send; kept as received because they are hashed).
    pub reserved: u32,
    /// The prefixes of the HBA set, in order.
    pub prefixes: Vec<Prefix>,
}

impl MultiPrefixRepr {
    /// Parses checked Extension Data.
    pub fn parse<T: AsRef<[u8]>>(mp: &MultiPrefix<T>) -> Self {
        Self {
            public_key: mp.public_key_flag(),
            reserved: mp.reserved(),
            prefixes: mp.prefixes().collect(),
        }
    }

    /// Octets of the Extension Data: 4 + 8·n.
    pub fn data_len(&self) -> usize {
        field::MP_PREFIXES + PREFIX_LEN * self.prefixes.len()
    }

    /// Writes the Extension Data into the first [`MultiPrefixRepr::data_len`] octets of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`MultiPrefixRepr::data_len`].
    pub fn emit_data(&self, buf: &mut [u8]) {
        let flags = (u32::from(self.public_key) << 31) | (self.reserved & 0x7fff_ffff);
        buf[field::MP_FLAGS].copy_from_slice(&flags.to_be_bytes());
        for (i, p) in self.prefixes.iter().enumerate() {
            let at = field::MP_PREFIXES + i * PREFIX_LEN;
            buf[at..at + PREFIX_LEN].copy_from_slice(p);
        }
    }
}

impl fmt::Display for MultiPrefixRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Multi-Prefix P={} [", u8::from(self.public_key))?;
        for (i, p) in self.prefixes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            fmt_prefix(p, f)?;
        }
        f.write_str("]")?;
        if self.reserved != 0 {
            write!(f, " reserved={:#x}", self.reserved)?;
        }
        Ok(())
    }
}

/// One parsed extension field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExtensionRepr {
    /// The Multi-Prefix extension (type 0x0012, RFC 5535 §5).
    MultiPrefix(MultiPrefixRepr),
    /// Any other type, kept verbatim: verifiers MUST ignore unrecognised extensions but
    /// they are still part of both hash inputs (RFC 4581 §2, RFC 3972 §5).
    Other {
        /// The Extension Type.
        ext_type: u16,
        /// The Extension Data.
        data: Vec<u8>,
    },
}

impl ExtensionRepr {
    /// Parses one extension field; only a Multi-Prefix extension can fail (bad length).
    pub fn parse(ext: &Extension<'_>) -> Result<Self> {
        Ok(match ext.ext_type() {
            EXT_MULTI_PREFIX => Self::MultiPrefix(MultiPrefixRepr::parse(
                &MultiPrefix::new_checked(ext.data())?,
            )),
            ext_type => Self::Other {
                ext_type,
                data: ext.data().to_vec(),
            },
        })
    }

    /// The Extension Type.
    pub fn ext_type(&self) -> u16 {
        match self {
            Self::MultiPrefix(_) => EXT_MULTI_PREFIX,
            Self::Other { ext_type, .. } => *ext_type,
        }
    }

    /// Octets of the Extension Data.
    pub fn data_len(&self) -> usize {
        match self {
            Self::MultiPrefix(m) => m.data_len(),
            Self::Other { data, .. } => data.len(),
        }
    }

    /// Octets of the whole field: header and data.
    pub fn buffer_len(&self) -> usize {
        EXT_HEADER_LEN + self.data_len()
    }

    /// Writes the field into the first [`ExtensionRepr::buffer_len`] octets of `buf`.
    ///
    /// # Panics
    /// If `buf` is too short, or the data exceeds 65535 octets (the Extension Data Length
    /// field is 16 bits, RFC 4581 §2).
    pub fn emit(&self, buf: &mut [u8]) {
        let len = u16::try_from(self.data_len())
            .expect("CGA extension data exceeds 65535 octets (RFC 4581 §2)");
        buf[field::EXT_TYPE].copy_from_slice(&self.ext_type().to_be_bytes());
        buf[field::EXT_LEN].copy_from_slice(&len.to_be_bytes());
        let data = &mut buf[EXT_HEADER_LEN..EXT_HEADER_LEN + usize::from(len)];
        match self {
            Self::MultiPrefix(m) => m.emit_data(data),
            Self::Other { data: d, .. } => data.copy_from_slice(d),
        }
    }
}

impl fmt::Display for ExtensionRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MultiPrefix(m) => m.fmt(f),
            Self::Other { ext_type, data } => {
                write!(f, "extension {ext_type:#06x} ({} octets)", data.len())
            }
        }
    }
}

/// The parsed CGA Parameters data structure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The Modifier (RFC 3972 §3).
    pub modifier: [u8; MODIFIER_LEN],
    /// The Subnet Prefix.
    pub subnet_prefix: Prefix,
    /// The Collision Count.
    pub collision_count: u8,
    /// The Public Key field: a complete DER element (header included).
    pub public_key: Vec<u8>,
    /// The extension fields, in order.
    pub extensions: Vec<ExtensionRepr>,
}

impl Repr {
    /// Parses a view (re-running [`Packet::check`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check()?;
        Ok(Self {
            modifier: packet.modifier(),
            subnet_prefix: packet.subnet_prefix(),
            collision_count: packet.collision_count(),
            public_key: packet.public_key().to_vec(),
            extensions: packet
                .extensions()
                .map(|e| ExtensionRepr::parse(&e))
                .collect::<Result<_>>()?,
        })
    }

    /// Parses a byte buffer holding exactly one structure.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::parse(&Packet::new_checked(bytes)?)
    }

    /// Octets [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN
            + self.public_key.len()
            + self
                .extensions
                .iter()
                .map(ExtensionRepr::buffer_len)
                .sum::<usize>()
    }

    /// Writes the structure into the first [`Repr::buffer_len`] octets of the view's buffer.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`], or an extension's data exceeds
    /// 65535 octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_modifier(self.modifier);
        packet.set_subnet_prefix(self.subnet_prefix);
        packet.set_collision_count(self.collision_count);
        let rest = packet.key_and_extensions_mut();
        let mut at = self.public_key.len();
        rest[..at].copy_from_slice(&self.public_key);
        for e in &self.extensions {
            e.emit(&mut rest[at..]);
            at += e.buffer_len();
        }
    }

    /// The structure as a new buffer of exactly [`Repr::buffer_len`] octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut b[..]));
        b
    }

    /// The Multi-Prefix extension, if present.
    pub fn multi_prefix(&self) -> Option<&MultiPrefixRepr> {
        self.extensions.iter().find_map(|e| match e {
            ExtensionRepr::MultiPrefix(m) => Some(m),
            ExtensionRepr::Other { .. } => None,
        })
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CGA Parameters modifier=")?;
        for b in self.modifier {
            write!(f, "{b:02x}")?;
        }
        f.write_str(" prefix=")?;
        fmt_prefix(&self.subnet_prefix, f)?;
        write!(
            f,
            " collisions={} key={} octets",
            self.collision_count,
            self.public_key.len()
        )?;
        for e in &self.extensions {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    /// RFC 3972 Appendix A (digest §6.1): modifier, `fe80::/64`, collision count 0 and the
    /// 94-octet RSA-512 `SubjectPublicKeyInfo`; 119 octets.
    static RFC3972_A: [u8; 119] = hex!(
        "89a8a8b2e858d8b8f2633f44d2d4ce9b" "fe80000000000000" "00"
        "305c300d06092a864886f70d0101010500034b003048024100c2c2f137305454f1"
        "0bd9cea36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c"
        "3c2382508773c7867f9b3b9e63a09c7bc48f7a54ebefaf0203010001"
    );

    /// Digest §6.2 (`LinShim6` `hba_test.c`): an HBA-only set's parameters for `fe80::/64`:
    /// modifier, prefix, count, the 68-octet pseudo-key, the 32-octet Multi-Prefix (P = 0).
    static HBA: [u8; 125] = hex!(
        "89a8a8b2e858d8b8f2633f44d2d7c362" "fe80000000000000" "00"
        "3042300d06092a864886f70d0101010500033100"
        "a36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c3c2382508773c7867f9b3b9e63a09c7bc48f"
        "0012001c" "00000000" "fe80000000000000" "200106881f990001" "2001066073010001"
    );

    const HBA_KEY_LEN: usize = 68;

    fn rfc_repr() -> Repr {
        Repr {
            modifier: hex!("89a8a8b2e858d8b8f2633f44d2d4ce9b"),
            subnet_prefix: hex!("fe80000000000000"),
            collision_count: 0,
            public_key: RFC3972_A[25..].to_vec(),
            extensions: vec![],
        }
    }

    fn hba_repr() -> Repr {
        Repr {
            modifier: hex!("89a8a8b2e858d8b8f2633f44d2d7c362"),
            subnet_prefix: hex!("fe80000000000000"),
            collision_count: 0,
            public_key: HBA[25..25 + HBA_KEY_LEN].to_vec(),
            extensions: vec![ExtensionRepr::MultiPrefix(MultiPrefixRepr {
                public_key: false,
                reserved: 0,
                prefixes: vec![
                    hex!("fe80000000000000"),
                    hex!("200106881f990001"),
                    hex!("2001066073010001"),
                ],
            })],
        }
    }

    #[test]
    fn deconstruct_rfc3972() {
        let p = Packet::new_checked(&RFC3972_A[..]).unwrap();
        assert_eq!(p.modifier(), hex!("89a8a8b2e858d8b8f2633f44d2d4ce9b"));
        assert_eq!(p.subnet_prefix(), hex!("fe80000000000000"));
        assert_eq!(p.collision_count(), 0);
        assert_eq!(p.public_key_len(), 94);
        assert_eq!(p.public_key(), &RFC3972_A[25..]);
        assert!(p.extensions_bytes().is_empty());
        assert_eq!(p.extensions().count(), 0);
        assert!(p.multi_prefix().is_none());
        assert_eq!(p.key_and_extensions(), &RFC3972_A[25..]);
    }

    #[test]
    fn deconstruct_hba() {
        let p = Packet::new_checked(&HBA[..]).unwrap();
        assert_eq!(p.public_key_len(), HBA_KEY_LEN);
        let exts: Vec<_> = p.extensions().collect();
        assert_eq!(exts.len(), 1);
        assert_eq!(exts[0].ext_type(), EXT_MULTI_PREFIX);
        assert_eq!(exts[0].data().len(), 28);
        let mp = p.multi_prefix().unwrap().unwrap();
        assert!(!mp.public_key_flag());
        assert_eq!(mp.reserved(), 0);
        assert_eq!(mp.len(), 3);
        assert!(mp.contains(&hex!("200106881f990001")));
        assert!(!mp.contains(&hex!("200106881f990002")));
        assert_eq!(mp.prefixes().nth(2), Some(hex!("2001066073010001")));
    }

    #[test]
    fn construct() {
        for (bytes, key_and_ext) in [(&RFC3972_A[..], &RFC3972_A[25..]), (&HBA[..], &HBA[25..])] {
            let mut b = vec![0xa5u8; bytes.len()];
            let mut p = Packet::new_unchecked(&mut b[..]);
            let mut m = [0u8; 16];
            m.copy_from_slice(&bytes[..16]);
            p.set_modifier(m);
            p.set_subnet_prefix(hex!("fe80000000000000"));
            p.set_collision_count(0);
            p.key_and_extensions_mut().copy_from_slice(key_and_ext);
            assert_eq!(&b[..], bytes);
        }
    }

    #[test]
    fn parse() {
        assert_eq!(Repr::from_bytes(&RFC3972_A).unwrap(), rfc_repr());
        assert_eq!(Repr::from_bytes(&HBA).unwrap(), hba_repr());
    }

    #[test]
    fn emit_over_garbage() {
        for (repr, bytes) in [(rfc_repr(), &RFC3972_A[..]), (hba_repr(), &HBA[..])] {
            assert_eq!(repr.buffer_len(), bytes.len());
            let mut b = vec![0xa5u8; bytes.len()];
            repr.emit(&mut Packet::new_unchecked(&mut b[..]));
            assert_eq!(&b[..], bytes);
            assert_eq!(repr.to_bytes(), bytes);
        }
    }

    #[test]
    fn truncated_at_every_length() {
        for n in 0..RFC3972_A.len() {
            assert!(
                matches!(
                    Packet::new_checked(&RFC3972_A[..n]),
                    Err(Error::Truncated { .. })
                ),
                "length {n}"
            );
        }
        // The HBA structure is valid cut right after the key: a PDS without extensions.
        for n in 0..HBA.len() {
            let r = Packet::new_checked(&HBA[..n]);
            if n == FIXED_LEN + HBA_KEY_LEN {
                assert_eq!(r.unwrap().extensions().count(), 0);
            } else {
                assert!(matches!(r, Err(Error::Truncated { .. })), "length {n}");
            }
        }
    }

    #[test]
    fn truncated_reports_offsets_in_the_structure() {
        assert_eq!(
            Packet::new_checked(&RFC3972_A[..100]).unwrap_err(),
            Error::Truncated {
                what: "CGA public key",
                needed: 119,
                available: 100
            }
        );
        assert_eq!(
            Packet::new_checked(&HBA[..120]).unwrap_err(),
            Error::Truncated {
                what: "CGA extension field data",
                needed: 125,
                available: 120
            }
        );
        assert_eq!(
            Packet::new_checked(&HBA[..95]).unwrap_err(),
            Error::Truncated {
                what: "CGA extension field header",
                needed: 97,
                available: 95
            }
        );
    }

    #[test]
    fn key_length_field_too_long_is_truncated() {
        let mut b = RFC3972_A;
        b[26] = 0x5d; // one more than present
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Truncated {
                what: "CGA public key",
                ..
            })
        ));
        // A shorter key leaves bytes that do not form an extension header.
        b[26] = 0x5b;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Truncated {
                what: "CGA extension field header",
                ..
            })
        ));
    }

    #[test]
    fn extension_length_field_too_long_is_truncated() {
        let mut b = HBA;
        b[25 + HBA_KEY_LEN + 3] = 0x1d;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Truncated {
                what: "CGA extension field data",
                ..
            })
        ));
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_element_len(&hex!("3000")), Ok(2));
        assert_eq!(der_element_len(&hex!("3001ff")), Ok(3));
        let mut long = vec![0x30, 0x81, 0x80];
        long.resize(3 + 0x80, 0);
        assert_eq!(der_element_len(&long), Ok(0x83));
        let mut long2 = vec![0x30, 0x82, 0x01, 0x22];
        long2.resize(4 + 0x122, 0);
        assert_eq!(der_element_len(&long2), Ok(0x126));
        // Trailing bytes are not the element's.
        long2.push(7);
        assert_eq!(der_element_len(&long2), Ok(0x126));

        assert!(matches!(der_element_len(&[]), Err(Error::Truncated { .. })));
        assert!(matches!(
            der_element_len(&[0x30]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            der_element_len(&hex!("0400")),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            der_element_len(&hex!("3080")),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            der_element_len(&hex!("3081")),
            Err(Error::Truncated { needed: 3, .. })
        ));
        // Non-minimal: long form for a short length, or a leading zero octet.
        assert!(matches!(
            der_element_len(&hex!("30817f")),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            der_element_len(&hex!("3082008000")),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            der_element_len(&hex!("3085ffffffffff")),
            Err(Error::BadLength { value: 5, .. })
        ));
        // A huge length never overflows or panics.
        assert!(matches!(
            der_element_len(&hex!("3084ffffffff00")),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn multi_prefix_bad_length() {
        assert!(matches!(
            MultiPrefix::new_checked(&[0u8; 3][..]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            MultiPrefix::new_checked(&[0u8; 11][..]),
            Err(Error::BadLength { value: 11, .. })
        ));
        assert_eq!(MultiPrefix::new_checked(&[0u8; 4][..]).unwrap().len(), 0);
        // Inside a PDS: framing is fine, the typed parse reports the bad length.
        let mut b = HBA[..HBA.len() - 1].to_vec();
        b[25 + HBA_KEY_LEN + 3] = 0x1b;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.multi_prefix().unwrap().is_err());
        assert!(matches!(
            Repr::parse(&p),
            Err(Error::BadLength { value: 27, .. })
        ));
    }

    #[test]
    fn p_flag_is_the_msb_of_the_first_octet() {
        let mut data = hex!("80000000 2001066073010001");
        let mp = MultiPrefix::new_checked(&data[..]).unwrap();
        assert!(mp.public_key_flag());
        assert_eq!(mp.reserved(), 0);
        let repr = MultiPrefixRepr::parse(&mp);
        let mut out = [0xa5u8; 12];
        repr.emit_data(&mut out);
        assert_eq!(out, data);
        // LinShim6's little-endian bitfield puts "P" in the last bit of the 4th octet
        // (digest §7.18): that is a reserved bit, not P, and it is kept for hashing.
        data[0] = 0;
        data[3] = 1;
        let mp = MultiPrefix::new_checked(&data[..]).unwrap();
        assert!(!mp.public_key_flag());
        assert_eq!(mp.reserved(), 1);
        let mut out = [0xa5u8; 12];
        MultiPrefixRepr::parse(&mp).emit_data(&mut out);
        assert_eq!(out, data);
    }

    #[test]
    fn unknown_extensions_kept_verbatim() {
        let mut b = RFC3972_A.to_vec();
        b.extend_from_slice(&hex!(
            "fffd 0003 abcdef  0012 000c 80000000 2001066073010001  ffff 0000"
        ));
        let r = Repr::from_bytes(&b).unwrap();
        assert_eq!(r.extensions.len(), 3);
        assert_eq!(
            r.extensions[0],
            ExtensionRepr::Other {
                ext_type: 0xfffd,
                data: vec![0xab, 0xcd, 0xef]
            }
        );
        assert!(r.multi_prefix().unwrap().public_key);
        assert_eq!(
            r.extensions[2],
            ExtensionRepr::Other {
                ext_type: 0xffff,
                data: vec![]
            }
        );
        assert_eq!(r.to_bytes(), b);
    }

    #[test]
    fn display() {
        assert_eq!(
            rfc_repr().to_string(),
            "CGA Parameters modifier=89a8a8b2e858d8b8f2633f44d2d4ce9b prefix=fe80::/64 \
             collisions=0 key=94 octets"
        );
        assert_eq!(
            hba_repr().to_string(),
            "CGA Parameters modifier=89a8a8b2e858d8b8f2633f44d2d7c362 prefix=fe80::/64 \
             collisions=0 key=68 octets; Multi-Prefix P=0 [fe80::/64, 2001:688:1f99:1::/64, \
             2001:660:7301:1::/64]"
        );
    }

    /// A DER SEQUENCE of `len` content octets (short or long form).
    fn der_seq(content: &[u8]) -> Vec<u8> {
        let mut v = vec![DER_SEQUENCE];
        let n = content.len();
        match n {
            0..=0x7f => v.push(n as u8),
            0x80..=0xff => v.extend_from_slice(&[0x81, n as u8]),
            _ => v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        v.extend_from_slice(content);
        v
    }

    fn arb_ext() -> impl Strategy<Value = ExtensionRepr> {
        prop_oneof![
            (
                any::<bool>(),
                0u32..0x8000_0000,
                proptest::collection::vec(any::<[u8; 8]>(), 0..6)
            )
                .prop_map(|(public_key, reserved, prefixes)| {
                    ExtensionRepr::MultiPrefix(MultiPrefixRepr {
                        public_key,
                        reserved,
                        prefixes,
                    })
                }),
            (
                any::<u16>().prop_filter("not Multi-Prefix", |t| *t != EXT_MULTI_PREFIX),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(ext_type, data)| ExtensionRepr::Other { ext_type, data }),
        ]
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 8]>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..400),
            proptest::collection::vec(arb_ext(), 0..4),
        )
            .prop_map(
                |(modifier, subnet_prefix, collision_count, key, extensions)| Repr {
                    modifier,
                    subnet_prefix,
                    collision_count,
                    public_key: der_seq(&key),
                    extensions,
                },
            )
    }

    proptest! {
        #[test]
        fn roundtrip(r in arb_repr()) {
            let b = r.to_bytes();
            prop_assert_eq!(b.len(), r.buffer_len());
            let parsed = Repr::from_bytes(&b).unwrap();
            prop_assert_eq!(&parsed, &r);
            prop_assert_eq!(parsed.to_bytes(), b);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = p.public_key();
                let _ = p.extensions().count();
                if let Ok(r) = Repr::parse(&p) {
                    let _ = r.to_string();
                    // Whatever parses emits back to the same octets.
                    prop_assert_eq!(&r.to_bytes()[..], &b[..]);
                }
            }
            let _ = der_element_len(&b);
            if let Ok(e) = Extensions::new_checked(&b) {
                let _ = e.map(|x| x.data().len()).sum::<usize>();
            }
        }

        #[test]
        fn mutated_structures_never_panic(
            r in arb_repr(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let mut b = r.to_bytes();
            for (i, v) in flips {
                let n = b.len();
                b[i % n] = v;
            }
            let n = b.len();
            b.truncate(cut % (n + 1));
            if let Ok(p) = Packet::new_checked(&b[..]) {
                if let Ok(r) = Repr::parse(&p) {
                    prop_assert_eq!(&r.to_bytes()[..], &b[..]);
                }
            }
        }
    }
}
