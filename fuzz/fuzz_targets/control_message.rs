//! Arbitrary octets as a Shim6 control message (starting at the Shim6 header): the checked
//! view, `Message::parse`, and — when that succeeds — emit and re-parse, which must give
//! back the same message. Under `cfg(fuzzing)` the checksum check is bypassed so the
//! fuzzer reaches the parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shim6_wire::shim6::Message;
use shim6_wire::shim6::control::Packet;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let _ = packet.unrecognized_critical_option();
    let Ok(msg) = Message::parse(&packet) else {
        return;
    };
    let _ = msg.to_string();
    let mut buf = vec![0u8; msg.buffer_len()];
    if msg.emit(&mut Packet::new_unchecked(&mut buf[..])).is_ok() {
        let again = Message::parse_bytes(&buf).expect("what we emit parses");
        assert_eq!(again, msg, "parse(emit(parse(x))) != parse(x)");
    }
});
