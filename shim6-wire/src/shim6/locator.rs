//! The bodies of the Locator List (RFC 5533 §5.15.2) and Locator Preferences
//! (RFC 5533 §5.15.3) options.
//!
//! Both views here cover the option *contents* only, the octets after the 4-octet
//! Type | C | Length header; [`option`](super::option) handles the TLV around them.
//!
//! ```text
//! Locator List contents:
//! | Generation (32) | N (8) | N × Verification Method (8) | pad to 8 | N × Locator (128) |
//! Locator Preferences contents:
//! | Generation (32) | Element Len (8) | N × Element (Element Len octets each) |
//! ```

use core::fmt;
use std::net::Ipv6Addr;

use crate::error::{Error, Result, check_len};

/// Octets of one locator.
pub const LOCATOR_LEN: usize = 16;

/// Preference flag "BROKEN": the locator is known not to work (RFC 5533 §5.15.3).
pub const FLAG_BROKEN: u8 = 0x01;

/// Preference flag "TRANSIENT": the locator is less stable, e.g. a care-of address
/// (RFC 5533 §5.15.3; Wireshark calls it "TEMPORARY").
pub const FLAG_TRANSIENT: u8 = 0x02;

/// Field offsets within the contents (RFC 5533 §5.15.2 and §5.15.3): the two options
/// share the generation at 0–3 and a count or length octet at 4.
mod field {
    use core::ops::Range;
    pub const GENERATION: Range<usize> = 0..4;
    pub const NUM_LOCATORS: usize = 4;
    pub const VERIFICATION_METHODS: usize = 5;
    pub const ELEMENT_LEN: usize = 4;
    pub const ELEMENTS: usize = 5;
}

/// How the receiver verifies that a locator belongs to the sender (RFC 5533 §5.15.2).
///
/// The numbers follow §5.15.2 Table 4 (1 = HBA, 2 = CGA), as `LinShim6` and Wireshark
/// do; the IANA section of the same RFC swaps them (protocol digest §7.2). Any
/// configurable reinterpretation belongs to shim6-proto, not to the wire layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerificationMethod {
    /// 1: Hash-Based Address (RFC 5535).
    Hba,
    /// 2: Cryptographically Generated Address (RFC 3972).
    Cga,
    /// Any other value: 0 and 255 reserved, 3–200 Standards Action, 201–254
    /// experimental. Kept so that the receiver can answer with Error code 2.
    Other(u8),
}

impl From<u8> for VerificationMethod {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Hba,
            2 => Self::Cga,
            other => Self::Other(other),
        }
    }
}

impl From<VerificationMethod> for u8 {
    fn from(m: VerificationMethod) -> Self {
        match m {
            VerificationMethod::Hba => 1,
            VerificationMethod::Cga => 2,
            VerificationMethod::Other(v) => v,
        }
    }
}

impl fmt::Display for VerificationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hba => f.write_str("HBA"),
            Self::Cga => f.write_str("CGA"),
            Self::Other(v) => write!(f, "method {v}"),
        }
    }
}

/// Internal padding after the verification methods, counted in the option's Length, so
/// that the locators start 8-aligned relative to the option start: the option header (4)
/// + generation (4) + N (1) + N methods is padded to a multiple of 8, i.e.
///   `7 − (N mod 8)` octets (RFC 5533 §5.15.2).
#[inline]
pub const fn locator_list_padding(n: usize) -> usize {
    7 - n % 8
}

/// Offset of the first locator within the contents of a list of `n` locators.
#[inline]
pub const fn locators_offset(n: usize) -> usize {
    field::VERIFICATION_METHODS + n + locator_list_padding(n)
}

/// The option Length of a Locator List with `n` locators: `5 + N + pad + 16 · N`.
#[inline]
pub const fn locator_list_contents_len(n: usize) -> usize {
    locators_offset(n) + n * LOCATOR_LEN
}

/// A view of Locator List option contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocatorListView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> LocatorListView<T> {
    /// Wraps the contents without any check.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps the contents after [`LocatorListView::check`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let v = Self::new_unchecked(buffer);
        v.check()?;
        Ok(v)
    }

    /// The one check: the contents hold the generation and N, and their length (the
    /// option's Length) is exactly what N locators need, internal padding included.
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("Locator List option", b, field::VERIFICATION_METHODS)?;
        if b.len() != locator_list_contents_len(self.num_locators()) {
            return Err(Error::BadLength {
                what: "Locator List option Length (does not match Num Locators)",
                value: b.len(),
            });
        }
        Ok(())
    }

    /// Locator List Generation, compared for equality only (protocol digest §7.3).
    #[inline]
    pub fn generation(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::GENERATION];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Num Locators, N.
    #[inline]
    pub fn num_locators(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::NUM_LOCATORS])
    }

    /// The verification method octet of locator `i`.
    ///
    /// # Panics
    /// If `i` ≥ N.
    #[inline]
    pub fn verification_method(&self, i: usize) -> u8 {
        assert!(i < self.num_locators(), "locator index out of range");
        self.buffer.as_ref()[field::VERIFICATION_METHODS + i]
    }

    /// Locator `i`.
    ///
    /// # Panics
    /// If `i` ≥ N.
    pub fn locator(&self, i: usize) -> Ipv6Addr {
        let n = self.num_locators();
        assert!(i < n, "locator index out of range");
        let at = locators_offset(n) + i * LOCATOR_LEN;
        let mut a = [0u8; LOCATOR_LEN];
        a.copy_from_slice(&self.buffer.as_ref()[at..at + LOCATOR_LEN]);
        Ipv6Addr::from(a)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LocatorListView<T> {
    /// Sets the generation.
    #[inline]
    pub fn set_generation(&mut self, value: u32) {
        self.buffer.as_mut()[field::GENERATION].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets N.
    #[inline]
    pub fn set_num_locators(&mut self, n: u8) {
        self.buffer.as_mut()[field::NUM_LOCATORS] = n;
    }

    /// Sets the verification method of locator `i` (N must already be set).
    ///
    /// # Panics
    /// If `i` ≥ N or the buffer is too short.
    pub fn set_verification_method(&mut self, i: usize, method: u8) {
        assert!(i < self.num_locators(), "locator index out of range");
        self.buffer.as_mut()[field::VERIFICATION_METHODS + i] = method;
    }

    /// Zeroes the internal padding (N must already be set).
    ///
    /// # Panics
    /// If the buffer is too short.
    pub fn clear_padding(&mut self) {
        let n = self.num_locators();
        let start = field::VERIFICATION_METHODS + n;
        self.buffer.as_mut()[start..start + locator_list_padding(n)].fill(0);
    }

    /// Sets locator `i` (N must already be set).
    ///
    /// # Panics
    /// If `i` ≥ N or the buffer is too short.
    pub fn set_locator(&mut self, i: usize, addr: Ipv6Addr) {
        let n = self.num_locators();
        assert!(i < n, "locator index out of range");
        let at = locators_offset(n) + i * LOCATOR_LEN;
        self.buffer.as_mut()[at..at + LOCATOR_LEN].copy_from_slice(&addr.octets());
    }
}

/// One entry of a Locator List.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Locator {
    /// The address.
    pub address: Ipv6Addr,
    /// How the receiver is to verify it.
    pub method: VerificationMethod,
}

/// A parsed Locator List option (RFC 5533 §5.15.2): *all* the sender's locators, in an
/// order the Locator Preferences refer to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocatorList {
    /// Locator List Generation.
    pub generation: u32,
    /// The locators, at most 255.
    pub locators: Vec<Locator>,
}

impl LocatorList {
    /// Parses checked contents.
    pub fn parse<T: AsRef<[u8]>>(view: &LocatorListView<T>) -> Result<Self> {
        view.check()?;
        let locators = (0..view.num_locators())
            .map(|i| Locator {
                address: view.locator(i),
                method: VerificationMethod::from(view.verification_method(i)),
            })
            .collect();
        Ok(Self {
            generation: view.generation(),
            locators,
        })
    }

    /// Whether [`LocatorList::emit`] can encode this list: N fits in one octet.
    pub fn check(&self) -> Result<()> {
        if self.locators.len() > usize::from(u8::MAX) {
            return Err(Error::BadLength {
                what: "Locator List Num Locators (more than 255)",
                value: self.locators.len(),
            });
        }
        Ok(())
    }

    /// Octets of the contents, the option's Length.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        locator_list_contents_len(self.locators.len())
    }

    /// Writes the contents into `view`.
    ///
    /// # Panics
    /// If the buffer is shorter than [`LocatorList::buffer_len`] or [`LocatorList::check`]
    /// fails.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut LocatorListView<T>) {
        let n = u8::try_from(self.locators.len()).expect("more than 255 locators");
        view.set_generation(self.generation);
        view.set_num_locators(n);
        for (i, l) in self.locators.iter().enumerate() {
            view.set_verification_method(i, u8::from(l.method));
            view.set_locator(i, l.address);
        }
        view.clear_padding();
    }
}

impl fmt::Display for LocatorList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locator List gen={:#x} [", self.generation)?;
        for (i, l) in self.locators.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", l.address, l.method)?;
        }
        f.write_str("]")
    }
}

/// A view of Locator Preferences option contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocatorPrefsView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> LocatorPrefsView<T> {
    /// Wraps the contents without any check.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps the contents after [`LocatorPrefsView::check`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let v = Self::new_unchecked(buffer);
        v.check()?;
        Ok(v)
    }

    /// The one check: generation and Element Len present, Element Len ≥ 1, and the
    /// rest is a whole number of elements (RFC 5533 §5.15.3).
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        check_len("Locator Preferences option", b, field::ELEMENTS)?;
        let e = self.element_len();
        if e == 0 {
            return Err(Error::BadLength {
                what: "Locator Preferences Element Len",
                value: 0,
            });
        }
        if !(b.len() - field::ELEMENTS).is_multiple_of(e) {
            return Err(Error::BadLength {
                what: "Locator Preferences option Length (not a whole number of elements)",
                value: b.len(),
            });
        }
        Ok(())
    }

    /// Locator List Generation of the list the elements refer to.
    #[inline]
    pub fn generation(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::GENERATION];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Element Len: 1 (flags), 2 (+ priority), 3 (+ weight), or more.
    #[inline]
    pub fn element_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::ELEMENT_LEN])
    }

    /// The number of elements.
    #[inline]
    pub fn num_elements(&self) -> usize {
        match self.element_len() {
            0 => 0,
            e => self.buffer.as_ref().len().saturating_sub(field::ELEMENTS) / e,
        }
    }

    /// Element `i`, [`LocatorPrefsView::element_len`] octets.
    ///
    /// # Panics
    /// If `i` ≥ [`LocatorPrefsView::num_elements`].
    pub fn element(&self, i: usize) -> &[u8] {
        assert!(i < self.num_elements(), "element index out of range");
        let e = self.element_len();
        let at = field::ELEMENTS + i * e;
        &self.buffer.as_ref()[at..at + e]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LocatorPrefsView<T> {
    /// Sets the generation.
    #[inline]
    pub fn set_generation(&mut self, value: u32) {
        self.buffer.as_mut()[field::GENERATION].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets Element Len.
    #[inline]
    pub fn set_element_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::ELEMENT_LEN] = value;
    }

    /// Element `i`, mutable (Element Len must already be set).
    ///
    /// # Panics
    /// If the element does not fit in the buffer.
    pub fn element_mut(&mut self, i: usize) -> &mut [u8] {
        let e = self.element_len();
        let at = field::ELEMENTS + i * e;
        &mut self.buffer.as_mut()[at..at + e]
    }
}

/// One element of a Locator Preferences option (RFC 5533 §5.15.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LocatorPreference {
    /// Flags: [`FLAG_BROKEN`], [`FLAG_TRANSIENT`]; other bits kept as received.
    pub flags: u8,
    /// Priority (DNS SRV semantics, lower is preferred); 0 when Element Len < 2.
    pub priority: u8,
    /// Weight (DNS SRV semantics); 0 when Element Len < 3.
    pub weight: u8,
    /// Octets past the third, when Element Len > 3: a future format that keeps the first
    /// three octets, carried opaquely.
    pub extra: Vec<u8>,
}

impl LocatorPreference {
    /// A flags / priority / weight element.
    pub const fn new(flags: u8, priority: u8, weight: u8) -> Self {
        Self {
            flags,
            priority,
            weight,
            extra: Vec::new(),
        }
    }

    /// Whether the BROKEN flag is set.
    pub const fn is_broken(&self) -> bool {
        self.flags & FLAG_BROKEN != 0
    }

    /// Whether the TRANSIENT flag is set.
    pub const fn is_transient(&self) -> bool {
        self.flags & FLAG_TRANSIENT != 0
    }
}

/// A parsed Locator Preferences option (RFC 5533 §5.15.3). Element `i` applies to
/// locator `i` of the Locator List with the same generation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocatorPreferences {
    /// Locator List Generation of the list the elements refer to.
    pub generation: u32,
    /// Element Len, at least 1.
    pub element_len: u8,
    /// The elements. Each must carry exactly what `element_len` allows: no priority
    /// below 2, no weight below 3, and `element_len − 3` extra octets above 3.
    pub preferences: Vec<LocatorPreference>,
}

impl LocatorPreferences {
    /// Parses checked contents.
    pub fn parse<T: AsRef<[u8]>>(view: &LocatorPrefsView<T>) -> Result<Self> {
        view.check()?;
        let preferences = (0..view.num_elements())
            .map(|i| {
                let e = view.element(i);
                LocatorPreference {
                    flags: e[0],
                    priority: e.get(1).copied().unwrap_or(0),
                    weight: e.get(2).copied().unwrap_or(0),
                    extra: e.get(3..).map(<[u8]>::to_vec).unwrap_or_default(),
                }
            })
            .collect();
        Ok(Self {
            generation: view.generation(),
            // `check` bounds the element length by the octet it came from.
            element_len: view.buffer.as_ref()[field::ELEMENT_LEN],
            preferences,
        })
    }

    /// Whether [`LocatorPreferences::emit`] can encode this: Element Len ≥ 1 and every
    /// element fits it exactly.
    pub fn check(&self) -> Result<()> {
        if self.element_len == 0 {
            return Err(Error::BadLength {
                what: "Locator Preferences Element Len",
                value: 0,
            });
        }
        let e = usize::from(self.element_len);
        for p in &self.preferences {
            if (e < 2 && p.priority != 0)
                || (e < 3 && p.weight != 0)
                || p.extra.len() != e.saturating_sub(3)
            {
                return Err(Error::Malformed(
                    "Locator Preferences element does not match its Element Len",
                ));
            }
        }
        Ok(())
    }

    /// Octets of the contents, the option's Length: `5 + N · Element Len`.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        field::ELEMENTS + self.preferences.len() * usize::from(self.element_len)
    }

    /// Writes the contents into `view`.
    ///
    /// # Panics
    /// If the buffer is shorter than [`LocatorPreferences::buffer_len`] or
    /// [`LocatorPreferences::check`] fails.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut LocatorPrefsView<T>) {
        view.set_generation(self.generation);
        view.set_element_len(self.element_len);
        for (i, p) in self.preferences.iter().enumerate() {
            let e = view.element_mut(i);
            e[0] = p.flags;
            if let Some(b) = e.get_mut(1) {
                *b = p.priority;
            }
            if let Some(b) = e.get_mut(2) {
                *b = p.weight;
            }
            if let Some(rest) = e.get_mut(3..) {
                rest.copy_from_slice(&p.extra);
            }
        }
    }
}

impl fmt::Display for LocatorPreferences {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Locator Preferences gen={:#x} elem_len={} [",
            self.generation, self.element_len
        )?;
        for (i, p) in self.preferences.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match (p.is_broken(), p.is_transient()) {
                (true, true) => f.write_str("BROKEN|TRANSIENT")?,
                (true, false) => f.write_str("BROKEN")?,
                (false, true) => f.write_str("TRANSIENT")?,
                (false, false) => f.write_str("ok")?,
            }
            let other = p.flags & !(FLAG_BROKEN | FLAG_TRANSIENT);
            if other != 0 {
                write!(f, "+{other:#04x}")?;
            }
            if self.element_len >= 2 {
                write!(f, " prio={}", p.priority)?;
            }
            if self.element_len >= 3 {
                write!(f, " weight={}", p.weight)?;
            }
            if !p.extra.is_empty() {
                write!(f, " +{} octets", p.extra.len())?;
            }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    // Protocol digest §1.17: generation 7, two HBA locators 2001:db8:1::1 and
    // 2001:db8:2::1. Contents only (the option header is tested in `option`).
    static LIST: [u8; 44] = hex!(
        "00000007 02 01 01 00 00 00 00 00"
        "20010db8 00010000 00000000 00000001"
        "20010db8 00020000 00000000 00000001"
    );

    fn list() -> LocatorList {
        LocatorList {
            generation: 7,
            locators: vec![
                Locator {
                    address: "2001:db8:1::1".parse().unwrap(),
                    method: VerificationMethod::Hba,
                },
                Locator {
                    address: "2001:db8:2::1".parse().unwrap(),
                    method: VerificationMethod::Hba,
                },
            ],
        }
    }

    #[test]
    fn list_deconstruct() {
        let v = LocatorListView::new_checked(&LIST[..]).unwrap();
        assert_eq!(v.generation(), 7);
        assert_eq!(v.num_locators(), 2);
        assert_eq!(v.verification_method(0), 1);
        assert_eq!(v.verification_method(1), 1);
        assert_eq!(v.locator(0), "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v.locator(1), "2001:db8:2::1".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn list_construct() {
        let mut b = [0xa5u8; 44];
        let mut v = LocatorListView::new_unchecked(&mut b[..]);
        v.set_generation(7);
        v.set_num_locators(2);
        v.set_verification_method(0, 1);
        v.set_verification_method(1, 1);
        v.clear_padding();
        v.set_locator(0, "2001:db8:1::1".parse().unwrap());
        v.set_locator(1, "2001:db8:2::1".parse().unwrap());
        assert_eq!(b, LIST);
    }

    #[test]
    fn list_parse_emit() {
        let v = LocatorListView::new_checked(&LIST[..]).unwrap();
        assert_eq!(LocatorList::parse(&v).unwrap(), list());
        assert_eq!(list().buffer_len(), 44);
        let mut b = [0xa5u8; 44];
        list().emit(&mut LocatorListView::new_unchecked(&mut b[..]));
        assert_eq!(b, LIST);
    }

    #[test]
    fn list_padding_for_every_residue() {
        // 4 (option header) + 5 + N + pad is a multiple of 8, and pad < 8.
        for n in 0..=255usize {
            assert_eq!((4 + 5 + n + locator_list_padding(n)) % 8, 0, "N = {n}");
            assert!(locator_list_padding(n) < 8);
        }
        assert_eq!(locator_list_contents_len(0), 12);
        assert_eq!(locator_list_contents_len(2), 44);
        assert_eq!(locator_list_contents_len(7), 12 + 7 * 16);
        assert_eq!(locator_list_contents_len(8), 20 + 8 * 16);
    }

    #[test]
    fn list_methods_are_kept() {
        let mut l = list();
        l.locators[0].method = VerificationMethod::Cga;
        l.locators[1].method = VerificationMethod::Other(201);
        let mut b = vec![0u8; l.buffer_len()];
        l.emit(&mut LocatorListView::new_unchecked(&mut b[..]));
        assert_eq!(b[5..7], [2, 201]);
        let back = LocatorList::parse(&LocatorListView::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(back, l);
        assert_eq!(
            back.to_string(),
            "Locator List gen=0x7 [2001:db8:1::1 CGA, 2001:db8:2::1 method 201]"
        );
    }

    #[test]
    fn list_truncated_and_inconsistent() {
        for n in 0..LIST.len() {
            let e = LocatorListView::new_checked(&LIST[..n]).unwrap_err();
            assert!(
                matches!(e, Error::Truncated { .. } | Error::BadLength { .. }),
                "{n}: {e:?}"
            );
        }
        // N says 3 locators, the length holds 2.
        let mut b = LIST;
        b[4] = 3;
        assert!(matches!(
            LocatorListView::new_checked(&b[..]),
            Err(Error::BadLength { value: 44, .. })
        ));
        // N says 1 locator, the length holds more.
        b[4] = 1;
        assert!(matches!(
            LocatorListView::new_checked(&b[..]),
            Err(Error::BadLength { .. })
        ));
        // Too many locators to encode.
        let l = LocatorList {
            generation: 0,
            locators: vec![list().locators[0]; 256],
        };
        assert!(matches!(
            l.check(),
            Err(Error::BadLength { value: 256, .. })
        ));
    }

    // Generation 0x01020304, Element Len 3, two elements: BROKEN prio 1 weight 2, and
    // TRANSIENT prio 3 weight 4.
    static PREFS3: [u8; 11] = hex!("01020304 03 01 01 02 02 03 04");

    fn prefs3() -> LocatorPreferences {
        LocatorPreferences {
            generation: 0x0102_0304,
            element_len: 3,
            preferences: vec![
                LocatorPreference::new(FLAG_BROKEN, 1, 2),
                LocatorPreference::new(FLAG_TRANSIENT, 3, 4),
            ],
        }
    }

    #[test]
    fn prefs_deconstruct() {
        let v = LocatorPrefsView::new_checked(&PREFS3[..]).unwrap();
        assert_eq!(v.generation(), 0x0102_0304);
        assert_eq!(v.element_len(), 3);
        assert_eq!(v.num_elements(), 2);
        assert_eq!(v.element(0), [1, 1, 2]);
        assert_eq!(v.element(1), [2, 3, 4]);
    }

    #[test]
    fn prefs_construct() {
        let mut b = [0xa5u8; 11];
        let mut v = LocatorPrefsView::new_unchecked(&mut b[..]);
        v.set_generation(0x0102_0304);
        v.set_element_len(3);
        v.element_mut(0).copy_from_slice(&[1, 1, 2]);
        v.element_mut(1).copy_from_slice(&[2, 3, 4]);
        assert_eq!(b, PREFS3);
    }

    #[test]
    fn prefs_parse_emit() {
        let v = LocatorPrefsView::new_checked(&PREFS3[..]).unwrap();
        let p = LocatorPreferences::parse(&v).unwrap();
        assert_eq!(p, prefs3());
        assert!(p.preferences[0].is_broken() && !p.preferences[0].is_transient());
        assert!(p.preferences[1].is_transient() && !p.preferences[1].is_broken());
        let mut b = [0xa5u8; 11];
        prefs3().emit(&mut LocatorPrefsView::new_unchecked(&mut b[..]));
        assert_eq!(b, PREFS3);
        assert_eq!(
            p.to_string(),
            "Locator Preferences gen=0x1020304 elem_len=3 \
             [BROKEN prio=1 weight=2, TRANSIENT prio=3 weight=4]"
        );
    }

    #[test]
    fn prefs_every_element_length() {
        // Element Len 1: flags only.
        let b = hex!("00000009 01 00 01 02 03");
        let p = LocatorPreferences::parse(&LocatorPrefsView::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(p.element_len, 1);
        assert_eq!(
            p.preferences,
            vec![
                LocatorPreference::new(0, 0, 0),
                LocatorPreference::new(FLAG_BROKEN, 0, 0),
                LocatorPreference::new(FLAG_TRANSIENT, 0, 0),
                LocatorPreference::new(FLAG_BROKEN | FLAG_TRANSIENT, 0, 0),
            ]
        );
        // Element Len 2: flags, priority.
        let b2 = hex!("00000009 02 00 05 01 06");
        let p2 =
            LocatorPreferences::parse(&LocatorPrefsView::new_checked(&b2[..]).unwrap()).unwrap();
        assert_eq!(
            p2.preferences,
            vec![
                LocatorPreference::new(0, 5, 0),
                LocatorPreference::new(1, 6, 0)
            ]
        );
        // Element Len 5: the two extra octets are kept.
        let b5 = hex!("00000009 05 02 07 08 aa bb");
        let p5 =
            LocatorPreferences::parse(&LocatorPrefsView::new_checked(&b5[..]).unwrap()).unwrap();
        assert_eq!(p5.preferences[0].extra, vec![0xaa, 0xbb]);
        assert_eq!(p5.preferences[0].weight, 8);
        assert!(
            p5.to_string()
                .ends_with("[TRANSIENT prio=7 weight=8 +2 octets]")
        );
        for (bytes, p) in [(&b[..], &p), (&b2[..], &p2), (&b5[..], &p5)] {
            p.check().unwrap();
            let mut out = vec![0xa5; p.buffer_len()];
            p.emit(&mut LocatorPrefsView::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn prefs_truncated_and_inconsistent() {
        for n in 0..5 {
            assert!(matches!(
                LocatorPrefsView::new_checked(&PREFS3[..n]),
                Err(Error::Truncated { needed: 5, .. })
            ));
        }
        for n in [6, 7, 9, 10] {
            assert!(matches!(
                LocatorPrefsView::new_checked(&PREFS3[..n]),
                Err(Error::BadLength { .. })
            ));
        }
        let mut b = PREFS3;
        b[4] = 0;
        assert!(matches!(
            LocatorPrefsView::new_checked(&b[..]),
            Err(Error::BadLength { value: 0, .. })
        ));
        b[4] = 4; // 6 octets of elements is not a multiple of 4
        assert!(matches!(
            LocatorPrefsView::new_checked(&b[..]),
            Err(Error::BadLength { value: 11, .. })
        ));
        // A Repr whose elements do not fit its Element Len is refused before emitting.
        let mut p = prefs3();
        p.element_len = 2;
        assert!(matches!(p.check(), Err(Error::Malformed(_))));
        p.element_len = 4;
        assert!(matches!(p.check(), Err(Error::Malformed(_))));
        p.element_len = 0;
        assert!(matches!(p.check(), Err(Error::BadLength { .. })));
    }
}
