//! Arbitrary octets as a Shim6 options area: the zero-copy iterator, the typed parse of
//! each option, and — for an area that parses whole — emit and re-parse, which must give
//! back the same options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shim6_wire::shim6::option::{self, Options, Repr};

fuzz_target!(|data: &[u8]| {
    for raw in Options::new(data, 16) {
        let Ok(raw) = raw else { break };
        if let Ok(opt) = Repr::parse(&raw) {
            let _ = opt.to_string();
        }
    }
    let Ok(all) = option::parse_all(Options::new(data, 16)) else {
        return;
    };
    let mut buf = vec![0u8; option::options_len(&all)];
    option::emit_all(&all, &mut buf);
    let again = option::parse_all(Options::new(&buf, 16)).expect("what we emit parses");
    assert_eq!(again, all, "parse(emit(parse(x))) != parse(x)");
});
