use super::*;

const L: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa1, 0, 0, 0, 0, 1);
const P: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb1, 0, 0, 0, 0, 1);

/// An IPv6 packet of `total` octets from L to P with next header `nh`, the payload
/// bytes counting up.
fn packet(total: usize, nh: u8) -> Vec<u8> {
    let mut p = vec![0x60, 0x0a, 0xbc, 0xde];
    p.extend_from_slice(&u16::try_from(total - 40).unwrap().to_be_bytes());
    p.extend_from_slice(&[nh, 64]);
    p.extend_from_slice(&L.octets());
    p.extend_from_slice(&P.octets());
    p.extend((0..total - 40).map(|i| i as u8));
    p
}

/// RFC 1071 written out again, independently of `shim6_wire::checksum`.
fn rfc1071(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        acc += u64::from(w);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

#[test]
fn tun_mtu_is_the_smallest_link_minus_eight() {
    assert_eq!(tun_mtu([1500, 9000]), Some(1492));
    assert_eq!(tun_mtu([9000]), Some(8992));
    assert_eq!(tun_mtu([1300, 1500]), Some(1292));
    assert_eq!(tun_mtu([1280]), Some(1280), "never below the IPv6 minimum");
    assert_eq!(tun_mtu([]), None);
}

#[test]
fn reported_mtu_and_mss() {
    assert_eq!(ptb_mtu(1500), 1492);
    assert_eq!(ptb_mtu(1288), 1280);
    assert_eq!(ptb_mtu(1280), 1280);
    assert_eq!(ptb_mtu(0), 1280);
    assert_eq!(mss_for_mtu(1492), 1432);
    assert_eq!(mss_for_mtu(1500), 1440);
    assert_eq!(mss_for_mtu(10), 0);
    assert_eq!(mss_for_mtu(u32::MAX), u16::MAX);
    assert!(too_big(1501, 1500));
    assert!(!too_big(1500, 1500));
}

#[test]
fn ptb_for_a_full_size_packet_quotes_1232_octets() {
    let orig = packet(1500, 6);
    let mut out = [0xa5u8; 1500];
    let n = packet_too_big(&orig, 1492, &mut out).unwrap();
    assert_eq!(n, 1280, "RFC 4443 §2.4 c: no larger than the minimum MTU");
    let o = &out[..n];
    // IPv6 header: version 6, TC and flow label 0, payload 1240, ICMPv6, hop limit 255,
    // from the peer to the application.
    assert_eq!(&o[..4], [0x60, 0, 0, 0]);
    assert_eq!(&o[4..8], [0x04, 0xd8, 58, 255]);
    assert_eq!(&o[8..24], P.octets());
    assert_eq!(&o[24..40], L.octets());
    // ICMPv6: type 2, code 0, MTU 1492.
    assert_eq!(&o[40..42], [2, 0]);
    assert_eq!(&o[44..48], 1492u32.to_be_bytes());
    assert_eq!(&o[48..], &orig[..1232]);
    // Checksum over the pseudo-header (RFC 4443 §2.3), computed independently.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&P.octets());
    pseudo.extend_from_slice(&L.octets());
    pseudo.extend_from_slice(&1240u32.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let mut msg = o[40..].to_vec();
    msg[2..4].fill(0);
    pseudo.extend_from_slice(&msg);
    assert_eq!(u16::from_be_bytes([o[42], o[43]]), rfc1071(&pseudo));
    assert!(icmp_checksum_ok(o));
    let view = icmp::Packet::new_checked(&o[40..]).unwrap();
    assert!(view.verify_checksum(&P, &L));
    assert_eq!(out[n], 0xa5, "nothing written past the message");
}

#[test]
fn ptb_for_a_small_packet_quotes_all_of_it() {
    // A 1300-octet UDP datagram on a 1280 path: all 1232 quoted would not fit; a 100-
    // octet packet is quoted whole.
    let orig = packet(100, 17);
    let mut out = [0u8; 2000];
    let n = packet_too_big(&orig, 1280, &mut out).unwrap();
    assert_eq!(n, 40 + 8 + 100);
    assert_eq!(&out[48..n], &orig[..]);
    assert_eq!(&out[4..6], 108u16.to_be_bytes());
    assert!(icmp_checksum_ok(&out[..n]));
    // One flipped bit breaks it: the check is real.
    out[60] ^= 1;
    assert!(!icmp_checksum_ok(&out[..n]));
}

#[test]
fn ptb_refusals() {
    let mut out = [0u8; 1280];
    assert_eq!(
        packet_too_big(&[0x60; 20], 1280, &mut out),
        Err(PtbError::NotIpv6)
    );
    let mut v4 = packet(100, 17);
    v4[0] = 0x45;
    assert_eq!(packet_too_big(&v4, 1280, &mut out), Err(PtbError::NotIpv6));
    // About an ICMPv6 error (Destination Unreachable): never (RFC 4443 §2.4 e.1).
    let mut err = packet(100, 58);
    err[40] = 1;
    assert_eq!(
        packet_too_big(&err, 1280, &mut out),
        Err(PtbError::AboutIcmpError)
    );
    // About an informational message (Echo Request, 128): fine.
    err[40] = 128;
    assert!(packet_too_big(&err, 1280, &mut out).is_ok());
    // A multicast or unspecified source identifies no single node (e.6).
    let mut m = packet(100, 17);
    m[8] = 0xff;
    assert!(matches!(
        packet_too_big(&m, 1280, &mut out),
        Err(PtbError::BadSource(_))
    ));
    let mut u = packet(100, 17);
    u[8..24].fill(0);
    assert!(matches!(
        packet_too_big(&u, 1280, &mut out),
        Err(PtbError::BadSource(_))
    ));
    let mut small = [0u8; 100];
    assert_eq!(
        packet_too_big(&packet(100, 17), 1280, &mut small),
        Err(PtbError::BufferTooSmall {
            needed: 148,
            available: 100
        })
    );
}

#[test]
fn an_icmp_error_behind_extension_headers_is_still_recognised() {
    // Destination Options (8 octets, PadN) then ICMPv6 type 3 (Time Exceeded).
    let mut p = packet(100, 60);
    p[40..48].copy_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]);
    p[48] = 3;
    let mut out = [0u8; 1280];
    assert_eq!(
        packet_too_big(&p, 1280, &mut out),
        Err(PtbError::AboutIcmpError)
    );
}

#[test]
fn clamp_rules() {
    let r = MssClamp::table_body("shim6", Mss::Route).unwrap();
    assert!(
        r.contains("oifname \"shim6\" tcp flags & syn == syn tcp option maxseg size set rt mtu"),
        "{r}"
    );
    let f = MssClamp::table_body("shim6", Mss::Fixed(1432)).unwrap();
    assert!(
        f.contains("tcp option maxseg size > 1432 tcp option maxseg size set 1432"),
        "{f}"
    );
    assert!(MssClamp::table_body("a\"b", Mss::Route).is_err());
}
