#!/usr/bin/env python3
"""Independent test vectors for the RFC 4285 MN-HA authenticator (mip6 crate, src/auth.rs).

Built only from RFC 4285 §5, §5.1, §6 and RFC 6275 §6.1.1 / §6.1.7 / §6.1.8 with Python's
hmac/hashlib: a Binding Update and a Binding Acknowledgement, each with a replay-protection
timestamp and an MN-HA authentication option, checksum included.
"""
import hashlib
import hmac
import ipaddress
import struct

HOA = ipaddress.IPv6Address("2001:db8:1::100").packed
HA = ipaddress.IPv6Address("2001:db8:1::1").packed
COA = ipaddress.IPv6Address("2001:db8:a::10").packed
KEY = bytes(range(16))
SPI = 0x100
TS = 0xE9B1C2D380000000


def checksum(src, dst, mh):
    pseudo = src + dst + struct.pack("!IxxxB", len(mh), 135)
    data = pseudo + mh
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def message(fixed, pseudo_src, pseudo_dst):
    # fixed: the 6 octets after the checksum (BU: seq, flags, lifetime; BA: status,
    # flags, seq, lifetime). Options from offset 12: PadN(4) 12..18, timestamp 18..28
    # (8n+2), Pad1 at 28, MN-HA option at 29 (4n+1) ending at 48.
    opts = b"\x01\x04\x00\x00\x00\x00" + b"\x0a\x08" + struct.pack("!Q", TS) + b"\x00"
    opts += b"\x09\x11\x01" + struct.pack("!I", SPI)
    head = bytes([59, 5, fixed[0], 0]) + b"\x00\x00" + fixed[1]
    mh_to_spi = head + opts
    assert len(mh_to_spi) == 36
    auth = hmac.new(KEY, COA + HOA + mh_to_spi, hashlib.sha1).digest()[:12]
    mh = bytearray(mh_to_spi + auth)
    assert len(mh) == 48
    c = checksum(pseudo_src, pseudo_dst, bytes(mh))
    mh[4:6] = struct.pack("!H", c)
    return bytes(mh), auth


# BU: seq 7, A|H, lifetime 15 units; pseudo-header HoA -> HA.
bu, bu_auth = message((5, struct.pack("!HHH", 7, 0xC000, 15)), HOA, HA)
# BA: status 0, seq 7, lifetime 15; pseudo-header HA -> HoA.
ba, ba_auth = message((6, struct.pack("!BBHH", 0, 0, 7, 15)), HA, HOA)
print("BU", bu.hex())
print("BU authenticator", bu_auth.hex())
print("BA", ba.hex())
print("BA authenticator", ba_auth.hex())
