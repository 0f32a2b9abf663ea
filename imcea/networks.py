"""Client IP addresses and the network lists of the IMS "Routing Restrictions" dialog.

The Exchange 5.5 IMS matches a client against a restriction entry ``IP/MASK`` (KB
Q260562) by ``(ip AND mask) == IP``, with whatever mask the registry holds: a mask need
not be contiguous, and an entry with host bits set outside its mask can never match
(KB Q193922).  :class:`NetworkSet` keeps those semantics and answers in time
logarithmic in the number of entries, because the relay decision asks it about every
client and a list may hold many thousands.

Contiguous entries (CIDR blocks, nested or disjoint) are flattened, per IP version, into a
sorted partition of the address space into intervals, each labelled with the most
specific entry that covers it, and looked up with :func:`bisect.bisect_right`; a large
IPv4 partition also gets a table of where each block of addresses starts in it, so most
lookups need no search at all.  Non-contiguous entries, a rarity, are checked in order
after that.
"""

from __future__ import annotations

import ipaddress
import re
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from operator import add, and_, is_not, or_, rshift, sub

import attrs

from .errors import Error, SettingsError, shorten

__all__ = [
    "IPAddress",
    "Network",
    "NetworkSet",
    "dotted_quad",
    "ip_key",
    "parse_ip",
    "parse_network",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPv4 = ipaddress.IPv4Address
_IPv6 = ipaddress.IPv6Address

_FULL4 = (1 << 32) - 1
_FULL6 = (1 << 128) - 1
_MAPPED_PREFIX = 0xFFFF  # ::ffff:0:0/96 holds the IPv4-mapped addresses
_PREFIX_MASKS4 = [_FULL4 ^ (_FULL4 >> n) for n in range(33)]
_PREFIX_MASKS6 = [_FULL6 ^ (_FULL6 >> n) for n in range(129)]
# the IPv4 prefix lengths as written after the slash (one or two digits)
_PREFIX_LENGTHS4 = {f"{n:0{width}}": n for n in range(33) for width in (1, 2)}

# An octet as written by a person: 0..255 without leading zeros (which some readers take
# for octal, so ipaddress rejects them too).  The dictionary both converts and validates.
_OCTETS: dict[str, int] = {str(i): i for i in range(256)}
_PREFIX_LENGTH = re.compile(r"[0-9]{1,3}")

# An array of at least 32-bit unsigned items for the IPv4 partition (compact, so that a
# lookup in a large set touches little memory).
_UINT32 = "I" if array("I").itemsize >= 4 else "L"

# Partitions with more intervals than this get the block table; smaller ones are
# searched whole (a few comparisons in memory the cache already holds).
_BLOCK_TABLE_MIN = 64
_BLOCK_BITS_MAX = 20  # at most 2**20 + 1 table slots (4 MiB)


# ---------------------------------------------------------------------------
# addresses


def dotted_quad(text: str) -> int | None:
    """The 32-bit value of an IPv4 address written as people write it, or ``None``.

    >>> dotted_quad("192.0.2.1") == 0xC0000201
    True

    Four decimal octets 0-255 without leading zeros (which some readers take for octal,
    so ``ipaddress`` refuses them too) and without blanks.  This is the one reader of
    dotted quads: clients, server addresses and network entries all go through it, and
    it costs a fraction of an ``ipaddress`` parse.
    """
    octets = _OCTETS
    try:
        a, b, c, d = text.split(".", 4)  # ValueError: not four parts
        return octets[a] << 24 | octets[b] << 16 | octets[c] << 8 | octets[d]
    except (ValueError, KeyError):  # KeyError: a part is not an octet as people write it
        return None


def _parse_v6(text: str) -> int | None:
    if "%" in text or "/" in text:  # zone ids are not supported; a network is not an IP
        return None
    try:
        return int(_IPv6(text))
    except ValueError:
        return None


def _key_from_str(text: str) -> tuple[int, int] | None:
    """``(version, value)`` of the address string *text* (blanks around it ignored)."""
    value = dotted_quad(text)
    if value is not None:
        return 4, value
    text = text.strip()
    value = dotted_quad(text)
    if value is not None:
        return 4, value
    if ":" not in text:
        return None
    value = _parse_v6(text)
    if value is None:
        return None
    if value >> 32 == _MAPPED_PREFIX:
        return 4, value & _FULL4
    return 6, value


def ip_key(value: object, *, key: str = "ip") -> tuple[int, int]:
    """``(version, integer value)`` of an IP address: what matching a network needs.

    >>> ip_key("192.0.2.1")
    (4, 3221225985)

    Takes what :func:`parse_ip` takes, and is cheaper for a string: no ``ipaddress``
    object is built.  An IPv4-mapped IPv6 address is keyed as its IPv4 address.
    """
    if type(value) is _IPv4:
        return 4, value.__int__()  # the documented method, cheaper than int()
    if isinstance(value, str):
        found = _key_from_str(str(value))
        if found is not None:
            return found
    elif isinstance(value, _IPv4):
        return 4, int(value)
    elif isinstance(value, _IPv6) and value.scope_id is None:
        mapped = value.ipv4_mapped
        return (6, int(value)) if mapped is None else (4, int(mapped))
    raise Error(f"{key}: {shorten(value)} is not an IP address")


def parse_ip(value: object, *, key: str = "ip") -> IPAddress:
    """The IP address *value* stands for: an address string or an ``ipaddress`` object.

    >>> parse_ip(" 192.0.2.1 ")
    IPv4Address('192.0.2.1')
    >>> parse_ip("::ffff:192.0.2.1")
    IPv4Address('192.0.2.1')

    An IPv4-mapped IPv6 address is returned as its IPv4 address, the way the network
    lists match it.  Surrounding white space is ignored.  Anything else (a network, an
    int, bytes, an octet with a leading zero, an IPv6 zone id ``%eth0``) raises
    :class:`~imcea.errors.Error` naming *key*: ``"ip: '10.0.0.300' is not an IP address"``.
    """
    if isinstance(value, _IPv4):
        return value
    if isinstance(value, _IPv6) and value.scope_id is None and value.ipv4_mapped is None:
        return value
    version, number = ip_key(value, key=key)
    return _IPv4(number) if version == 4 else _IPv6(number)


# ---------------------------------------------------------------------------
# one entry


def _hex(value: object) -> str:
    return hex(value) if type(value) is int else repr(value)


@attrs.frozen
class Network:
    """One entry of a network list, as the IMS wrote it.

    It matches an IP address of the same version when ``(ip AND mask) == address``.
    *address* keeps the host bits as written: an entry with host bits outside its
    mask (``10.0.0.1/255.255.255.0``, or ``10.0.0.1/24``) is not :attr:`matchable`
    and never matches, as in the real IMS (KB Q193922).  Build one with
    :func:`parse_network`; ``str()`` gives the entry as written.
    """

    text: str
    version: int
    address: int = attrs.field(repr=_hex)
    mask: int = attrs.field(repr=_hex)

    @property
    def contiguous(self) -> bool:
        """Whether the mask is a prefix mask (``255.255.0.0``, not ``255.0.255.0``)."""
        host = ~self.mask & (_FULL4 if self.version == 4 else _FULL6)
        return host & (host + 1) == 0

    @property
    def prefixlen(self) -> int | None:
        """The prefix length of a contiguous mask, ``None`` for any other mask."""
        return self.mask.bit_count() if self.contiguous else None

    @property
    def matchable(self) -> bool:
        """Whether any address matches: no host bits are set outside the mask."""
        return self.address & ~self.mask == 0

    def matches(self, ip: IPAddress | str) -> bool:
        """Whether *ip* matches this entry (an IPv4-mapped IPv6 address as its IPv4 address).

        Raises :class:`~imcea.errors.Error` if *ip* is not an IP address.
        """
        version, value = ip_key(ip)
        return version == self.version and value & self.mask == self.address

    def covers(self, other: Network) -> bool:
        """Whether every address *other* matches is matched by this entry.

        With any masks, contiguous or not: the mask of *other* must include this
        entry's mask, and *other*'s address must agree with this entry on it.  An
        entry that is not :attr:`matchable` matches nothing, so every entry covers it
        (check :attr:`matchable` first when that is not what the question means); an
        unmatchable entry covers no matchable one.
        """
        if not other.matchable:
            return True
        return (
            self.version == other.version
            and self.mask & ~other.mask == 0
            and other.address & self.mask == self.address
        )

    def __str__(self) -> str:
        return self.text


def _v4_network(text: str) -> tuple[int, int, int] | None:
    """``(address, mask, prefix length)`` of an IPv4 entry ``IP``, ``IP/MASK`` or
    ``IP/len``, the length -1 for a dotted mask; ``None`` when *text* is not one."""
    written, slash, after = text.partition("/")
    address = dotted_quad(written)
    if address is None:
        return None
    if not slash:
        return address, _FULL4, 32
    length = _PREFIX_LENGTHS4.get(after)
    if length is not None:
        return address, _PREFIX_MASKS4[length], length
    mask = dotted_quad(after)
    return None if mask is None else (address, mask, -1)


def _network_from_str(text: str) -> Network | None:
    """The entry *text* stands for, or ``None`` when it is not a network."""
    found = _v4_network(text)
    if found is None:
        text = text.strip()
        found = _v4_network(text)
        if found is None:
            return _v6_network_from_str(text)
    return Network(text, 4, found[0], found[1])


def _v6_network_from_str(text: str) -> Network | None:
    if ":" not in text:
        return None
    written, slash, length = text.partition("/")
    if slash:
        if not _PREFIX_LENGTH.fullmatch(length) or int(length) > 128:
            return None
        mask = _PREFIX_MASKS6[int(length)]
    else:
        mask = _FULL6
    address = _parse_v6(written)
    if address is None:
        return None
    if address >> 32 == _MAPPED_PREFIX and mask >> 32 == _FULL6 >> 32:
        # inside ::ffff:0:0/96: the IPv4 network that mapped clients are matched as
        return Network(text, 4, address & _FULL4, mask & _FULL4)
    return Network(text, 6, address, mask)


def parse_network(text: str, *, key: str = "network") -> Network:
    """Parse one network list entry.

    >>> parse_network("10.0.0.0/255.255.255.0").prefixlen
    24

    The forms are ``IP`` (one address), ``IP/MASK`` with a dotted IPv4 mask (any 32-bit
    mask: ``255.255.0.255`` is legal in the IMS registry and is matched exactly) and
    ``IP/len`` (IPv4 0-32, IPv6 0-128).  An IPv6 entry inside ``::ffff:0:0/96`` becomes
    the IPv4 network its mapped clients are matched as; other IPv6 entries never match
    an IPv4 client, even ``::/0``.  Raises :class:`~imcea.errors.SettingsError` naming
    *key*: ``"network: '10.0.0.0/255.255.x.0' is not a network"``.
    """
    if not isinstance(text, str):
        raise SettingsError(f"{key}: expected a network string, got {shorten(text)}")
    network = _network_from_str(text)
    if network is None:
        raise SettingsError(f"{key}: {shorten(text)} is not a network")
    return network


# ---------------------------------------------------------------------------
# the set


# Per IP version: the starts of the intervals of the partition (ascending, the first is
# 0); the entry labelling each interval (None where no contiguous entry covers it) and
# one byte per interval saying whether it has an entry, both with one None or 0 in
# front, so that ``bisect_right(starts, address)`` indexes them directly; the block
# table (or None) and its shift; the matchable non-contiguous entries in the order
# written.
_Index = tuple[
    Sequence[int],
    list[Network | None],
    bytes,
    "array[int] | None",
    int,
    tuple[Network, ...],
]

# A contiguous entry is collected as one int, (start << 8 | prefix length) << 32 | its
# position among the contiguous entries of its version: ints sort much faster than
# tuples, in the order (start, larger block first, order written).
_POSITION_BITS = 32
_POSITION_MASK = (1 << _POSITION_BITS) - 1


class _Entries:
    """The entries of one IP version, sorted out while a :class:`NetworkSet` is built."""

    __slots__ = ("blocks", "contiguous", "full", "noncontiguous")

    def __init__(self, width: int) -> None:
        self.full = (1 << width) - 1
        self.blocks: list[int] = []
        self.contiguous: list[Network] = []
        self.noncontiguous: list[Network] = []

    def add(self, net: Network) -> None:
        host = ~net.mask & self.full
        if net.address & host:
            return  # host bits outside the mask: it never matches
        if host & (host + 1):
            self.noncontiguous.append(net)
            return
        prefix = net.mask.bit_count()
        self.blocks.append((net.address << 8 | prefix) << _POSITION_BITS | len(self.contiguous))
        self.contiguous.append(net)


def _partition(entries: _Entries) -> tuple[list[int], list[Network | None]]:
    """Flatten the contiguous entries (nested or disjoint blocks) into labelled intervals.

    The blocks, sorted by (start, larger first, order written), are swept with a stack
    of the open blocks: each block starts an interval labelled with itself, and where
    it ends the interval of the block around it (or of none) resumes.  Of blocks with
    the same start and end the first written is kept, so each interval is labelled
    with the most specific entry covering it, ties going to the earlier entry.
    """
    full = entries.full
    nets = entries.contiguous
    starts: list[int] = [0]
    labels: list[Network | None] = [None]
    open_ends: list[int] = []
    open_nets: list[Network] = []
    previous = -1
    for key in sorted(entries.blocks):
        block = key >> _POSITION_BITS
        if block == previous:
            continue  # the same block again: the first written stays
        previous = block
        net = nets[key & _POSITION_MASK]
        start = block >> 8
        while open_ends and open_ends[-1] < start:
            point = open_ends.pop() + 1
            open_nets.pop()
            # the block around the one that ended resumes (or none)
            label = open_nets[-1] if open_nets else None
            if starts[-1] == point:
                labels[-1] = label
            else:
                starts.append(point)
                labels.append(label)
        if starts[-1] == start:
            labels[-1] = net
        else:
            starts.append(start)
            labels.append(net)
        open_ends.append(start | full >> (block & 0xFF))
        open_nets.append(net)
    while open_ends:
        point = open_ends.pop() + 1
        open_nets.pop()
        label = open_nets[-1] if open_nets else None
        if starts[-1] == point:
            labels[-1] = label
        elif point <= full:
            starts.append(point)
            labels.append(label)
    return starts, labels


def _block_table(starts: Sequence[int], flags: bytes, width: int) -> tuple[array[int], int]:
    """The block table of a large partition, and its shift.

    The address space is cut into blocks of ``2**shift`` addresses, about twice as many
    blocks as intervals.  ``table[b] >> 2`` is ``bisect_right(starts, b << shift)``,
    the index (in the lists with one item in front) of the interval holding the first
    address of block *b*; bit 1 says that the whole block lies in that interval, and
    then bit 0 is that interval's flag, so that most lookups read one slot and nothing
    else.  For any other block the search is narrowed to the indices of ``table[b]`` and
    ``table[b + 1]`` (one more slot follows the last block).
    """
    bits = min(_BLOCK_BITS_MAX, width, (2 * len(starts)).bit_length())
    shift = width - bits
    after_last = (1 << bits) + 1
    shifts = repeat(shift)
    # For interval j: the first block whose first address lies in it (its start rounded
    # up); the block after the last one it holds whole (the next start rounded down);
    # how many blocks start in it; and how many of those it holds whole (-1 for none:
    # repeat() makes nothing of that).  The last block starting in it straddles into
    # the next interval unless the next start is a block's first address.  (Written
    # with map() and operator functions: a large table builds without a Python loop.)
    firsts = list(map(rshift, map(add, starts, repeat((1 << shift) - 1)), shifts))
    firsts.append(after_last)
    whole_ends = list(map(rshift, starts[1:], shifts))
    whole_ends.append(after_last)
    counts = list(map(sub, firsts[1:], firsts))
    wholes = map(sub, whole_ends, firsts)
    straddles = map(and_, map(sub, firsts[1:], whole_ends), map(bool, counts))
    whole_codes = map(or_, range(4 | 2, (len(starts) + 1) << 2, 4), flags[1:])
    straddle_codes = range(4, (len(starts) + 1) << 2, 4)
    runs = zip(
        map(repeat, whole_codes, wholes), map(repeat, straddle_codes, straddles), strict=True
    )
    table = array(_UINT32, chain.from_iterable(chain.from_iterable(runs)))
    return table, shift


def _index(entries: _Entries) -> _Index:
    starts, labels = _partition(entries)
    flags = bytes([0, *map(is_not, labels, repeat(None))])
    labels.insert(0, None)
    fallback = tuple(entries.noncontiguous)
    if entries.full == _FULL4 and len(starts) > _BLOCK_TABLE_MIN:
        table, shift = _block_table(starts, flags, 32)
        return array(_UINT32, starts), labels, flags, table, shift, fallback
    return starts, labels, flags, None, 0, fallback


class NetworkSet:
    """An immutable list of networks, matched the way the IMS matches a client.

    >>> allow = NetworkSet(["10.0.0.0/255.0.0.0", "10.1.0.0/16"], key="allow")
    >>> allow.match("10.1.2.3")
    Network(text='10.1.0.0/16', version=4, address=0xa010000, mask=0xffff0000)
    >>> "192.0.2.1" in allow
    False

    Entries are strings for :func:`parse_network` (a bad one raises
    :class:`~imcea.errors.SettingsError` naming ``key[i]``, or ``locations[i]`` when
    given, e.g. a file and line) or :class:`Network`
    values.  Lookups take logarithmic time in the number of entries, and about
    constant time for IPv4 entries spread over the address space.  Sets with the same
    entries in the same order are equal.
    """

    __slots__ = ("_entries", "_hash", "_v4", "_v6")

    _entries: tuple[Network, ...]
    _hash: int | None
    _v4: _Index
    _v6: _Index

    def __init__(
        self,
        entries: Iterable[str | Network] = (),
        *,
        key: str = "networks",
        locations: Sequence[str] | None = None,
    ) -> None:
        if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
            raise SettingsError(f"{key}: expected a list of networks, got {type(entries).__name__}")
        parsed: list[Network] = []
        v4 = _Entries(32)
        v6 = _Entries(128)
        # the common case, an IPv4 entry as written (_network_from_str and
        # _Entries.add in one): 100,000 entries load in a fraction of a second
        append = parsed.append
        add_block = v4.blocks.append
        add_contiguous = v4.contiguous.append
        for position, entry in enumerate(entries):
            if type(entry) is str and (found := _v4_network(entry)) is not None:
                address, mask, prefix = found
                net = Network(entry, 4, address, mask)
                append(net)
                if prefix < 0:
                    v4.add(net)
                elif address & ~mask == 0:
                    add_block((address << 8 | prefix) << _POSITION_BITS | len(v4.contiguous))
                    add_contiguous(net)
                continue
            if isinstance(entry, Network):
                net = _checked(
                    entry, f"{key}[{position}]" if locations is None else locations[position]
                )
            else:
                where = f"{key}[{position}]" if locations is None else locations[position]
                net = parse_network(entry, key=where)
            append(net)
            (v4 if net.version == 4 else v6).add(net)
        setter = object.__setattr__
        setter(self, "_entries", tuple(parsed))
        setter(self, "_hash", None)
        setter(self, "_v4", _index(v4))
        setter(self, "_v6", _index(v6))

    @property
    def entries(self) -> tuple[Network, ...]:
        """The entries, in the order given."""
        return self._entries

    def match(self, ip: IPAddress | str) -> Network | None:
        """The entry that matches *ip*, to name in a decision; ``None`` when none does.

        That is the most specific matching contiguous entry (the longest prefix, the
        first written of equal ones) or, when no contiguous entry matches, the first
        matching entry with a non-contiguous mask.  Entries with host bits outside
        their mask never match.  *ip* is an ``ipaddress`` address or a string (see
        :func:`parse_ip`); anything else raises :class:`~imcea.errors.Error`.
        """
        version, value = ip_key(ip)
        return self.lookup(version, value)

    def lookup(self, version: int, value: int) -> Network | None:
        """:meth:`match` of the address :func:`ip_key` gives as ``(version, value)``."""
        starts, labels, _, table, shift, fallback = self._v4 if version == 4 else self._v6
        if table is None:
            label = labels[bisect_right(starts, value)]
        else:
            block = value >> shift
            code = table[block]
            if code & 2:
                label = labels[code >> 2]
            else:
                label = labels[bisect_right(starts, value, code >> 2, table[block + 1] >> 2)]
        if label is None and fallback:
            for net in fallback:
                if value & net.mask == net.address:
                    return net
        return label

    def __contains__(self, ip: object) -> bool:
        """Whether some entry matches *ip* (anything :meth:`match` takes)."""
        version, value = ip_key(ip)
        starts, _, flags, table, shift, fallback = self._v4 if version == 4 else self._v6
        if table is None:
            if flags[bisect_right(starts, value)]:
                return True
        else:
            block = value >> shift
            code = table[block]
            if code & 2:
                if code & 1:
                    return True
            elif flags[bisect_right(starts, value, code >> 2, table[block + 1] >> 2)]:
                return True
        if fallback:
            return any(value & net.mask == net.address for net in fallback)
        return False

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Network]:
        return iter(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NetworkSet):
            return self._entries == other._entries
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(self._entries))
        assert self._hash is not None
        return self._hash

    def __repr__(self) -> str:
        shown = ", ".join(repr(net.text) for net in self._entries[:3])
        if len(self._entries) <= 3:
            return f"NetworkSet([{shown}])"
        return f"NetworkSet([{shown}, ...]) ({len(self._entries)} entries)"

    def __reduce__(self) -> tuple[type[NetworkSet], tuple[tuple[Network, ...]]]:
        return NetworkSet, (self._entries,)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"NetworkSet is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"NetworkSet is immutable: cannot delete {name!r}")


def _checked(network: Network, key: str) -> Network:
    """*network* if its fields are consistent (a :class:`Network` built by hand may not be)."""
    width = 32 if network.version == 4 else 128 if network.version == 6 else 0
    if (
        width
        and isinstance(network.text, str)
        and all(
            type(value) is int and value >> width == 0 for value in (network.address, network.mask)
        )
    ):
        return network
    raise SettingsError(f"{key}: {network!r} is not a valid network")
