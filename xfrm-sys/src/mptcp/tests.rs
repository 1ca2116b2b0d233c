//! Byte-level tests of the `mptcp_pm` messages against captures from kernel 6.18.

use super::*;
use crate::genl::{Family, Message};

/// The `CTRL_CMD_NEWFAMILY` answer for `mptcp_pm` captured in a fresh netns on 6.18.
const NEWFAMILY: &[u8] = include_bytes!("../testdata/mptcp/newfamily_mptcp_pm.bin");

fn genl_of(bytes: &[u8]) -> Message {
    let ty = u16::from_ne_bytes([bytes[4], bytes[5]]);
    Message::parse(ty, &bytes[16..]).unwrap()
}

#[test]
fn captured_family_resolves_with_groups() {
    let fam = Family::from_message(&genl_of(NEWFAMILY)).unwrap();
    assert_eq!(fam.name, FAMILY_NAME);
    assert_eq!(fam.id, 28);
    assert_eq!(fam.version, 1);
    assert_eq!(fam.hdrsize, 0);
    assert_eq!(fam.group(EVENTS_GROUP), Some(9));
    assert_eq!(fam.group("mptcp_pm_cmds"), Some(8));
}
