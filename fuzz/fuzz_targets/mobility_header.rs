//! Arbitrary octets as a MIPv6 Mobility Header: the checked view and the parsed
//! representation (checksum bypassed under `cfg(fuzzing)`); a message that parses must
//! emit and parse back to the same message.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use shim6_wire::mip6::{Packet, Repr};

const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let Ok(repr) = Repr::parse(&packet, &SRC, &DST) else {
        return;
    };
    let _ = repr.to_string();
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut out = Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut out, &SRC, &DST);
    let again = Repr::parse(&Packet::new_checked(&buf[..]).expect("emitted MH is valid"), &SRC, &DST)
        .expect("emitted MH parses");
    assert_eq!(again, repr, "parse(emit(parse(x))) != parse(x)");
});
