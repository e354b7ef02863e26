/**
 * The soak's NBD client: a long-lived python3-libnbd worker (Debian's
 * /usr/bin/python3) speaking JSON lines, one request at a time, so the
 * TypeScript side owns every decision and every deadline (it kills the
 * worker when a request does not answer in time).
 *
 * Block format (4 KiB): the 16-byte stamp `<QQ` (version, block index)
 * repeated 256 times. A read decodes to a version (0 = all zeroes) only when
 * the whole block is one stamp of this very block; anything else (a torn
 * write at 512-byte sectors, another block's data, garbage) is reported as
 * garbage with the distinct stamps found, so a violation says what was read.
 *
 * Requests → replies:
 *   {"op":"connect","uri":U}            → {"ok":true,"sizeBytes":N}
 *   {"op":"write","block":B,"version":V} / {"op":"zero","block":B} /
 *   {"op":"trim","block":B} / {"op":"flush"} → {"ok":true}
 *   {"op":"read","block":B}             → {"ok":true,"version":V} | {"ok":true,"garbage":"…"}
 *   {"op":"read-range","first":F,"count":C} → {"ok":true,"blocks":[V | "garbage…", …]}
 *   any failure                         → {"ok":false,"error":"…"} (the connection is dropped)
 */
export const SOAK_WORKER_PY = String.raw`import json, struct, sys
import nbd

BLOCK = 4096
ZERO = bytes(BLOCK)
handle = None

def stamp(version, block):
    return struct.pack("<QQ", version, block) * (BLOCK // 16)

def decode(data, block):
    if data == ZERO:
        return 0
    version, owner = struct.unpack_from("<QQ", data, 0)
    if owner == block and data == stamp(version, block):
        return version
    seen = sorted({struct.unpack_from("<QQ", data, i) for i in range(0, BLOCK, 512)})
    return "garbage: sector stamps " + ", ".join("%d@%d" % s for s in seen[:8])

def drop():
    global handle
    if handle is not None:
        try:
            handle.shutdown()
        except nbd.Error:
            pass
        handle = None

def connect(uri):
    global handle
    drop()
    h = nbd.NBD()
    h.connect_uri(uri)
    handle = h
    return {"sizeBytes": h.get_size()}

def need():
    if handle is None:
        raise nbd.Error("not connected", 0)
    return handle

def serve(request):
    op = request["op"]
    if op == "connect":
        return connect(request["uri"])
    h = need()
    if op == "write":
        h.pwrite(stamp(request["version"], request["block"]), request["block"] * BLOCK)
        return {}
    if op == "zero":
        h.zero(BLOCK, request["block"] * BLOCK)
        return {}
    if op == "trim":
        h.trim(BLOCK, request["block"] * BLOCK)
        return {}
    if op == "flush":
        h.flush()
        return {}
    if op == "read":
        found = decode(h.pread(BLOCK, request["block"] * BLOCK), request["block"])
        return {"version": found} if isinstance(found, int) else {"garbage": found}
    if op == "read-range":
        first, count = request["first"], request["count"]
        data = h.pread(count * BLOCK, first * BLOCK)
        return {"blocks": [decode(data[i * BLOCK:(i + 1) * BLOCK], first + i) for i in range(count)]}
    raise ValueError("unknown op " + op)

for line in sys.stdin:
    try:
        reply = serve(json.loads(line))
        reply["ok"] = True
    except (nbd.Error, ValueError, KeyError) as error:
        drop()
        reply = {"ok": False, "error": str(error)}
    print(json.dumps(reply), flush=True)
`;
