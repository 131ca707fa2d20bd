"""dora._protocol: codec edge cases, the socket transport and the sender pool."""

import os
import socket
import struct
import threading

import pytest

from dora import _protocol as p


# -- codec


def frame_of(msg):
    return p.encode(msg)


def test_every_message_round_trips():
    md = p.Metadata(
        12,
        "ctx",
        {"b": True, "i": -3, "f": 2.5, "s": "é", "il": [1, 2], "fl": [0.5], "sl": ["a"], "none": p.FloatList()},
        p.ArrayInfo("+l", 2, 0, 1, (None, (0, 12)), (p.ArrayInfo("i", 3, 1, 0, ((16, 1), (24, 12))),)),
    )
    msgs = [
        p.Register(1, "df", "node"),
        p.SendOutput("o", md, b"x" * 9),
        p.SendOutput("o", p.Metadata(1), None),
        p.SendOutput("o", p.Metadata(1), b""),  # inline and empty is not "none"
        p.SendOutput("o", p.Metadata(1), p.Shm(True, 4, 65536, 100)),
        p.CloseOutputs(("a", "b")),
        p.Release((1, 2)),
        p.DropRegions(()),
        p.StopDataflow("why"),
        p.NextEvents(3),
        p.RegisterReply(False, "no"),
        p.Released((9,)),
        p.Events((p.Input("x", md, b"abc"), p.InputClosed("x"), p.Error("e"), p.Unmap(4), p.Stop())),
    ]
    for m in msgs:
        f = p.encode(m)
        assert p.parse_header(f)[0] == len(f)
        got = p.decode(f)
        assert type(got) is type(m)
        assert p.encode(got) == f


def test_nfds_counts_attached_regions():
    f = p.encode(p.Events((p.Input("a", p.Metadata(), p.Shm(True, 1, 8, 8)), p.Input("b", p.Metadata(), p.Shm(False, 1, 8, 8)))))
    assert p.parse_header(f)[2] == 1
    assert p.parse_header(p.encode(p.SendOutput("o", p.Metadata(), p.Shm(True, 1, 8, 8))))[2] == 1


def test_inline_data_is_aligned_to_8_from_the_frame_start():
    for id_ in ("a", "ab", "abc", "abcdefgh"):
        f = p.encode(p.SendOutput(id_, p.Metadata(), b"DATA"))
        assert f.index(b"DATA") % 8 == 0


def test_parameters_follow_the_operator_rules():
    f = p.encode(p.SendOutput("o", p.Metadata(0, "", {"l": [1, 2.5], "e": [], "n": 3.0}), None))
    params = p.decode(f).metadata.parameters
    assert params == {"l": [1.0, 2.5], "e": [], "n": 3.0}
    assert type(params["l"]) is p.FloatList and type(params["e"]) is p.IntList
    with pytest.raises(TypeError, match="cannot be sent"):
        p.encode(p.SendOutput("o", p.Metadata(0, "", {"d": {"x": 1}}), None))
    with pytest.raises(TypeError, match="only ints, only floats or only strs"):
        p.encode(p.SendOutput("o", p.Metadata(0, "", {"m": [1, "a"]}), None))
    with pytest.raises(TypeError, match="at most 1024"):
        p.encode(p.SendOutput("o", p.Metadata(0, "", {str(i): i for i in range(1025)}), None))


def test_split_user_metadata():
    assert p.split_user_metadata(None) == ("", {})
    assert p.split_user_metadata({"open_telemetry_context": "t", "a": 1}) == ("t", {"a": 1})
    with pytest.raises(TypeError):
        p.split_user_metadata({"open_telemetry_context": 5})
    with pytest.raises(TypeError):
        p.split_user_metadata([1])


def test_ids_longer_than_a_u16_are_refused():
    with pytest.raises(ValueError, match="longer than"):
        p.encode(p.Register(1, "x" * 70000, "n"))


@pytest.mark.parametrize(
    "frame,match",
    [
        (b"\x05\x00\x00\x00", "shorter than its header"),
        (p.encode(p.Register(1, "df", "node"))[:-1], "frame_len"),
        (struct.pack("<IBBH", 9, p.NEXT_EVENTS, 0, 0) + b"\x01", "need 4 bytes"),
        (struct.pack("<IBBHI", 12, p.NEXT_EVENTS, 0, 0, 0), "0 events"),
        (struct.pack("<IBBHBI", 13, p.REGISTER_REPLY, 0, 0, 2, 0), "boolean 2"),
        (struct.pack("<IBBH", 8, 99, 0, 0), "unknown kind 99"),
        (p.encode(p.NextEvents(1)) + b"\x00", "frame_len"),
        (struct.pack("<IBBHIB", 13, p.EVENTS, 0, 0, 1, 9), "event type 9"),
        (struct.pack("<IBBHI", 12, p.RELEASE, 0, 0, 1000), "cannot fit"),
    ],
)
def test_malformed_frames_are_refused(frame, match):
    with pytest.raises(p.MalformedFrame, match=match):
        p.decode(frame)


def test_trailing_bytes_and_bad_data_are_refused():
    f = bytearray(p.encode(p.NextEvents(1)) + b"\x00")
    struct.pack_into("<I", f, 0, len(f))
    with pytest.raises(p.MalformedFrame, match="trailing"):
        p.decode(bytes(f))
    f = bytearray(p.encode(p.SendOutput("o", p.Metadata(), p.Shm(False, 1, 8, 8))))
    struct.pack_into("<Q", f, len(f) - 8, 9)  # len > region_size
    with pytest.raises(p.MalformedFrame, match="region of 8"):
        p.decode(bytes(f))
    f = bytearray(p.encode(p.SendOutput("o", p.Metadata(), None)))
    f[-1] = 7
    with pytest.raises(p.MalformedFrame, match="data location 7"):
        p.decode(bytes(f))


def test_array_nesting_is_bounded():
    a = p.ArrayInfo("i", 1, 0, 0)
    for _ in range(40):
        a = p.ArrayInfo("+l", 1, 0, 0, (), (a,))
    with pytest.raises(ValueError, match="nested"):
        p.encode(p.SendOutput("o", p.Metadata(0, "", {}, a), None))


# -- transport


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ca, cb = p.Conn(a), p.Conn(b)
    yield ca, cb
    ca.close()
    cb.close()


def memfd(content=b"x"):
    fd = os.memfd_create("t", os.MFD_CLOEXEC)
    os.write(fd, content)
    return fd


def test_frames_and_descriptors_travel(pair):
    a, b = pair
    fd = memfd(b"hello")
    a.write_frame(p.encode(p.SendOutput("o", p.Metadata(), p.Shm(True, 1, 5, 5))), [fd])
    a.write_frame(p.encode(p.NextEvents(2)))
    f, fds = b.read_frame()
    assert isinstance(p.decode(f), p.SendOutput) and len(fds) == 1
    assert os.pread(fds[0], 5, 0) == b"hello"
    assert not os.get_inheritable(fds[0])  # MSG_CMSG_CLOEXEC
    f, fds2 = b.read_frame()
    assert p.decode(f) == p.NextEvents(2) and fds2 == []
    for x in (fd, fds[0]):
        os.close(x)


def test_frames_split_across_writes_are_reassembled(pair):
    a, b = pair
    frames = [p.encode(p.StopDataflow("x" * n)) for n in (0, 3, 100000)]
    blob = b"".join(frames)
    done = threading.Event()

    def dribble():
        i = 0
        for step in (1, 2, 7, 5000, 1 << 20):
            a.sock.sendall(blob[i : i + step])
            i += step
        done.set()

    t = threading.Thread(target=dribble)
    t.start()
    for want in frames:
        f, _ = b.read_frame()
        assert f == want
    t.join()


def test_descriptors_queue_in_arrival_order(pair):
    """Descriptors may come before their frame's first byte; a frame takes
    the next nfds of the queue."""
    a, b = pair
    fd1, fd2 = memfd(b"1"), memfd(b"2")
    f1 = p.encode(p.SendOutput("o", p.Metadata(), p.Shm(True, 1, 1, 1)))
    f2 = p.encode(p.SendOutput("o", p.Metadata(), p.Shm(True, 2, 1, 1)))
    # Both descriptors ride on the first byte of the first frame.
    a.sock.sendmsg([f1[:1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("ii", fd1, fd2))])
    a.sock.sendall(f1[1:] + f2)
    _, got1 = b.read_frame()
    _, got2 = b.read_frame()
    assert [os.pread(got1[0], 1, 0), os.pread(got2[0], 1, 0)] == [b"1", b"2"]
    for x in (fd1, fd2, got1[0], got2[0]):
        os.close(x)


def test_a_frame_announcing_missing_descriptors_is_refused(pair):
    a, b = pair
    f = bytearray(p.encode(p.NextEvents(1)))
    f[5] = 1
    a.sock.sendall(f)
    with pytest.raises(p.MalformedFrame, match="announces 1 descriptors, 0 arrived"):
        b.read_frame()


def test_read_timeout_keeps_a_partial_frame(pair):
    a, b = pair
    f = p.encode(p.StopDataflow("partial"))
    assert b.read_frame(0) is None
    a.sock.sendall(f[:10])
    assert b.read_frame(0.01) is None
    a.sock.sendall(f[10:])
    got, _ = b.read_frame(0)
    assert got == f


def test_eof_between_frames_and_inside_one(pair):
    a, b = pair
    a.sock.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError):
        b.read_frame()
    x, y = socket.socketpair()
    cx, cy = p.Conn(x), p.Conn(y)
    x.sendall(p.encode(p.NextEvents(1))[:5])
    x.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionError, match="middle of a frame"):
        cy.read_frame()
    cx.close()
    cy.close()


def test_close_closes_unclaimed_descriptors(pair):
    a, b = pair
    fd = memfd()
    a.sock.sendmsg([b"\x00"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
    assert b.read_frame(0.05) is None  # one byte of a header: no frame yet
    (received,) = b._fds
    b.close()
    with pytest.raises(OSError):
        os.fstat(received)
    os.close(fd)


# -- shared memory


def test_region_write_and_read_only_mapping():
    r = p.Region("dora-test", 65536)
    try:
        assert r.write(b"abc") == 3
        assert r.write(memoryview(bytearray(b"\x01\x02\x03\x04")).cast("I")) == 4
        dup = os.dup(r.fd)
        addr = p.map_read_only(dup, 65536)
        import ctypes

        assert ctypes.string_at(addr, 4) == b"\x01\x02\x03\x04"
        p.unmap(addr, 65536)
        with pytest.raises(OSError):
            os.fstat(dup)  # map_read_only closed it
        with pytest.raises(ValueError):
            r.write(bytes(65537))
    finally:
        r.close()
    assert r.fd == -1


def test_map_read_only_checks_the_size():
    fd = memfd(b"1234")
    with pytest.raises(p.MalformedFrame, match="claims 65536 bytes"):
        p.map_read_only(fd, 65536)


# -- the sender pool


class FakeRegion:
    made = 0

    def __init__(self, name, size):
        self.size = size
        self.closed = False
        FakeRegion.made += 1

    def close(self):
        self.closed = True


def test_size_for():
    assert p.size_for(1) == p.MIN_REGION_SIZE
    assert p.size_for(65536) == 65536
    assert p.size_for(65537) == 131072
    assert p.size_for(4_000_000) == 4 << 20


def test_pool_reuses_regions_that_came_back():
    pool = p.SenderPool("t", create=FakeRegion)
    r1 = pool.get(100_000)
    assert (r1.id, r1.size, r1.announced) == (1, 131072, False)
    assert pool.put(r1.id) == 0
    assert pool.stats() == (1, 0)
    r2 = pool.get(70_000)
    assert r2 is r1
    assert pool.put(12345) == 0  # unknown ids are ignored


def test_pool_picks_the_smallest_region_that_fits_without_waste():
    pool = p.SenderPool("t", create=FakeRegion)
    big, small = pool.get(4 << 20), pool.get(100)
    pool.put(big.id)
    pool.put(small.id)
    assert pool.get(50).size == p.MIN_REGION_SIZE
    # A 4 MiB region is more than twice what 100 KB needs: a new one.
    r = pool.get(100_000)
    assert r.size == 131072 and r is not big


def test_pool_keeps_at_most_max_free_idle_regions():
    pool = p.SenderPool("t", create=FakeRegion)
    rs = [pool.get(10) for _ in range(p.MAX_FREE + 2)]
    dropped = [pool.put(r.id) for r in rs]
    assert dropped[: p.MAX_FREE] == [0] * p.MAX_FREE
    assert dropped[p.MAX_FREE :] == [rs[-2].id, rs[-1].id]
    assert rs[-1].region.closed and not rs[0].region.closed


def test_pool_waits_a_bounded_time_for_a_region_to_come_back():
    now = [0.0]
    waits = []

    def wait(timeout):  # nothing comes back: the whole timeout passes
        waits.append(timeout)
        now[0] += timeout

    pool = p.SenderPool("t", create=FakeRegion, wait=wait, clock=lambda: now[0])
    lent = [pool.get(10) for _ in range(p.MAX_IN_FLIGHT)]
    assert waits == []  # below the in-flight bound: no wait
    before = FakeRegion.made
    r = pool.get(10)  # nothing comes back: waits up to MAX_WAIT, then creates
    assert FakeRegion.made == before + 1 and r.id == p.MAX_IN_FLIGHT + 1
    assert waits == [pytest.approx(p.MAX_WAIT)]

    # When a region comes back during the wait, it is reused.
    waits.clear()
    pool2 = p.SenderPool("t", create=FakeRegion, wait=lambda t: pool2.put(first.id), clock=lambda: now[0])
    first = pool2.get(10)
    for _ in range(p.MAX_IN_FLIGHT - 1):
        pool2.get(10)
    assert pool2.get(10) is first
    del lent


def test_pool_abandon_and_close():
    pool = p.SenderPool("t", create=FakeRegion)
    a, b, c = pool.get(10), pool.get(10), pool.get(10)
    pool.abandon(a.id)
    assert a.region.closed and pool.stats() == (0, 2)
    pool.put(b.id)
    pool.close()
    assert b.region.closed and c.region.closed
    assert pool.put(c.id) == 0
    with pytest.raises(RuntimeError, match="closed"):
        pool.get(10)
