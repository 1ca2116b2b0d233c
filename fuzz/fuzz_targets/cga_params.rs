//! Arbitrary octets as CGA Parameters (RFC 3972 §3 with RFC 4581 extensions): the checked
//! view, the DER length of the public key, the extension iterator with the Multi-Prefix
//! extension, and the parsed form; what parses must emit to the very same octets (unknown
//! extensions and reserved bits are kept, because they are hashed), and the `cga`
//! verifier must give a reason rather than panic.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use shim6_wire::cga::{ExtensionRepr, Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    for ext in packet.extensions() {
        if let Ok(e) = ExtensionRepr::parse(&ext) {
            let _ = e.to_string();
        }
    }
    let _ = packet.multi_prefix();
    let Ok(repr) = Repr::parse(&packet) else {
        return;
    };
    let _ = repr.to_string();
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(&buf[..], &data[..buf.len()], "emit(parse(x)) != x");
    // The verifier on an address with the structure's own prefix.
    let mut a = [0u8; 16];
    a[..8].copy_from_slice(&data[16..24]);
    a[8..].copy_from_slice(&[0x3c, 0x4a, 0x5b, 0xf6, 0xff, 0xb4, 0xca, 0x6c]);
    let _ = cga::verify(&Ipv6Addr::from(a), data);
});
