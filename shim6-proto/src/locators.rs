//! Locator sets: what we advertise for each of our ULIDs, and how a peer's advertised set
//! is verified (RFC 5533 §5.15.2–§5.15.5, §7.2, §10; RFC 5535 §7.2; RFC 3972 §5–§6).
//!
//! **Ours.** Each local ULID comes with its CGA Parameters (the output of
//! `cga-tool generate`): an HBA set, a CGA, or a CGA-compatible HBA set. For a locator
//! whose /64 is in the ULID's HBA set we advertise method HBA; otherwise, if the ULID has a
//! private key, method CGA, covered by a signature; otherwise the locator cannot be bound
//! to that ULID and is not advertised for it. Signatures are computed by a
//! [`cga::LocatorListSigner`] only when our locator list changes
//! ([`LocalIdentity::set_locators`]), never in reply to a peer.
//!
//! **Theirs.** [`verify_peer_list`]: the PDS must verify against ULID(peer)
//! ([`cga::verify()`]), every HBA locator must be a member of the set
//! ([`cga::verify_hba_member`]), and the CGA locators must be covered by a valid
//! signature ([`cga::verify_locator_list`]). One failure rejects the whole message: a
//! locator that does not verify is never used.

use std::net::Ipv6Addr;

use cga::{AddressKind, LocatorListSigner, PrivateKey};
use shim6_wire::cga::{Packet as PdsPacket, Prefix};
use shim6_wire::shim6::locator::{
    FLAG_BROKEN, FLAG_TRANSIENT, Locator as WireLocator, LocatorList, LocatorPreference,
    LocatorPreferences, VerificationMethod,
};
use shim6_wire::shim6::option::Repr as OptionRepr;

use crate::error::{ApiMisuse, Error, PeerIncompatible, PeerMisbehaved};

/// One of our ULIDs as configured: the address, its CGA Parameters, and for CGA use the
/// private key (the data `cga-tool generate --format json` writes, plus the key file).
#[derive(Debug)]
pub struct LocalUlid {
    /// The ULID.
    pub address: Ipv6Addr,
    /// Its CGA Parameters (RFC 3972 §4), serialized.
    pub params: Vec<u8>,
    /// The RSA key of a CGA or CGA-compatible HBA; `None` for a pure HBA set.
    pub key: Option<PrivateKey>,
}

impl LocalUlid {
    /// A ULID from one entry of `cga-tool generate --format json`
    /// (`{"address": "...", "params": "<hex>"}`), with the key for CGA use.
    ///
    /// # Errors
    /// [`ApiMisuse::Identity`] for an unparsable address or hex string. Whether the
    /// address matches the parameters is checked by [`Endpoint::new`](crate::Endpoint::new).
    pub fn from_hex(
        address: &str,
        params_hex: &str,
        key: Option<PrivateKey>,
    ) -> Result<Self, ApiMisuse> {
        let address = address
            .parse()
            .map_err(|e| ApiMisuse::Identity(format!("address {address:?}: {e}")))?;
        let h = params_hex.trim();
        if !h.len().is_multiple_of(2) || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiMisuse::Identity(
                "params: expected an even number of hex digits".into(),
            ));
        }
        let params = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| ApiMisuse::Identity(format!("params: {e}")))?;
        Ok(Self {
            address,
            params,
            key,
        })
    }
}

/// What we advertise for one ULID: the options that go into I2, I2bis, R2 and Update
/// Requests.
#[derive(Debug, Clone, Default)]
pub struct Advert {
    /// Locator List (RFC 5533 §5.15.2).
    pub list: Option<LocatorList>,
    /// Locator Preferences, when not all neutral (RFC 5533 §5.15.3).
    pub prefs: Option<LocatorPreferences>,
    /// CGA Signature over the list's CGA locators (RFC 5533 §5.15.5).
    pub signature: Option<Vec<u8>>,
}

#[derive(Debug)]
struct UlidIdentity {
    address: Ipv6Addr,
    params: Vec<u8>,
    hba_prefixes: Vec<Prefix>,
    /// Index in [`LocalIdentity::signers`]; the members of one HBA set share it.
    signer: Option<usize>,
    advert: Advert,
}

/// Our ULIDs, their parameters and signers, and the current local locator list.
#[derive(Debug)]
pub struct LocalIdentity {
    ulids: Vec<UlidIdentity>,
    signers: Vec<LocatorListSigner>,
    locators: Vec<reap::Locator>,
    generation: u32,
}

fn prefix_of(a: &Ipv6Addr) -> Prefix {
    let mut p = [0u8; 8];
    p.copy_from_slice(&a.octets()[..8]);
    p
}

impl LocalIdentity {
    /// Checks every ULID against its own parameters and prepares the signers.
    ///
    /// A configured ULID from an HBA set brings every member of the set along as a
    /// ULID (RFC 5535 §6: the members differ only in the Subnet Prefix), so the
    /// applications may use any of them; they share one signer.
    ///
    /// # Errors
    /// [`ApiMisuse::Identity`] when a ULID does not verify against its parameters, or a
    /// key is missing where the parameters say CGA.
    pub fn new(ulids: Vec<LocalUlid>) -> Result<Self, ApiMisuse> {
        let mut out: Vec<UlidIdentity> = Vec::new();
        let mut signers = Vec::new();
        for u in ulids {
            let v = cga::verify(&u.address, &u.params).map_err(|e| {
                ApiMisuse::Identity(format!("ULID {} does not verify: {e}", u.address))
            })?;
            let pds = PdsPacket::new_checked(&u.params[..])
                .map_err(|e| ApiMisuse::Identity(format!("ULID {}: {e}", u.address)))?;
            let hba_prefixes = match pds.multi_prefix() {
                Some(Ok(mp)) => mp.prefixes().collect(),
                _ => Vec::new(),
            };
            if v.kind == AddressKind::Cga && u.key.is_none() {
                return Err(ApiMisuse::Identity(format!(
                    "ULID {} is a CGA: its private key is needed to sign locator lists",
                    u.address
                )));
            }
            // RFC 5535 §5: a pure HBA key field is no key; no signature is possible.
            let signer = match (v.kind, u.key) {
                (AddressKind::Hba, _) | (_, None) => None,
                (_, Some(k)) => {
                    signers.push(LocatorListSigner::new(k));
                    Some(signers.len() - 1)
                }
            };
            let members = if hba_prefixes.is_empty() {
                Vec::new()
            } else {
                cga::AddressSet::from_params(&u.params, v.sec)
                    .map_err(|e| ApiMisuse::Identity(format!("ULID {}: {e}", u.address)))?
                    .members()
            };
            out.push(UlidIdentity {
                address: u.address,
                params: u.params,
                hba_prefixes: hba_prefixes.clone(),
                signer,
                advert: Advert::default(),
            });
            for (_, address, params) in members {
                if out.iter().any(|x| x.address == address) {
                    continue;
                }
                out.push(UlidIdentity {
                    address,
                    params,
                    hba_prefixes: hba_prefixes.clone(),
                    signer,
                    advert: Advert::default(),
                });
            }
        }
        Ok(Self {
            ulids: out,
            signers,
            locators: Vec::new(),
            generation: 0,
        })
    }

    /// Whether `a` is one of our ULIDs.
    pub fn is_ulid(&self, a: &Ipv6Addr) -> bool {
        self.ulids.iter().any(|u| u.address == *a)
    }

    /// Our ULIDs.
    pub fn ulids(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.ulids.iter().map(|u| u.address)
    }

    /// The current local locators with their preferences.
    pub fn locators(&self) -> &[reap::Locator] {
        &self.locators
    }

    /// Whether `a` is a current local locator (or a ULID).
    pub fn is_local(&self, a: &Ipv6Addr) -> bool {
        self.locators.iter().any(|l| l.addr == *a) || self.is_ulid(a)
    }

    /// The generation of our current list.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The CGA Parameters of ULID `ulid`.
    pub fn params(&self, ulid: &Ipv6Addr) -> Option<&[u8]> {
        self.ulids
            .iter()
            .find(|u| u.address == *ulid)
            .map(|u| u.params.as_slice())
    }

    /// The advertisement for `ulid`.
    pub fn advert(&self, ulid: &Ipv6Addr) -> Option<&Advert> {
        self.ulids
            .iter()
            .find(|u| u.address == *ulid)
            .map(|u| &u.advert)
    }

    /// Installs a new local locator list under `generation` (RFC 5533 §10.1: a new
    /// random generation per list, digest §7.3) and re-signs where needed. The only
    /// place that signs.
    ///
    /// # Errors
    /// [`ApiMisuse::Identity`] if signing fails.
    pub fn set_locators(
        &mut self,
        locators: &[reap::Locator],
        generation: u32,
    ) -> Result<(), ApiMisuse> {
        self.locators = locators.to_vec();
        self.generation = generation;
        for u in &mut self.ulids {
            let mut list = Vec::new();
            let mut prefs = Vec::new();
            let mut cga_locs = Vec::new();
            for l in locators {
                // A member of the ULID's HBA set (prefix in the set *and* the address
                // derived from it, RFC 5535 §7.2) is bound by HBA.
                let member = u.hba_prefixes.contains(&prefix_of(&l.addr))
                    && cga::verify_hba_member(&l.addr, &u.params).is_ok();
                let method = if member {
                    VerificationMethod::Hba
                } else if u.signer.is_some() {
                    cga_locs.push(l.addr);
                    VerificationMethod::Cga
                } else {
                    // Neither in the HBA set nor signable: the peer could not verify it,
                    // so it is not advertised for this ULID (RFC 5533 §7.2).
                    continue;
                };
                list.push(WireLocator {
                    address: l.addr,
                    method,
                });
                let mut flags = 0;
                if l.pref.broken {
                    flags |= FLAG_BROKEN;
                }
                if l.pref.transient {
                    flags |= FLAG_TRANSIENT;
                }
                prefs.push(LocatorPreference::new(
                    flags,
                    l.pref.priority,
                    l.pref.weight,
                ));
            }
            let signer = u.signer.and_then(|i| self.signers.get_mut(i));
            let signature = match (signer, cga_locs.is_empty()) {
                (Some(s), false) => Some(
                    s.update(generation, &cga_locs)
                        .map_err(|e| ApiMisuse::Identity(format!("signing: {e}")))?
                        .signature
                        .clone(),
                ),
                _ => None,
            };
            let neutral = LocatorPreference::new(0, 0, 1);
            let prefs = (!prefs.iter().all(|p| *p == neutral)).then_some(LocatorPreferences {
                generation,
                element_len: 3,
                preferences: prefs,
            });
            u.advert = Advert {
                list: (!list.is_empty()).then_some(LocatorList {
                    generation,
                    locators: list,
                }),
                prefs,
                signature,
            };
        }
        Ok(())
    }

    /// How many RSA signatures the signers have made (never in reply to a peer).
    pub fn signatures_made(&self) -> u64 {
        self.signers
            .iter()
            .map(LocatorListSigner::signatures_made)
            .sum()
    }

    /// The locator options for a message about ULID `ulid`: Locator List, CGA PDS,
    /// Locator Preferences, CGA Signature (RFC 5533 §5.6, §5.7, §5.10). `with_pds` is
    /// false in Update Requests once the PDS went out in I2/I2bis/R2.
    pub fn options(&self, ulid: &Ipv6Addr, with_pds: bool) -> Vec<OptionRepr> {
        let Some(u) = self.ulids.iter().find(|u| u.address == *ulid) else {
            return Vec::new();
        };
        let mut o = Vec::new();
        if let Some(l) = &u.advert.list {
            o.push(OptionRepr::LocatorList(l.clone()));
            if with_pds {
                o.push(OptionRepr::CgaParameterDataStructure(u.params.clone()));
            }
            if let Some(p) = &u.advert.prefs {
                o.push(OptionRepr::LocatorPreferences(p.clone()));
            }
            if let Some(s) = &u.advert.signature {
                o.push(OptionRepr::CgaSignature(s.clone()));
            }
        }
        o
    }
}

/// A verified peer locator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLocator {
    /// The address.
    pub addr: Ipv6Addr,
    /// How it was verified (the ULID itself counts as verified by being the ULID).
    pub method: Option<VerificationMethod>,
    /// The peer's preference for it (RFC 5533 §5.15.3).
    pub pref: reap::Preference,
}

/// A peer list after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedList {
    /// Its generation.
    pub generation: u32,
    /// The verified locators, in list order.
    pub locators: Vec<PeerLocator>,
}

/// Checks that the PDS describes ULID(peer) (RFC 5533 §7.13 "MUST correspond").
///
/// # Errors
/// [`PeerMisbehaved::PdsMismatch`] with the failing verification step.
pub fn verify_pds(ulid_peer: &Ipv6Addr, pds: &[u8]) -> Result<(), Error> {
    cga::verify(ulid_peer, pds)
        .map(|_| ())
        .map_err(|e| PeerMisbehaved::PdsMismatch(e.to_string()).into())
}

/// Verifies a peer's Locator List against `pds` (already checked against `ulid_peer`
/// with [`verify_pds`]) and the optional CGA Signature.
///
/// # Errors
/// - [`PeerIncompatible::UnsupportedVerificationMethod`] for a method other than HBA and
///   CGA (the caller answers with Error code 2, RFC 5533 §10);
/// - [`PeerMisbehaved::InconsistentVerification`] for HBA with a PDS that has no
///   Multi-Prefix extension (also Error code 2);
/// - [`PeerMisbehaved::LocatorNotInHbaSet`] for an HBA locator outside the set;
/// - [`PeerMisbehaved::MissingSignature`] / [`PeerMisbehaved::BadSignature`] for CGA
///   locators.
pub fn verify_peer_list(
    ulid_peer: &Ipv6Addr,
    list: &LocatorList,
    pds: &[u8],
    signature: Option<&[u8]>,
) -> Result<VerifiedList, Error> {
    let mut locators = Vec::with_capacity(list.locators.len());
    let mut cga_locs = Vec::new();
    for l in &list.locators {
        match l.method {
            VerificationMethod::Hba => match cga::verify_hba_member(&l.address, pds) {
                Ok(_) => {}
                Err(cga::VerifyError::NoMultiPrefix) => {
                    return Err(PeerMisbehaved::InconsistentVerification(l.address).into());
                }
                Err(_) => return Err(PeerMisbehaved::LocatorNotInHbaSet(l.address).into()),
            },
            VerificationMethod::Cga => cga_locs.push(l.address),
            VerificationMethod::Other(m) => {
                return Err(Error::PeerIncompatible(
                    PeerIncompatible::UnsupportedVerificationMethod(m),
                ));
            }
        }
        locators.push(PeerLocator {
            addr: l.address,
            method: Some(l.method),
            pref: reap::Preference::default(),
        });
    }
    if !cga_locs.is_empty() {
        let sig = signature.ok_or(PeerMisbehaved::MissingSignature)?;
        cga::verify_locator_list(ulid_peer, pds, list.generation, &cga_locs, sig)
            .map_err(|e| PeerMisbehaved::BadSignature(e.to_string()))?;
    }
    Ok(VerifiedList {
        generation: list.generation,
        locators,
    })
}

/// Applies Locator Preferences to a verified list (RFC 5533 §10.4).
///
/// # Errors
/// [`PeerMisbehaved::PreferencesGenerationMismatch`] (Error code 3) or
/// [`PeerMisbehaved::PreferencesCountMismatch`] (Error code 4).
pub fn apply_preferences(
    list: &mut VerifiedList,
    prefs: &LocatorPreferences,
) -> Result<(), PeerMisbehaved> {
    if prefs.generation != list.generation {
        return Err(PeerMisbehaved::PreferencesGenerationMismatch);
    }
    if prefs.preferences.len() != list.locators.len() {
        return Err(PeerMisbehaved::PreferencesCountMismatch);
    }
    for (l, p) in list.locators.iter_mut().zip(&prefs.preferences) {
        l.pref = reap::Preference {
            broken: p.is_broken(),
            transient: p.is_transient(),
            // Element lengths 1 and 2 leave priority / weight at their neutral values.
            priority: if prefs.element_len >= 2 {
                p.priority
            } else {
                0
            },
            weight: if prefs.element_len >= 3 { p.weight } else { 1 },
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ulid_from_cga_tool_json_fields() {
        let id = crate::sim::identity::hba(1, 2, 1);
        let u = &id.ulids[0];
        let hex: String = u.params.iter().map(|b| format!("{b:02x}")).collect();
        let parsed = LocalUlid::from_hex(&u.address.to_string(), &hex, None).unwrap();
        assert_eq!(parsed.params, u.params);
        assert!(LocalIdentity::new(vec![parsed]).is_ok());
        assert!(LocalUlid::from_hex("2001:db8::1", "abc", None).is_err());
        assert!(LocalUlid::from_hex("2001:db8::1", "zz", None).is_err());
        assert!(LocalUlid::from_hex("not an address", "00", None).is_err());
    }
}
