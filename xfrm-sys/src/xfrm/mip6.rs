//! The manually keyed protection of Mobility Header signalling between this node and one
//! peer (RFC 3776 §3 with manual keying, §5; RFC 4877 §3): two transport-mode ESP SAs, one
//! per direction, and the two policies that require them for protocol 135.
//!
//! On the home agent `local` is its own address and `peer` the mobile node's home
//! address; on the mobile node the reverse. RFC 3776 §3.1 selects on the home address,
//! which the kernel sees as the packet's address only when it processes the Home Address
//! option and type 2 routing header itself (`CONFIG_IPV6_MIP6`); without that, use the
//! address that is really in the IPv6 header (the module docs of [`crate::xfrm`] list
//! what the CI kernel does).

use std::net::Ipv6Addr;

use super::{
    AeadAlgorithm, Algorithm, AuthAlgorithm, Direction, Policy, SecurityAssociation, Selector,
    Template, Xfrm,
};
use crate::Result;

/// The algorithms of one SA: ESP with an AEAD, or integrity plus encryption (RFC 4303
/// §3.2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Algorithms {
    /// One AEAD algorithm (`rfc4106(gcm(aes))`).
    Aead(AeadAlgorithm),
    /// Integrity and encryption (`hmac(sha256)` and `cbc(aes)`).
    AuthEnc(AuthAlgorithm, Algorithm),
}

/// One direction's SA parameters, from the configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SaParams {
    /// The SPI, chosen by the receiver of that direction (RFC 4303 §2.1); both ends
    /// must configure the same value.
    pub spi: u32,
    /// The request id linking the SA to its policy template (local to each node).
    pub reqid: u32,
    /// Algorithms and keys.
    pub algorithms: Algorithms,
}

/// The SAs and policies protecting protocol 135 between `local` and `peer`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MobilityProtection {
    /// This node's address in the selectors and SAs.
    pub local: Ipv6Addr,
    /// The peer's address.
    pub peer: Ipv6Addr,
    /// The SA for `local` → `peer`.
    pub outbound: SaParams,
    /// The SA for `peer` → `local`.
    pub inbound: SaParams,
    /// Priority of both policies (lower wins).
    pub priority: u32,
}

impl MobilityProtection {
    /// The same protection as the peer must install it: addresses and directions
    /// swapped.
    #[must_use]
    pub fn mirror(&self) -> Self {
        Self {
            local: self.peer,
            peer: self.local,
            outbound: self.inbound.clone(),
            inbound: self.outbound.clone(),
            priority: self.priority,
        }
    }

    fn sa(src: Ipv6Addr, dst: Ipv6Addr, p: &SaParams) -> SecurityAssociation {
        let sa = SecurityAssociation::esp_transport(src, dst, p.spi, p.reqid);
        match &p.algorithms {
            Algorithms::Aead(a) => sa.aead(a.clone()),
            Algorithms::AuthEnc(auth, enc) => sa.auth_enc(auth.clone(), enc.clone()),
        }
    }

    /// The two SAs: outbound (`local` → `peer`), then inbound.
    pub fn sas(&self) -> [SecurityAssociation; 2] {
        [
            Self::sa(self.local, self.peer, &self.outbound),
            Self::sa(self.peer, self.local, &self.inbound),
        ]
    }

    /// The two policies on protocol 135, every MH type: out (`local` → `peer`, through
    /// the outbound SA's reqid), then in.
    pub fn policies(&self) -> [Policy; 2] {
        [
            Policy::new(Selector::mobility(self.local, self.peer), Direction::Out)
                .priority(self.priority)
                .template(Template::esp_transport(
                    self.local,
                    self.peer,
                    self.outbound.reqid,
                )),
            Policy::new(Selector::mobility(self.peer, self.local), Direction::In)
                .priority(self.priority)
                .template(Template::esp_transport(
                    self.peer,
                    self.local,
                    self.inbound.reqid,
                )),
        ]
    }
}

/// Installing and removing [`MobilityProtection`].
impl Xfrm {
    /// Installs the SAs, then the policies; idempotent (an existing SA is updated, a
    /// policy replaced), so it also re-keys. Stops at the first refusal, whose error
    /// carries the kernel's text (a kernel without IPv6 ESP refuses the first SA).
    pub async fn install_mobility_protection(&self, mp: &MobilityProtection) -> Result<()> {
        for sa in mp.sas() {
            match self.add_sa(&sa).await {
                Err(e) if e.is_already_exists() => self.update_sa(&sa).await?,
                other => other?,
            }
        }
        for p in mp.policies() {
            self.update_policy(&p).await?;
        }
        Ok(())
    }

    /// Removes the policies, then the SAs; what is already gone is not an error.
    pub async fn remove_mobility_protection(&self, mp: &MobilityProtection) -> Result<()> {
        for p in mp.policies() {
            match self.delete_policy(&p.id()).await {
                Err(e) if e.is_not_found() => {}
                other => other?,
            }
        }
        for sa in mp.sas() {
            match self.delete_sa(&sa.id()).await {
                Err(e) if e.is_not_found() => {}
                other => other?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfrm::{IPPROTO_MH, Mode, XfrmProto};

    fn mp() -> MobilityProtection {
        MobilityProtection {
            local: "2001:db8:1::1".parse().unwrap(),
            peer: "2001:db8:1::100".parse().unwrap(),
            outbound: SaParams {
                spi: 0x1001,
                reqid: 1,
                algorithms: Algorithms::Aead(AeadAlgorithm::rfc4106_gcm_aes(&[7; 20]).unwrap()),
            },
            inbound: SaParams {
                spi: 0x1002,
                reqid: 2,
                algorithms: Algorithms::AuthEnc(
                    AuthAlgorithm::hmac_sha256(&[8; 32]).unwrap(),
                    Algorithm::cbc_aes(&[9; 16]).unwrap(),
                ),
            },
            priority: 10,
        }
    }

    #[test]
    fn sas_and_policies_pair_up_by_reqid_and_direction() {
        let m = mp();
        let [out_sa, in_sa] = m.sas();
        let [out_p, in_p] = m.policies();
        assert_eq!(
            (out_sa.src, out_sa.dst, out_sa.spi),
            (m.local, m.peer, 0x1001)
        );
        assert_eq!((in_sa.src, in_sa.dst, in_sa.spi), (m.peer, m.local, 0x1002));
        assert!(out_sa.aead.is_some() && out_sa.auth.is_none());
        assert!(in_sa.aead.is_none() && in_sa.auth.is_some() && in_sa.enc.is_some());
        for (sa, p, dir) in [
            (&out_sa, &out_p, Direction::Out),
            (&in_sa, &in_p, Direction::In),
        ] {
            assert_eq!(p.dir, dir);
            assert_eq!(p.priority, 10);
            assert_eq!(p.selector.proto, IPPROTO_MH);
            assert_eq!(p.selector.sport_mask, 0, "every MH type (module docs)");
            assert_eq!(p.selector, sa.selector);
            let [t] = p.templates[..] else {
                panic!("one template");
            };
            assert_eq!((t.src, t.dst, t.reqid), (sa.src, sa.dst, sa.reqid));
            assert_eq!((t.proto, t.mode), (XfrmProto::Esp, Mode::Transport));
            assert_eq!((sa.proto, sa.mode), (XfrmProto::Esp, Mode::Transport));
        }
    }

    #[test]
    fn mirror_is_the_peers_view() {
        let m = mp();
        let peer = m.mirror();
        assert_eq!(peer.mirror(), m);
        let [mine_out, mine_in] = m.sas();
        let [theirs_out, theirs_in] = peer.sas();
        // The same SAs, seen from the other end.
        assert_eq!(mine_out, theirs_in);
        assert_eq!(mine_in, theirs_out);
        let [_, theirs_in_p] = peer.policies();
        assert_eq!(theirs_in_p.selector, mine_out.selector);
        assert_eq!(theirs_in_p.dir, Direction::In);
    }
}
