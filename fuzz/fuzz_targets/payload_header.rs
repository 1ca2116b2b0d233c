//! Arbitrary octets as an IPv6 packet on the data path: the extension-header walker, locating
//! and stripping a payload extension header, and inserting one. Properties: whatever the
//! input, nothing panics; when insertion succeeds, both shifts (moving the front into
//! headroom, moving the tail into tailroom) give the same packet, and removing the header
//! again gives back the original octets exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shim6_wire::ipv6::chain::Walker;
use shim6_wire::ipv6::shim::{self, Shift};
use shim6_wire::shim6::ContextTag;

const ROOM: usize = 64;

fuzz_target!(|data: &[u8]| {
    if let Ok(walker) = Walker::from_packet(data) {
        for step in walker {
            if step.is_err() {
                break;
            }
        }
    }
    let _ = shim::locate(data);

    // Strip whatever payload header there is.
    let mut buf = vec![0u8; ROOM + data.len() + ROOM];
    buf[ROOM..ROOM + data.len()].copy_from_slice(data);
    let _ = shim::remove_payload_header(&mut buf, ROOM..ROOM + data.len(), Shift::Front);

    // Insert one with both shifts, then remove it.
    let tag = ContextTag::from_masked(0x0123_4567_89ab);
    let mut front = vec![0u8; ROOM + data.len() + ROOM];
    front[ROOM..ROOM + data.len()].copy_from_slice(data);
    let mut tail = front.clone();
    let Ok(f) = shim::insert_payload_header(&mut front, ROOM..ROOM + data.len(), tag, Shift::Front)
    else {
        return;
    };
    let t = shim::insert_payload_header(&mut tail, ROOM..ROOM + data.len(), tag, Shift::Tail)
        .expect("insertion does not depend on the shift");
    assert_eq!(&front[f.clone()], &tail[t], "the two shifts disagree");
    let removed = shim::remove_payload_header(&mut front, f, Shift::Front)
        .expect("what we inserted can be removed");
    assert_eq!(removed.tag, tag);
    // Octets past the IPv6 Payload Length are not part of the packet and are not kept.
    let original = &data[..removed.packet.len().min(data.len())];
    assert_eq!(&front[removed.packet], original, "insert then remove changed the packet");
});
