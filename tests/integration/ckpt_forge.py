#!/usr/bin/env python3
"""Forges checkpoint files the way a buggy tool or an attacker would: it
rewrites fields and recomputes every checksum as runnel does, so that only
runnel's bounds, type and consistency checks can catch the damage.

  ckpt_forge.py meta DIR EXPR       evaluate EXPR (python, `m` the metadata
                                    dict, `part(node)` its first part of
                                    node) on DIR/_metadata and .copy, then
                                    rewrite both with their trailers
  ckpt_forge.py handle-states DIR/handle N   the state count set to N
  ckpt_forge.py handle-timers DIR/handle N   the trailing timer count set to N
  ckpt_forge.py mem-len FILE         the memory table's first value length
                                    set to 2^30 - 1 (beyond the file)
  ckpt_forge.py mem-state FILE       its state index set to 0xfffffff0
  ckpt_forge.py meta-id DIR          print the metadata's id
  ckpt_forge.py rehash CKPT-DIR ROOT         the size and XXH3-128 of every
                                    file the metadata names recomputed

XXH3-128 comes from libxxhash (installed with libxxhash-dev), through
ctypes: canonical form, big-endian, high half first, as XXH128_canonical.
"""
import ctypes
import ctypes.util
import json
import os
import struct
import sys


class H128(ctypes.Structure):
    _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]


_lib = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
_lib.XXH3_128bits.restype = H128
_lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh3_hex(data):
    h = _lib.XXH3_128bits(data, len(data))
    return "%016x%016x" % (h.high64, h.low64)


TRAILER = b"\n#xxh3-128 "


def read_meta(path):
    raw = open(path, "rb").read()
    cut = raw.rfind(TRAILER)
    return json.loads(raw[:cut] if cut >= 0 else raw)


def write_meta(path, m):
    data = json.dumps(m, indent=1, sort_keys=True).encode()
    open(path, "wb").write(data + TRAILER + xxh3_hex(data).encode() + b"\n")


def forge_meta(d, expr):
    for name in ("_metadata", "_metadata.copy"):
        p = os.path.join(d, name)
        m = read_meta(p)

        def part(node):
            return next(x for x in m["parts"] if x["node"] == node)

        exec(expr, {"m": m, "part": part})
        write_meta(p, m)


def rehash(d, root):
    for name in ("_metadata", "_metadata.copy"):
        p = os.path.join(d, name)
        m = read_meta(p)
        for x in m["parts"]:
            files = ([x["file"]] if isinstance(x.get("file"), dict) else []) + \
                (x.get("state") or [])
            for f in files:
                data = open(os.path.join(root, f["path"]), "rb").read()
                f["size"] = len(data)
                f["xxh3"] = xxh3_hex(data)
        write_meta(p, m)


def handle_states(path, n):
    b = bytearray(open(path, "rb").read())
    b[8:12] = struct.pack("<I", n)
    open(path, "wb").write(b)


def mem_field(path, off, n):
    """The memory backend's table ("RNMS", version, then records: kind u8,
    state u32, key group u32, key length u32, namespace length u8, map-key
    length u32, value length u32, bytes): a field of the first record."""
    b = bytearray(open(path, "rb").read())
    b[off:off + 4] = struct.pack("<I", n)
    open(path, "wb").write(b)


def handle_timers(path, n):
    b = bytearray(open(path, "rb").read())
    b[-8:] = struct.pack("<Q", n)
    open(path, "wb").write(b)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "meta":
        forge_meta(sys.argv[2], sys.argv[3])
    elif cmd == "meta-id":
        print(read_meta(os.path.join(sys.argv[2], "_metadata"))["id"])
    elif cmd == "rehash":
        rehash(sys.argv[2], sys.argv[3])
    elif cmd == "handle-states":
        handle_states(sys.argv[2], int(sys.argv[3], 0))
    elif cmd == "mem-len":
        mem_field(sys.argv[2], 26, 0x3fffffff)
    elif cmd == "mem-state":
        mem_field(sys.argv[2], 9, 0xfffffff0)
    elif cmd == "handle-timers":
        handle_timers(sys.argv[2], int(sys.argv[3], 0))
    else:
        sys.exit("unknown command " + cmd)
