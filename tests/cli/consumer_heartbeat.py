"""A ConsumerGroupHeartbeat (KIP-848, API 68, version 1) by hand: a consumer-protocol member
that joins once and then stays silent, so a test can read the heartbeat interval the
coordinator asks for and watch the session timeout remove the member."""
import socket
import struct
import time
import uuid

API_KEY, VERSION = 68, 1


def _uvarint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _compact_string(s):
    if s is None:
        return b"\x00"
    b = s.encode()
    return _uvarint(len(b) + 1) + b


def _read_uvarint(b, i):
    n = shift = 0
    while True:
        x = b[i]
        i += 1
        n |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return n, i


def _read_compact_string(b, i):
    n, i = _read_uvarint(b, i)
    if n == 0:
        return None, i
    return b[i:i + n - 1].decode(), i + n - 1


def _call(bootstrap, request):
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        data = b""
        while len(data) < size:
            chunk = s.recv(size - len(data))
            if not chunk:
                raise RuntimeError("the broker closed the connection mid-answer")
            data += chunk
    return data


# Errors after which a client asks again: the coordinator is loading, moving or being created.
RETRIABLE = {14, 15, 16}  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR


def _find_coordinator(bootstrap, group):
    """FindCoordinator v0 for `group`, as a client sends it first (on Kafka it also creates
    __consumer_offsets); its error code. The test brokers are single nodes, so the answer's
    address is the bootstrap's."""
    g = group.encode()
    request = struct.pack(">hhih", 10, 0, 1, 9) + b"cli-probe" + struct.pack(">h", len(g)) + g
    data = _call(bootstrap, request)
    return struct.unpack_from(">h", data, 4)[0]


def join(bootstrap, group, topic, rebalance_timeout_ms=30000, timeout_s=30):
    """Joins `group` subscribed to `topic` (member epoch 0, a member id of its own) and returns
    the answer's error code, message, member id, member epoch and heartbeat interval. Asks
    again, as a client does, while the coordinator is not ready."""
    deadline = time.time() + timeout_s
    while True:
        found = _find_coordinator(bootstrap, group)
        answer = _join_once(bootstrap, group, topic, rebalance_timeout_ms) if found == 0 else {"error": found}
        if answer["error"] not in RETRIABLE or time.time() > deadline:
            return answer
        time.sleep(0.2)


def _join_once(bootstrap, group, topic, rebalance_timeout_ms):
    member_id = uuid.uuid4().hex[:22]
    body = (_compact_string(group) + _compact_string(member_id) + struct.pack(">i", 0)
            + _compact_string(None) + _compact_string(None)            # instance id, rack id
            + struct.pack(">i", rebalance_timeout_ms)
            + _uvarint(2) + _compact_string(topic)                      # subscribed topic names
            + _compact_string(None) + _compact_string(None)             # regex, server assignor
            + _uvarint(1)                                               # owned partitions: none
            + b"\x00")                                                  # tagged fields
    # Request header v2: key, version, correlation id, client id (a plain nullable string),
    # tagged fields.
    request = struct.pack(">hhih", API_KEY, VERSION, 1, 9) + b"cli-probe" + b"\x00" + body
    data = _call(bootstrap, request)
    i = 4                                     # correlation id
    _, i = _read_uvarint(data, i)             # response header tagged fields
    _, error = struct.unpack_from(">ih", data, i)
    i += 6
    message, i = _read_compact_string(data, i)
    got_member_id, i = _read_compact_string(data, i)
    epoch, interval = struct.unpack_from(">ii", data, i)
    return {"error": error, "message": message, "member_id": got_member_id or member_id, "epoch": epoch,
            "heartbeat_interval_ms": interval}
