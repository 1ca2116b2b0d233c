//! Library tests: the published vectors, one failure per verification step, generation →
//! verification properties, signatures and key files.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::OnceLock;

use hex_literal::hex;
use proptest::prelude::*;
use shim6_wire::cga::{Packet, Prefix};

use crate::hash::{hash1, hash2};
use crate::key::PrivateKey;
use crate::search::{Outcome, SearchConfig};
use crate::*;

/// RFC 3972 Appendix A (digest §6.1): the RSA-512 `SubjectPublicKeyInfo`.
const RFC_KEY: [u8; 94] = hex!(
    "305c300d06092a864886f70d0101010500034b003048024100c2c2f137305454f1"
    "0bd9cea36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c"
    "3c2382508773c7867f9b3b9e63a09c7bc48f7a54ebefaf0203010001"
);
const RFC_START: [u8; 16] = hex!("89a8a8b2e858d8b8f2633f44d2d4ce9a");
const RFC_MODIFIER: [u8; 16] = hex!("89a8a8b2e858d8b8f2633f44d2d4ce9b");
const FE80: Prefix = hex!("fe80000000000000");

fn rfc_params() -> Vec<u8> {
    let mut p = RFC_MODIFIER.to_vec();
    p.extend_from_slice(&FE80);
    p.push(0);
    p.extend_from_slice(&RFC_KEY);
    p
}

fn rfc_address() -> Ipv6Addr {
    "fe80::3c4a:5bf6:ffb4:ca6c".parse().unwrap()
}

/// Digest §6.2 (`LinShim6` `hba_test.c`): the pseudo-key in `LinShim6`'s encoding (48 raw
/// octets in the BIT STRING) and the three prefixes.
const HBA_KEY: [u8; 68] = hex!(
    "3042300d06092a864886f70d0101010500033100"
    "a36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c3c2382508773c7867f9b3b9e63a09c7bc48f"
);
const HBA_PREFIXES: [Prefix; 3] = [
    hex!("fe80000000000000"),
    hex!("200106881f990001"),
    hex!("2001066073010001"),
];
const HBA_START: [u8; 16] = hex!("89a8a8b2e858d8b8f2633f44d2d7c361");
const HBA_MODIFIER: [u8; 16] = hex!("89a8a8b2e858d8b8f2633f44d2d7c362");

fn hba_vector_set() -> AddressSet {
    let g = Generator::from_parts(Sec::ONE, HBA_KEY.to_vec(), &HBA_PREFIXES, false).unwrap();
    g.finish(HBA_MODIFIER)
}

fn one_thread() -> SearchConfig<'static> {
    SearchConfig {
        threads: 1,
        ..SearchConfig::default()
    }
}

/// Hash2 of the structure `modifier ‖ prefix ‖ 0 ‖ rest`.
fn hash2_of(modifier: [u8; 16], rest: &[u8]) -> [u8; 14] {
    let mut p = modifier.to_vec();
    p.extend_from_slice(&[0; 9]);
    p.extend_from_slice(rest);
    hash2(&Packet::new_checked(&p[..]).unwrap())
}

// ---------------------------------------------------------------- RFC 3972 Appendix A

#[test]
fn rfc3972_vector_hashes() {
    assert_eq!(
        hash2_of(RFC_START, &RFC_KEY),
        hex!("436b9a70dbfddbf1926e6e6629c0")
    );
    assert_eq!(
        hash2_of(RFC_MODIFIER, &RFC_KEY),
        hex!("000001ca680b83888d0912dffcce")
    );
    assert_eq!(hash1(&rfc_params()), 0xfd4a_5bf6_ffb4_ca6c);
}

#[test]
fn rfc3972_vector_by_generation() {
    let g = Generator::from_parts(Sec::ONE, RFC_KEY.to_vec(), &[], false).unwrap();
    for threads in [1, 2] {
        let mut cfg = SearchConfig {
            threads,
            ..SearchConfig::default()
        };
        let out = g.search(RFC_START, &mut cfg).unwrap();
        let Outcome::Found {
            modifier, offset, ..
        } = out
        else {
            panic!("{out:?}")
        };
        assert_eq!(modifier, RFC_MODIFIER);
        assert_eq!(offset, 1, "the start fails, start + 1 succeeds");
        let set = g.finish(modifier);
        assert_eq!(set.address(&FE80), rfc_address());
        assert_eq!(set.params(&FE80).to_bytes(), rfc_params());
        assert_eq!(set.kind(), AddressKind::Cga);
    }
}

#[test]
fn rfc3972_vector_by_verification() {
    let v = verify_cga(&rfc_address(), &rfc_params()).unwrap();
    assert_eq!(v.sec, Sec::ONE);
    assert_eq!(v.collision_count, 0);
    assert_eq!(v.kind, AddressKind::Cga);
    assert!(!v.via_hba_set);
    // u and g are ignored (RFC 3972 §5 step 4), and a lower Sec also verifies.
    for iid in [
        0x3e4a_5bf6_ffb4_ca6cu64,
        0x3d4a_5bf6_ffb4_ca6c,
        0x1c4a_5bf6_ffb4_ca6c,
    ] {
        let a = Prefix64(FE80).with_iid(iid);
        assert!(verify_cga(&a, &rfc_params()).is_ok(), "{a}");
    }
    assert_eq!(verify(&rfc_address(), &rfc_params()), Ok(v));
}

// ---------------------------------------------------------------- digest §6.2 HBA set

#[test]
fn hba_vector_hashing_pipeline() {
    let mp_ext = hex!("0012001c 00000000 fe80000000000000 200106881f990001 2001066073010001");
    let mut rest = HBA_KEY.to_vec();
    rest.extend_from_slice(&mp_ext);
    assert_eq!(
        hash2_of(HBA_START, &rest),
        hex!("8f238ed53ae8b584d72164c5c160")
    );
    assert_eq!(
        hash2_of(HBA_MODIFIER, &rest),
        hex!("0000ad8a46e83c4494b7611dd011")
    );

    // Generation from the file's starting modifier finds the next one.
    let g = Generator::from_parts(Sec::ONE, HBA_KEY.to_vec(), &HBA_PREFIXES, false).unwrap();
    let mut tail = vec![0; 9];
    tail.extend_from_slice(&rest);
    assert_eq!(g.hash2_tail(), tail);
    let out = g.search(HBA_START, &mut SearchConfig::default()).unwrap();
    assert!(matches!(
        out,
        Outcome::Found {
            modifier: HBA_MODIFIER,
            offset: 1,
            ..
        }
    ));

    let set = hba_vector_set();
    assert_eq!(set.kind(), AddressKind::Hba);
    let want_hash1 = [
        0x4f5f_924d_0c4c_824e_u64,
        0xbeae_90c0_f2b6_e582,
        0x9cd1_7773_6f00_f11b,
    ];
    let want_addr = [
        "fe80::2c5f:924d:c4c:824e",
        "2001:688:1f99:1:3cae:90c0:f2b6:e582",
        "2001:660:7301:1:3cd1:7773:6f00:f11b",
    ];
    let members = set.members();
    assert_eq!(members.len(), 3);
    for (i, (prefix, addr, params)) in members.iter().enumerate() {
        assert_eq!(prefix.0, HBA_PREFIXES[i]);
        assert_eq!(hash1(params), want_hash1[i]);
        assert_eq!(*addr, want_addr[i].parse::<Ipv6Addr>().unwrap());
        // Each address is the CGA of its own parameters …
        let v = verify_cga(addr, params).unwrap();
        assert_eq!((v.sec, v.kind), (Sec::ONE, AddressKind::Hba));
        // … and a member of the set described by any member's parameters.
        for (_, _, other) in &members {
            let v = verify_hba_member(addr, other).unwrap();
            assert!(v.via_hba_set);
            assert_eq!(verify(addr, other).unwrap().sec, Sec::ONE);
        }
    }
    // The first member's parameters are byte for byte the wire test's vector.
    let mut want = HBA_MODIFIER.to_vec();
    want.extend_from_slice(&FE80);
    want.push(0);
    want.extend_from_slice(&rest);
    assert_eq!(members[0].2, want);
}

// ---------------------------------------------------------------- failure reasons

#[test]
fn step1_collision_count() {
    let mut p = rfc_params();
    p[24] = 3;
    assert_eq!(
        verify_cga(&rfc_address(), &p),
        Err(VerifyError::CollisionCount(3))
    );
}

#[test]
fn step2_subnet_prefix() {
    let a: Ipv6Addr = "2001:db8::3c4a:5bf6:ffb4:ca6c".parse().unwrap();
    let e = verify_cga(&a, &rfc_params()).unwrap_err();
    assert_eq!(
        e,
        VerifyError::PrefixMismatch {
            address: "2001:db8::/64".parse().unwrap(),
            params: Prefix64(FE80),
        }
    );
    assert_eq!(e.step(), "subnet-prefix");
    assert!(e.to_string().contains("step 2"), "{e}");
    // Without a Multi-Prefix extension `verify` reports the same step.
    assert_eq!(verify(&a, &rfc_params()), Err(e));
}

#[test]
fn step4_hash1() {
    // A changed interface-identifier bit outside Sec/u/g.
    let a = Prefix64(FE80).with_iid(0x3c4a_5bf6_ffb4_ca6d);
    assert_eq!(
        verify_cga(&a, &rfc_params()),
        Err(VerifyError::Hash1Mismatch {
            iid: 0x3c4a_5bf6_ffb4_ca6d,
            hash1: 0xfd4a_5bf6_ffb4_ca6c
        })
    );
    // Any changed octet of the modifier or key changes Hash1.
    for i in (0..16).chain(25..119) {
        let mut p = rfc_params();
        p[i] ^= 0x01;
        match verify_cga(&rfc_address(), &p) {
            Err(VerifyError::Hash1Mismatch { .. } | VerifyError::Malformed(_)) => {}
            other => panic!("octet {i}: {other:?}"),
        }
    }
    // Unknown extensions are hashed (RFC 3972 §5, RFC 4581).
    let mut p = rfc_params();
    p.extend_from_slice(&hex!("fffd 0002 abcd"));
    assert!(matches!(
        verify_cga(&rfc_address(), &p),
        Err(VerifyError::Hash1Mismatch { .. })
    ));
}

#[test]
fn step5_unsupported_sec() {
    // Sec bits 011 with the rest of the IID unchanged: Hash1 still matches.
    let a = Prefix64(FE80).with_iid(0x7c4a_5bf6_ffb4_ca6c);
    let e = verify_cga(&a, &rfc_params()).unwrap_err();
    assert_eq!(e, VerifyError::UnsupportedSec(3));
    assert!(e.to_string().contains("RFC 4982"), "{e}");
    let a = Prefix64(FE80).with_iid(0xfc4a_5bf6_ffb4_ca6c);
    assert_eq!(
        verify_cga(&a, &rfc_params()),
        Err(VerifyError::UnsupportedSec(7))
    );
}

#[test]
fn step7_hash2() {
    // The RFC parameters satisfy Sec 1 (23 zero bits), not Sec 2.
    let a = Prefix64(FE80).with_iid(0x5c4a_5bf6_ffb4_ca6c);
    assert_eq!(
        verify_cga(&a, &rfc_params()),
        Err(VerifyError::Hash2 {
            sec: 2,
            zero_bits: 23
        })
    );
    // The starting modifier only makes a Sec 0 address; claiming Sec 1 fails at step 7.
    let g = Generator::from_parts(Sec::ZERO, RFC_KEY.to_vec(), &[], false).unwrap();
    let set = g.finish(RFC_START);
    let a0 = set.address(&FE80);
    let params = set.params(&FE80).to_bytes();
    assert_eq!(verify_cga(&a0, &params).unwrap().sec, Sec::ZERO);
    let a1 = Prefix64(FE80).with_iid(addr::iid_of(&a0) | (1 << 61));
    assert_eq!(
        verify_cga(&a1, &params),
        Err(VerifyError::Hash2 {
            sec: 1,
            zero_bits: 1
        })
    );
}

#[test]
fn malformed_parameters() {
    let p = rfc_params();
    for n in [0, 10, 25, 60, 118] {
        assert!(matches!(
            verify_cga(&rfc_address(), &p[..n]),
            Err(VerifyError::Malformed(shim6_wire::Error::Truncated { .. }))
        ));
    }
    // A Multi-Prefix extension whose length is not 4 + 8n.
    let mut p = rfc_params();
    p.extend_from_slice(&hex!("0012 0005 0000000000"));
    assert!(matches!(
        verify_cga(&rfc_address(), &p),
        Err(VerifyError::Malformed(shim6_wire::Error::BadLength { .. }))
    ));
}

#[test]
fn hba_membership_failures() {
    let set = hba_vector_set();
    let params = set.params(&FE80).to_bytes();
    // A prefix outside the set.
    let outsider: Ipv6Addr = "2001:db8:9::3cae:90c0:f2b6:e582".parse().unwrap();
    assert_eq!(
        verify_hba_member(&outsider, &params),
        Err(VerifyError::PrefixNotInSet(
            "2001:db8:9::/64".parse().unwrap()
        ))
    );
    assert_eq!(
        verify(&outsider, &params),
        Err(VerifyError::PrefixNotInSet(
            "2001:db8:9::/64".parse().unwrap()
        ))
    );
    // A set prefix with the wrong interface identifier.
    let wrong: Ipv6Addr = "2001:688:1f99:1:3cae:90c0:f2b6:e583".parse().unwrap();
    assert!(matches!(
        verify_hba_member(&wrong, &params),
        Err(VerifyError::Hash1Mismatch { .. })
    ));
    // Parameters without a Multi-Prefix extension describe no set.
    assert_eq!(
        verify_hba_member(&rfc_address(), &rfc_params()),
        Err(VerifyError::NoMultiPrefix)
    );
    // Tampering with the prefix list changes every address.
    let mut p = params.clone();
    let last = p.len() - 1;
    p[last] ^= 1;
    let member: Ipv6Addr = "2001:688:1f99:1:3cae:90c0:f2b6:e582".parse().unwrap();
    assert!(matches!(
        verify_hba_member(&member, &p),
        Err(VerifyError::Hash1Mismatch { .. })
    ));
}

#[test]
fn collision_count_changes_every_address() {
    let mut set = hba_vector_set();
    let before: Vec<_> = set.members().iter().map(|m| m.1).collect();
    set.bump_collision_count().unwrap();
    for (i, (_, addr, params)) in set.members().iter().enumerate() {
        assert_ne!(*addr, before[i]);
        assert_eq!(verify_cga(addr, params).unwrap().collision_count, 1);
    }
    set.bump_collision_count().unwrap();
    assert!(matches!(
        set.bump_collision_count(),
        Err(Error::TooManyCollisions)
    ));
}

#[test]
fn address_set_from_params() {
    let set = AddressSet::from_params(&rfc_params(), Sec::ONE).unwrap();
    assert_eq!(set.address(&FE80), rfc_address());
    assert!(matches!(
        AddressSet::from_params(&rfc_params(), Sec::TWO),
        Err(Error::Verify(VerifyError::Hash2 { .. }))
    ));
}

// ---------------------------------------------------------------- the HBA pseudo-key

#[test]
fn pseudo_key_encoding() {
    let k = hba_pseudo_key(&[0x11; 48]);
    assert_eq!(k.len(), 78);
    assert_eq!(shim6_wire::cga::der_element_len(&k), Ok(78));
    assert_eq!(k[25], 0x91, "top bit of the modulus forced");
    // It is well-formed DER that OpenSSL reads as an RSA-384 key.
    let pk = PublicKey::from_der(&k).unwrap();
    assert_eq!(pk.bits(), 384);
    // Fresh sets get fresh pseudo-keys.
    let a = Generator::hba(&HBA_PREFIXES, None, Sec::ZERO).unwrap();
    let b = Generator::hba(&HBA_PREFIXES, None, Sec::ZERO).unwrap();
    assert_ne!(a.public_key(), b.public_key());
    assert_eq!(a.public_key().len(), 78);
}

#[test]
fn bad_prefix_sets() {
    assert!(matches!(
        Generator::hba(&[FE80, FE80], None, Sec::ZERO),
        Err(Error::PrefixSet(_))
    ));
    assert!(matches!(
        Generator::from_parts(Sec::ZERO, vec![0x30, 0x00, 0x00], &[], false),
        Err(Error::Key(_))
    ));
}

// ---------------------------------------------------------------- keys and signatures

/// A few 1024-bit keys, generated once for the whole test binary.
fn keys() -> &'static [PrivateKey] {
    static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..3)
            .map(|_| PrivateKey::generate(1024).unwrap())
            .collect()
    })
}

fn cga_for(key: &PrivateKey, prefix: Prefix) -> (Ipv6Addr, Vec<u8>) {
    let g = Generator::cga(&key.public_key().unwrap(), Sec::ZERO);
    let (set, _) = g.generate(&mut one_thread()).unwrap();
    (set.address(&prefix), set.params(&prefix).to_bytes())
}

#[test]
fn signatures_verify_and_fail_on_any_changed_octet() {
    let key = &keys()[0];
    let (addr, params) = cga_for(key, FE80);
    let locators: Vec<Ipv6Addr> = vec![addr, "2001:db8::1".parse().unwrap()];
    let msg = sign::shim6_message(0x0102_0304, &locators);
    assert_eq!(msg.len(), 4 + 32);
    assert_eq!(msg[..4], [1, 2, 3, 4]);
    let sig = sign(key, &SHIM6_CGA_TAG, &msg).unwrap();
    assert_eq!(sig.len(), 128);
    verify_signature(&params, &SHIM6_CGA_TAG, &msg, &sig).unwrap();
    verify_locator_list(&addr, &params, 0x0102_0304, &locators, &sig).unwrap();

    for i in 0..msg.len() {
        let mut m = msg.clone();
        m[i] ^= 0x80;
        assert_eq!(
            verify_signature(&params, &SHIM6_CGA_TAG, &m, &sig),
            Err(SignatureError::Invalid),
            "message octet {i}"
        );
    }
    for i in 0..sig.len() {
        let mut s = sig.clone();
        s[i] ^= 0x01;
        assert_eq!(
            verify_signature(&params, &SHIM6_CGA_TAG, &msg, &s),
            Err(SignatureError::Invalid),
            "signature octet {i}"
        );
    }
    // Any changed octet of the key field fails the full check (RFC 3972 §6: the
    // address binds the exact octets) …
    let key_len = Packet::new_checked(&params[..]).unwrap().public_key_len();
    for i in 25..25 + key_len {
        let mut p = params.clone();
        p[i] ^= 0x01;
        let r = verify_locator_list(&addr, &p, 0x0102_0304, &locators, &sig);
        assert!(r.is_err(), "key octet {i}: {r:?}");
    }
    // … and any changed octet of the modulus or exponent fails the RSA check alone (an
    // equivalent re-encoding of the AlgorithmIdentifier may still parse to the same key,
    // which is why the address check matters).
    let modulus_and_exponent = 25 + key_len - (128 + 5)..25 + key_len;
    for i in modulus_and_exponent {
        let mut p = params.clone();
        p[i] ^= 0x01;
        let r = verify_signature(&p, &SHIM6_CGA_TAG, &msg, &sig);
        assert!(r.is_err(), "key octet {i}: {r:?}");
    }
    // Another tag, a truncated or empty signature, another key.
    assert_eq!(
        verify_signature(&params, &[0; 16], &msg, &sig),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify_signature(&params, &SHIM6_CGA_TAG, &msg, &sig[1..]),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        verify_signature(&params, &SHIM6_CGA_TAG, &msg, &[]),
        Err(SignatureError::Invalid)
    );
    let (_, other) = cga_for(&keys()[1], FE80);
    assert_eq!(
        verify_signature(&other, &SHIM6_CGA_TAG, &msg, &sig),
        Err(SignatureError::Invalid)
    );
    // The full check also needs the address to be the parameters' CGA.
    assert!(matches!(
        verify_locator_list(&rfc_address(), &params, 0x0102_0304, &locators, &sig),
        Err(SignatureError::Address(_))
    ));
    // A different generation is a different message.
    assert_eq!(
        verify_locator_list(&addr, &params, 0x0102_0305, &locators, &sig),
        Err(SignatureError::Invalid)
    );
}

/// Checks the signature format without OpenSSL's verifier: `s^e mod n` must be the
/// EMSA-PKCS1-v1_5 encoding of SHA-1(tag ‖ message) (RFC 3447 §9.2), built here by hand
/// with the `sha1` crate.
#[test]
fn signature_is_pkcs1_v1_5_with_sha1() {
    use sha1::Digest as _;
    let key = &keys()[2];
    let msg = b"locator list";
    let sig = sign(key, &SHIM6_CGA_TAG, msg).unwrap();
    let rsa = openssl::rsa::Rsa::private_key_from_pem(&key.to_pem().unwrap()).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let s = openssl::bn::BigNum::from_slice(&sig).unwrap();
    let mut m = openssl::bn::BigNum::new().unwrap();
    m.mod_exp(&s, rsa.e(), rsa.n(), &mut ctx).unwrap();
    let em = m.to_vec_padded(128).unwrap();

    let mut h = sha1::Sha1::new();
    h.update(SHIM6_CGA_TAG);
    h.update(msg);
    let digest = h.finalize();
    // DigestInfo prefix for SHA-1 (RFC 3447 §9.2 note 1).
    let digest_info = hex!("3021300906052b0e03021a05000414");
    let mut want = vec![0x00, 0x01];
    want.resize(128 - 3 - digest_info.len() - 20 + 2, 0xff);
    want.push(0x00);
    want.extend_from_slice(&digest_info);
    want.extend_from_slice(&digest);
    assert_eq!(em, want);
}

#[test]
fn pure_hba_has_no_key_to_verify_with() {
    let set = hba_vector_set();
    let params = set.params(&FE80).to_bytes();
    assert_eq!(
        verify_signature(&params, &SHIM6_CGA_TAG, b"x", &[0; 128]),
        Err(SignatureError::NoPublicKey)
    );
}

#[test]
fn cga_compatible_hba_signs() {
    let key = &keys()[1];
    let g = Generator::hba(&HBA_PREFIXES, Some(&key.public_key().unwrap()), Sec::ZERO).unwrap();
    let (set, _) = g.generate(&mut one_thread()).unwrap();
    assert_eq!(set.kind(), AddressKind::CgaCompatibleHba);
    let (_, addr, params) = set.members()[1].clone();
    assert_eq!(
        verify_cga(&addr, &params).unwrap().kind,
        AddressKind::CgaCompatibleHba
    );
    let sig = sign(key, &SHIM6_CGA_TAG, b"m").unwrap();
    verify_cga_signature(&addr, &params, &SHIM6_CGA_TAG, b"m", &sig).unwrap();
}

#[test]
fn signer_signs_once_per_generation() {
    let key = PrivateKey::from_pem(&keys()[0].to_pem().unwrap()).unwrap();
    let (addr, params) = cga_for(&keys()[0], FE80);
    let mut s = LocatorListSigner::new(key);
    assert!(s.signature_for(7).is_none());
    let sig = s.update(7, &[addr]).unwrap().signature.clone();
    assert_eq!(s.update(7, &[addr]).unwrap().signature, sig);
    assert_eq!(s.signatures_made(), 1);
    assert_eq!(s.signature_for(7), Some(&sig[..]));
    assert_eq!(s.signature_for(8), None);
    verify_locator_list(&addr, &params, 7, &[addr], &sig).unwrap();
    s.update(8, &[addr]).unwrap();
    assert_eq!(s.signatures_made(), 2);
    let other: Ipv6Addr = "2001:db8::7".parse().unwrap();
    s.update(8, &[addr, other]).unwrap();
    assert_eq!(s.signatures_made(), 3);
    assert_eq!(s.current().unwrap().locators, vec![addr, other]);
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cga-lib-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn key_files_are_private_and_not_overwritten() {
    use std::os::unix::fs::PermissionsExt as _;
    let key = &keys()[0];
    let path = temp_path("key.pem");
    key.save(&path, false).unwrap();
    let mode = |p: &PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    let loaded = PrivateKey::load(&path).unwrap();
    assert_eq!(
        loaded.public_key().unwrap().der(),
        key.public_key().unwrap().der()
    );
    assert!(matches!(key.save(&path, false), Err(Error::KeyExists(_))));
    // Too open: refused on load; forcing a save restores 0600.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        PrivateKey::load(&path),
        Err(Error::KeyPermissions { mode: 0o644, .. })
    ));
    keys()[1].save(&path, true).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        PrivateKey::load(&path).unwrap().public_key().unwrap().der(),
        keys()[1].public_key().unwrap().der()
    );
    // Garbage and missing files are clear errors.
    std::fs::write(&path, b"not a key").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(PrivateKey::load(&path), Err(Error::Key(_))));
    assert!(matches!(
        PrivateKey::load(&temp_path("missing.pem")),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        PrivateKey::generate(1000),
        Err(Error::KeyBits(1000))
    ));
}

// ---------------------------------------------------------------- properties

#[derive(Debug, Clone, Copy)]
enum Mode {
    Cga,
    Hba,
    HbaCompat,
}

proptest! {
    // Each case runs a real search (2^16 hashes expected at Sec 1), so keep the count
    // moderate; the keys are the three generated once above.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn generated_addresses_verify(
        prefixes in proptest::collection::hash_set(any::<[u8; 8]>(), 1..4),
        key in 0usize..3,
        sec in 0u8..2,
        mode in prop_oneof![Just(Mode::Cga), Just(Mode::Hba), Just(Mode::HbaCompat)],
        start in any::<[u8; 16]>(),
    ) {
        let prefixes: Vec<Prefix> = prefixes.into_iter().collect();
        let sec = Sec::new(sec).unwrap();
        let pk = keys()[key].public_key().unwrap();
        let g = match mode {
            Mode::Cga => Generator::cga(&pk, sec),
            Mode::Hba => Generator::hba(&prefixes, None, sec).unwrap(),
            Mode::HbaCompat => Generator::hba(&prefixes, Some(&pk), sec).unwrap(),
        };
        let mut cfg = SearchConfig { threads: 2, ..SearchConfig::default() };
        let Outcome::Found { modifier, .. } = g.search(start, &mut cfg).unwrap() else {
            panic!("no cancel flag, yet cancelled");
        };
        let set = g.finish(modifier);
        for p in &prefixes {
            let addr = set.address(p);
            let params = set.params(p).to_bytes();
            let v = verify_cga(&addr, &params).unwrap();
            prop_assert_eq!(v.sec, sec);
            prop_assert_eq!(v.kind, set.kind());
            if !matches!(mode, Mode::Cga) {
                for q in &prefixes {
                    let member = set.address(q);
                    prop_assert!(verify_hba_member(&member, &params).is_ok());
                }
            }
        }
    }
}

// ---------------------------------------------------------------- key decoding

#[test]
fn non_rsa_keys_are_refused() {
    // An EC P-256 SubjectPublicKeyInfo: well-formed DER, but RFC 3972 keys are RSA.
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let ec = openssl::ec::EcKey::generate(&group).unwrap();
    let der = openssl::pkey::PKey::from_ec_key(ec)
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let e = PublicKey::from_der(&der).unwrap_err().to_string();
    assert!(e.contains("RSA"), "{e}");
    // The same key inside CGA Parameters: the signature check names the key as the problem.
    let mut params = vec![0u8; 25];
    params.extend_from_slice(&der);
    let r = verify_signature(&params, &SHIM6_CGA_TAG, b"m", &[0u8; 64]);
    assert!(matches!(r, Err(SignatureError::BadKey(_))), "{r:?}");
    // An RSA key decodes through the fast path to the same key.
    let k = PrivateKey::generate(1024).unwrap().public_key().unwrap();
    assert_eq!(PublicKey::from_der(k.der()).unwrap().bits(), 1024);
}
