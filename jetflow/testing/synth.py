"""A synthetic firehose: realistic relay frames, so tests, demos and benchmarks need no real data.

Third-party firehose captures cannot ship with jetflow, yet every layer (decoder, filters, server,
benchmarks) must be exercised on frames that look like the relay's in every way the code can
observe. :class:`SyntheticFirehose` therefore builds frames the way a PDS and a relay do:

* **Real repositories.** Each synthetic DID owns a small repository (a sorted map of
  ``collection/rkey`` → record CID, capped at :data:`MAX_RECORDS_PER_REPO`; a create into a full
  repository also deletes its oldest record in the same commit). Every commit rebuilds the
  atproto Merkle Search Tree (fanout 4, prefix-compressed entries, empty intermediate nodes where a
  layer is skipped, the root at the highest key layer), signs nothing (``sig`` is 64 random
  bytes; Jetstream never checks it) and ships a CAR v1 holding, as the relay does, only what is
  new: the MST nodes not in the previous tree (the paths to the changed keys), the new record
  blocks and the commit block, with the commit CID as the only root. Every CID is the sha2-256
  of the exact canonical DAG-CBOR bytes, so the union of one repository's CARs, from its first
  commit on, lets anyone walk its full tree.
* **The relay's body.** ``seq`` increases by one per sequenced frame, ``rev`` is a TID that
  increases per repository, ``since`` and ``prevData`` chain to the previous commit (both None on
  a repository's first commit), ``time`` is RFC 3339 with milliseconds and advances by
  exponential gaps at ``events_per_second``, ``blobs`` is empty, ``rebase``/``tooBig`` are False.
  Op maps carry ``prev`` on updates and deletes, and a delete's ``cid`` is None.
* **The network's mix**, from :data:`DEFAULT_MIX` or your weights: likes, follows, reposts,
  posts (many languages, CJK, emoji, ``& < >``, replies, mention/link/tag facets with UTF-8 byte
  offsets, image embeds and link cards holding blobs, quote posts), deletes of earlier records,
  profile creates/updates with avatar and banner blobs, blocks, list items, custom lexicons
  (``com.example.sensor.reading`` holds real byte strings, one of which looks like a CID, to
  exercise the ``$bytes`` vs ``$link`` distinction; ``fm.teal.alpha.feed.play`` holds nested
  objects and nulls), ``#identity`` and ``#account`` frames, and ``#sync``/``#info`` on request.
* **Deterministic**: a given seed and options always give the same bytes (one
  ``random.Random(seed)``; no wall clock; the default ``start_time`` is fixed).
* **Faults on request** (``malformed_rate``): a fraction of frames is replaced by a corrupted
  one. Each fault kind is counted by :class:`~jetflow.codec.firehose.FirehoseDecoder` under
  exactly one skip reason, once per faulty frame (:data:`FAULT_SKIP_REASONS`):

  ========================  ===================  =============================================
  fault kind                skip reason          what is wrong
  ========================  ===================  =============================================
  ``truncated_frame``       ``malformed_frame``  the frame is cut short
  ``non_canonical_cbor``    ``malformed_frame``  a non-minimal integer head, or header keys
                                                 out of canonical order
  ``truncated_car``         ``malformed_car``    ``blocks`` ends inside its last block
  ``record_cid_mismatch``   ``missing_record``   the record block's bytes do not hash to its CID
  ``path_without_slash``    ``bad_path``         the create op's path has no ``/``
  ========================  ===================  =============================================

  A faulty frame is always a like commit (so it carries a ``seq``); when the repository was full
  its commit also holds the evicting delete, which still decodes to an event.

Speed (the hot loop is pure Python; about 4,500 frames/s over 100k frames on a slow 2-core
machine): each repository keeps its current MST nodes keyed by (layer, key interval), so a
commit re-encodes only the nodes whose interval holds a changed key, and mostly just swaps the
changed subtree links of those; MST nodes, frame bodies and records without byte strings are
encoded by libipld, which writes a ``bytes`` value that parses as a CID as a tag-42 link. That is
exactly right for those values: their only byte strings are CIDs (links), ASCII MST key suffixes
and CAR files (which start with 0x3a), none of which can be taken for the other. The commit
block (its ``sig``) and records holding real byte strings go through jetflow's exact writer,
:func:`jetflow.codec.cbor.encode`, instead.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Final

import libipld
import zstandard

from jetflow.codec.capture import encode_record
from jetflow.codec.cbor import encode
from jetflow.codec.cid import RAW, Link, cid_to_str, compute_cid
from jetflow.codec.firehose import BAD_PATH, MALFORMED_CAR, MALFORMED_FRAME, MISSING_RECORD
from jetflow.codec.frame import encode_frame

__all__ = [
    "DEFAULT_MIX",
    "DEFAULT_START_TIME",
    "FAULT_SKIP_REASONS",
    "MAX_RECORDS_PER_REPO",
    "SyntheticFirehose",
    "tid",
    "write_capture",
]

DEFAULT_MIX: Final[Mapping[str, float]] = MappingProxyType(
    {
        "like": 0.45,
        "follow": 0.12,
        "repost": 0.12,
        "post": 0.12,
        "delete": 0.08,
        "profile": 0.02,
        "block": 0.02,
        "listitem": 0.02,
        "custom": 0.03,
        "identity": 0.01,
        "account": 0.01,
        "sync": 0.005,  # used only with include_sync=True
        "info": 0.001,  # used only with include_info=True
    }
)
"""Relative weights of frame kinds, roughly the network's; ``sync``/``info`` need their flag."""

DEFAULT_START_TIME: Final = datetime(2026, 1, 1, tzinfo=UTC)
"""The first frame's ``time`` unless ``start_time`` is given (fixed, for determinism)."""

FAULT_SKIP_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "truncated_frame": MALFORMED_FRAME,
        "non_canonical_cbor": MALFORMED_FRAME,
        "truncated_car": MALFORMED_CAR,
        "record_cid_mismatch": MISSING_RECORD,
        "path_without_slash": BAD_PATH,
    }
)
"""Fault kind → the :class:`~jetflow.codec.firehose.DecodeStats` reason it is counted under."""

MAX_RECORDS_PER_REPO: Final = 100
"""Records kept per synthetic repository; keeps MST rebuilds (and CARs) small and fast."""

_COMMIT_KINDS: Final = frozenset(
    {"like", "follow", "repost", "post", "delete", "profile", "block", "listitem", "custom"}
)
_OTHER_KINDS: Final = frozenset({"identity", "account", "sync", "info"})

_B32: Final = "234567abcdefghijklmnopqrstuvwxyz"
_B32_PAIRS: Final = tuple(a + b for a in _B32 for b in _B32)  # 10 bits -> two characters
_DAG_CBOR_SHA256: Final = b"\x01\x71\x12\x20"
_RAW_SHA256: Final = b"\x01\x55\x12\x20"
_COMMIT_HEADER: Final = encode({"op": 1, "t": "#commit"})
# The CAR header of a single CIDv1/sha2-256 root (58 bytes, so its length varint is 0x3a),
# split around the root's 36 bytes.
_ROOT_SLOT: Final = _DAG_CBOR_SHA256 + b"\xff" * 32
_CAR_HEADER: Final = encode({"roots": [Link(_ROOT_SLOT)], "version": 1})
_CAR_HEADER_START: Final = bytes([len(_CAR_HEADER)]) + _CAR_HEADER[: _CAR_HEADER.index(_ROOT_SLOT)]
_CAR_HEADER_END: Final = _CAR_HEADER[_CAR_HEADER.index(_ROOT_SLOT) + len(_ROOT_SLOT) :]
_sha256 = hashlib.sha256


def tid(micros: int, clock_id: int) -> str:
    """A TID: 13 base32-sortable characters for ``micros`` since the epoch and a 10-bit clock id.

    TIDs sort as strings in time order, which is why atproto uses them for revs and rkeys.
    """
    value = (micros << 10) | (clock_id & 0x3FF)
    pairs = _B32_PAIRS
    return (
        _B32[(value >> 60) & 31]
        + pairs[(value >> 50) & 0x3FF]
        + pairs[(value >> 40) & 0x3FF]
        + pairs[(value >> 30) & 0x3FF]
        + pairs[(value >> 20) & 0x3FF]
        + pairs[(value >> 10) & 0x3FF]
        + pairs[value & 0x3FF]
    )


def _key_layer(key: str) -> int:
    """The MST layer of ``key``: leading zero bits of sha256(key), two bits per layer."""
    digest = int.from_bytes(_sha256(key.encode("ascii")).digest(), "big")
    return (256 - digest.bit_length()) // 2


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix of two byte strings (one XOR of big integers, C speed)."""
    n = min(len(a), len(b))
    x = int.from_bytes(a[:n], "big") ^ int.from_bytes(b[:n], "big")
    return n - (x.bit_length() + 7) // 8


def _dag_cid(block: bytes) -> bytes:
    return _DAG_CBOR_SHA256 + _sha256(block).digest()


# A node is identified by its layer and the open key interval it covers ("" = unbounded), and
# kept as (cid, subtree idents [left, then right of each entry], entry keys, entries, "l" CID).
_Ident = tuple[int, str, str]
_Node = tuple[bytes, tuple[_Ident | None, ...], tuple[str, ...], list[dict[str, Any]], bytes | None]


class _Repo:
    """One synthetic account: identity, the record map and the MST node cache."""

    __slots__ = (
        "cids",
        "clock_id",
        "commit_block",
        "commit_cid",
        "did",
        "handle",
        "keys",
        "layers",
        "list_uri",
        "nodes",
        "records",
        "rev",
        "rev_us",
        "root",
        "root_ident",
    )

    def __init__(self, did: str, handle: str, clock_id: int, list_uri: str) -> None:
        self.did = did
        self.handle = handle
        self.clock_id = clock_id
        self.list_uri = list_uri
        self.records: dict[str, bytes] = {}  # key -> record CID, in creation order (eviction)
        self.keys: list[str] = []  # sorted keys, with parallel CIDs and layers
        self.cids: list[bytes] = []
        self.layers: list[int] = []
        self.nodes: dict[_Ident, _Node] = {}  # the current tree
        self.root_ident: _Ident = (0, "", "")
        self.rev: str | None = None
        self.rev_us = 0
        self.root: bytes | None = None
        self.commit_cid: bytes | None = None
        self.commit_block: bytes | None = None

    def put(self, key: str, cid: bytes) -> bytes | None:
        """Create or update ``key``; return the previous CID (None for a create)."""
        previous = self.records.get(key)
        i = bisect.bisect_left(self.keys, key)
        if previous is None:
            self.keys.insert(i, key)
            self.cids.insert(i, cid)
            self.layers.insert(i, _key_layer(key))
        else:
            self.cids[i] = cid
        self.records[key] = cid
        return previous

    def remove(self, key: str) -> bytes:
        """Delete ``key``; return its CID."""
        cid = self.records.pop(key)
        i = bisect.bisect_left(self.keys, key)
        del self.keys[i], self.cids[i], self.layers[i]
        return cid

    def rebuild(self, changed: list[str]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """Rebuild the MST after the keys in ``changed`` were created, updated or deleted.

        Returns the root CID and the (cid, block) of every node not in the previous tree, root
        first: what the relay puts in a commit's CAR. A node is identified by its layer and the
        open key interval it covers (bounded by its parent's entries, "" meaning unbounded), so:

        * no changed key inside the interval: the previous tree's node is reused as is;
        * changed keys inside, all of lower layers: the node keeps its entries and only the
          subtrees holding a changed key are rebuilt (the common case);
        * otherwise the node is built from its keys.
        """
        keys, cids, layers = self.keys, self.cids, self.layers
        cache = self.nodes
        count = len(keys)
        changed_layers = {key: _key_layer(key) for key in changed}
        fresh: list[tuple[bytes, bytes]] = []
        built: dict[_Ident, _Node] = {}
        kept: set[_Ident] = set()  # previous-tree nodes reused whole, with their subtrees

        def build(layer: int, left: str, right: str) -> tuple[bytes, _Ident] | None:
            ident: _Ident = (layer, left, right)
            node = cache.get(ident)
            inside: list[str] = []
            if node is not None:
                inside = [k for k in changed if left < k and (k < right or not right)]
                if not inside:
                    kept.add(ident)
                    return node[0], ident
            lo = bisect.bisect_right(keys, left) if left else 0
            hi = bisect.bisect_left(keys, right) if right else count
            if lo >= hi:
                return None
            if node is not None and all(changed_layers[k] < layer for k in inside):
                return patch(node, ident, inside, layer, left, right)
            return full(lo, hi, layer, left, right, ident)

        def encoded(ident: _Ident, node_l: bytes | None, entries: list[dict[str, Any]]) -> bytes:
            block = libipld.encode_dag_cbor({"l": node_l, "e": entries})
            cid = _dag_cid(block)
            fresh.append((cid, block))
            return cid

        def patch(
            node: _Node, ident: _Ident, inside: list[str], layer: int, left: str, right: str
        ) -> tuple[bytes, _Ident]:
            _cid, old_subs, entry_keys, entries, node_l = node
            subs = list(old_subs)
            slots = {bisect.bisect_right(entry_keys, key) for key in inside}
            last = len(entry_keys)
            for slot in sorted(slots):
                lower = entry_keys[slot - 1] if slot else left
                upper = entry_keys[slot] if slot < last else right
                subtree = build(layer - 1, lower, upper)
                sub_cid, subs[slot] = subtree if subtree is not None else (None, None)
                if slot:
                    # The node is being replaced, so its entry maps can be updated in place.
                    entries[slot - 1]["t"] = sub_cid
                else:
                    node_l = sub_cid
            for slot, sub in enumerate(subs):
                if sub is not None and slot not in slots:
                    kept.add(sub)
            cid = encoded(ident, node_l, entries)
            built[ident] = (cid, tuple(subs), entry_keys, entries, node_l)
            return cid, ident

        def full(
            lo: int, hi: int, layer: int, left: str, right: str, ident: _Ident
        ) -> tuple[bytes, _Ident]:
            if layer == 0:
                positions: list[int] = list(range(lo, hi))
            else:
                positions = [i for i in range(lo, hi) if layers[i] == layer]
            entry_keys = tuple(keys[i] for i in positions)
            subs: list[_Ident | None] = []
            node_l: bytes | None = None
            if layer > 0:
                subtree = build(layer - 1, left, entry_keys[0] if entry_keys else right)
                if subtree is not None:
                    node_l = subtree[0]
                subs.append(None if subtree is None else subtree[1])
            else:
                subs.append(None)
            entries: list[dict[str, Any]] = []
            previous = b""
            last = len(positions) - 1
            for n, i in enumerate(positions):
                raw_key = entry_keys[n].encode("ascii")
                prefix = _common_prefix(previous, raw_key)
                sub_cid: bytes | None = None
                sub: _Ident | None = None
                if layer > 0:
                    upper = entry_keys[n + 1] if n < last else right
                    subtree = build(layer - 1, entry_keys[n], upper)
                    if subtree is not None:
                        sub_cid, sub = subtree
                subs.append(sub)
                entries.append({"p": prefix, "k": raw_key[prefix:], "v": cids[i], "t": sub_cid})
                previous = raw_key
            cid = encoded(ident, node_l, entries)
            built[ident] = (cid, tuple(subs), entry_keys, entries, node_l)
            return cid, ident

        root_ident: _Ident = (max(layers) if keys else 0, "", "")
        if keys:
            top = build(root_ident[0], "", "")
            assert top is not None
            root = top[0]
        else:
            # An empty repository is a single node with no entries.
            root = encoded(root_ident, None, [])
            if not changed and root_ident in cache:
                fresh.pop()
            built[root_ident] = (root, (None,), (), [], None)
        # Keep exactly the nodes of the new tree, so a cached node is one of the previous tree:
        # drop the previous tree's nodes outside the reused subtrees, then add the new ones.
        stack = [self.root_ident] if self.root_ident in cache else []
        while stack:
            ident = stack.pop()
            if ident not in kept:
                stack.extend(sub for sub in cache.pop(ident)[1] if sub is not None)
        cache.update(built)
        self.root_ident = root_ident
        fresh.reverse()
        return root, fresh


# -- content banks (written for jetflow; no third-party data) -----------------------------------

_TEXTS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "Just finished my morning run and the sky looks unreal",
        "Anyone else think the new update is actually pretty good?",
        "Coffee & code, the usual Sunday",
        "hot take: 1 < 2 and 3 > 2, math is fine",
        "Reading a great book about tide pools 🌊",
        "my cat knocked the plant over again 😾",
        "Finally fixed that bug. It was an off-by-one <3",
        "Weekend plans: absolutely nothing, and I love it",
        "Rock & roll never dies 🎸",
        "If x < y and y < z, we go for pizza 🍕",
        "new blog post is up, thoughts welcome",
        "line one\u2028line two, a separator some clients paste",
    ),
    "es": (
        "¡Qué bonito día para pasear por el parque!",
        "Mañana empiezo el curso de cocina 🍳",
        "No puedo creer que ya sea viernes",
        "Café con leche y pan tostado, lo mejor del mundo",
        "Alguien sabe a qué hora abre la biblioteca?",
    ),
    "pt": (
        "Bom dia, pessoal! ☀️",
        "Hoje tem jogo e eu tô nervoso demais",
        "Alguém recomenda um livro bom pra ler nas férias?",
        "Chuva o dia inteiro, perfeito pra ficar em casa",
    ),
    "de": (
        "Guten Morgen! Heute regnet es schon wieder ☔",
        "Ich habe endlich meine Steuererklärung gemacht",
        "Die Straßenbahn fällt aus, schon wieder",
        "Wer kommt mit zum Flohmarkt am Samstag?",
    ),
    "fr": (
        "Bonne soirée à tous 🌙",
        "J'ai enfin terminé ce puzzle de 1000 pièces",
        "Le café d'ici est incroyable, je reviendrai",
        "Quelqu'un a des idées de recettes végétariennes ?",
    ),
    "ja": (
        "今日はとても良い天気ですね☀️",
        "新しいカフェに行ってきました",
        "週末は家でゆっくりします",
        "猫がかわいすぎる🐱",
        "この本、最後まで一気に読んでしまった",
    ),
    "ko": (
        "오늘 점심 뭐 먹지?",
        "드디어 주말이다 🎉",
        "이 노래 너무 좋아요, 하루 종일 듣는 중",
        "비 오는 날엔 역시 파전",
    ),
    "zh": (
        "今天的晚霞真美",
        "周末去爬山了，累但开心 ⛰️",
        "有人推荐好看的电影吗？",
        "终于把房间收拾干净了",
    ),
    "ru": (
        "Доброе утро! Сегодня снова снег ❄️",
        "Наконец-то дочитал эту книгу",
        "Кто-нибудь знает хороший рецепт борща?",
    ),
    "tr": (
        "Günaydın! Bugün hava çok güzel",
        "Akşam yemeğinde mercimek çorbası var 🍲",
        "Bu şarkıyı dinlemeden geçmeyin",
    ),
    "ar": (
        "صباح الخير للجميع 🌅",
        "أخيراً انتهيت من قراءة الكتاب",
    ),
}
_LANGS: Final = tuple(_TEXTS)
_LANG_WEIGHTS: Final = (40, 8, 8, 5, 5, 10, 5, 4, 5, 5, 5)
_EMOJI: Final = ("🔥", "✨", "😂", "🙏", "💙", "🦋", "👀", "🎉", "🥲", "🌸")
_TAGS: Final = (
    "art",
    "photography",
    "gamedev",
    "booksky",
    "music",
    "caturday",
    "science",
    "日本語",
)
_SITES: Final = (
    "https://example.com/articles/",
    "https://news.example.org/story/",
    "https://blog.example.net/posts/",
    "https://video.example.com/watch?v=",
)
_TITLES: Final = (
    "How tide pools survive the winter",
    "Ten small habits that make code reviews better",
    "Local bakery wins regional award",
    "A guide to low-light photography",
    "Why the bus was late: a data story",
    "Nuevas rutas de senderismo en la sierra",
    "新しい駅前広場がオープン",
)
_DESCRIPTIONS: Final = (
    "",
    "A short read about something interesting.",
    "Photos, notes & a few surprises <inside>.",
    "Everything you wanted to know, and a bit more.",
    "Resumen de la semana en cinco minutos.",
)
_ALTS: Final = (
    "",
    "",
    "A cat asleep on a keyboard",
    "Sunset over the harbor",
    "Screenshot of a chart",
    "山の写真",
)
_NAMES: Final = (
    "alex",
    "sam",
    "kim",
    "noor",
    "yuki",
    "mateo",
    "lena",
    "ravi",
    "ines",
    "tomas",
    "hana",
    "omar",
    "zoe",
    "luca",
    "mina",
    "piotr",
)
_HANDLE_DOMAINS: Final = ("bsky.social", "bsky.social", "example.com", "example.org")
_DISPLAY_NAMES: Final = (
    "Alex ✨",
    "Sam & Co",
    "きむ",
    "Noor 🌙",
    "Mateo Díaz",
    "Лена",
    "Ravi",
    "<Zoe>",
)
_BIOS: Final = (
    "Coffee, cats & code ☕",
    "Fotógrafa 📷 | Lisboa",
    "絵を描いています。よろしくお願いします",
    "he/him · gamedev · <3 pixel art",
    "Reader of long books.\nWriter of short posts.",
    "",
)
_TRACKS: Final = (
    "Blue Hour",
    "Paper Boats",
    "Night Market",
    "Slow River",
    "Static Bloom",
    "夏の終わり",
)
_ARTISTS: Final = (
    "The Quiet Hours",
    "Mira Sol",
    "North Of Nowhere",
    "Kaito & The Lamps",
    "Ana Reis",
)
_ACCOUNT_STATUSES: Final = (
    "deactivated",
    "takendown",
    "suspended",
    "deleted",
    "desynchronized",
    "throttled",
)
_CUSTOM_BYTES_NSID: Final = "com.example.sensor.reading"
_CUSTOM_PLAY_NSID: Final = "fm.teal.alpha.feed.play"


class SyntheticFirehose:
    """Generates realistic ``com.atproto.sync.subscribeRepos`` frames (header + body bytes).

    Args:
        seed: everything derives from ``random.Random(seed)``: same seed and options, same bytes.
        repos: number of synthetic accounts; activity is skewed so a few are very busy.
        start_seq: ``seq`` of the first sequenced frame (``#info`` frames carry none).
        start_time: relay ``time`` of the first frame (naive means UTC); default
            :data:`DEFAULT_START_TIME`, never the wall clock.
        events_per_second: mean rate at which the relay ``time`` advances.
        mix: relative weights by kind (keys of :data:`DEFAULT_MIX`); default the network's.
        include_sync: also emit ``#sync`` frames (weight ``mix["sync"]``).
        include_info: also emit ``#info`` frames (weight ``mix["info"]``).
        malformed_rate: fraction of frames replaced by a corrupted one (see the module docs).
        fault_kinds: restrict faults to these kinds of :data:`FAULT_SKIP_REASONS` (default all),
            so a robustness test can aim at one skip reason.

    Raises:
        ValueError: an unknown mix key or fault kind, a negative weight, no positive weight,
            ``repos < 1``, a non-positive rate, or ``malformed_rate`` outside [0, 1].
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        repos: int = 500,
        start_seq: int = 1,
        start_time: datetime | None = None,
        events_per_second: float = 2000.0,
        mix: Mapping[str, float] | None = None,
        include_sync: bool = False,
        include_info: bool = False,
        malformed_rate: float = 0.0,
        fault_kinds: Iterable[str] | None = None,
    ) -> None:
        if repos < 1:
            raise ValueError(f"repos must be at least 1, not {repos}")
        if not events_per_second > 0:
            raise ValueError(f"events_per_second must be positive, not {events_per_second}")
        if not 0.0 <= malformed_rate <= 1.0:
            raise ValueError(f"malformed_rate must be within [0, 1], not {malformed_rate}")
        weights = dict(DEFAULT_MIX if mix is None else mix)
        unknown = set(weights) - _COMMIT_KINDS - _OTHER_KINDS
        if unknown:
            raise ValueError(f"unknown mix kinds {sorted(unknown)}; known: {sorted(DEFAULT_MIX)}")
        if any(w < 0 for w in weights.values()):
            raise ValueError("mix weights must not be negative")
        if include_sync:
            weights.setdefault("sync", DEFAULT_MIX["sync"])
        else:
            weights.pop("sync", None)
        if include_info:
            weights.setdefault("info", DEFAULT_MIX["info"])
        else:
            weights.pop("info", None)
        kinds = [k for k in DEFAULT_MIX if weights.get(k, 0) > 0]
        if not kinds:
            raise ValueError("the mix has no kind with a positive weight")
        self._kinds = kinds
        self._cumulative: list[float] = []
        total = 0.0
        for kind in kinds:
            total += weights[kind]
            self._cumulative.append(total)
        self._total = total
        faults = list(FAULT_SKIP_REASONS if fault_kinds is None else fault_kinds)
        bad = [f for f in faults if f not in FAULT_SKIP_REASONS]
        if bad or not faults:
            raise ValueError(f"unknown fault kinds {bad}; known: {sorted(FAULT_SKIP_REASONS)}")
        self._faults = faults
        self._malformed_rate = malformed_rate

        self._rng = rng = random.Random(seed)
        self._seq = start_seq
        start = DEFAULT_START_TIME if start_time is None else start_time
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now_us = int(start.timestamp()) * 1_000_000 + start.microsecond
        self._mean_gap_us = 1_000_000.0 / events_per_second
        self._second_prefix: dict[int, str] = {}

        self._repos: list[_Repo] = []
        for n in range(repos):
            did = "did:plc:" + "".join(rng.choices(_B32, k=24))
            handle = f"{rng.choice(_NAMES)}{n}.{rng.choice(_HANDLE_DOMAINS)}"
            clock_id = rng.randrange(1024)
            list_rkey = tid(self._now_us - rng.randrange(10**13), rng.randrange(1024))
            self._repos.append(
                _Repo(did, handle, clock_id, f"at://{did}/app.bsky.graph.list/{list_rkey}")
            )
        # Accounts and posts outside the synthetic network, for follows, likes and replies.
        self._outside_dids = ["did:plc:" + "".join(rng.choices(_B32, k=24)) for _ in range(256)]
        self._outside_posts = [self._outside_post_ref() for _ in range(256)]
        self._recent_posts: list[tuple[str, str]] = []  # (uri, cid) of synthetic posts, a ring
        self._recent_at = 0

    # -- public API --------------------------------------------------------------------------

    def frames(self, count: int) -> Iterator[bytes]:
        """Yield the next ``count`` raw frames (header + body). Successive calls continue."""
        rng = self._rng
        kinds, cumulative, total = self._kinds, self._cumulative, self._total
        malformed_rate = self._malformed_rate
        for _ in range(count):
            self._now_us += int(rng.expovariate(1.0) * self._mean_gap_us)
            if malformed_rate and rng.random() < malformed_rate:
                yield self._fault(rng.choice(self._faults))
                continue
            pick = bisect.bisect_right(cumulative, rng.random() * total)
            yield self._make(kinds[min(pick, len(kinds) - 1)])  # min: float rounding at the top

    # -- frame kinds -------------------------------------------------------------------------

    def _make(self, kind: str) -> bytes:
        if kind == "like":
            return self._like(None)
        if kind == "follow":
            return self._graph("app.bsky.graph.follow")
        if kind == "repost":
            return self._repost()
        if kind == "post":
            return self._post()
        if kind == "delete":
            return self._delete()
        if kind == "profile":
            return self._profile()
        if kind == "block":
            return self._graph("app.bsky.graph.block")
        if kind == "listitem":
            return self._listitem()
        if kind == "custom":
            return self._custom()
        if kind == "identity":
            return self._identity()
        if kind == "account":
            return self._account()
        if kind == "sync":
            return self._sync()
        return self._info()

    def _pick_repo(self) -> _Repo:
        # Skewed activity: density ~ x^(-1/3), so low indices are the busy accounts.
        repos = self._repos
        return repos[int(len(repos) * self._rng.random() ** 1.5)]

    def _like(self, fault: str | None) -> bytes:
        rng = self._rng
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.like",
            "createdAt": self._created_at(),
            "subject": self._post_ref(),
        }
        if rng.random() < 0.08:
            record["via"] = self._post_ref()
        return self._create(self._pick_repo(), "app.bsky.feed.like", record, fault=fault)

    def _repost(self) -> bytes:
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.repost",
            "createdAt": self._created_at(),
            "subject": self._post_ref(),
        }
        if self._rng.random() < 0.3:
            record["via"] = self._post_ref()
        return self._create(self._pick_repo(), "app.bsky.feed.repost", record)

    def _graph(self, collection: str) -> bytes:
        record = {"$type": collection, "createdAt": self._created_at(), "subject": self._some_did()}
        return self._create(self._pick_repo(), collection, record)

    def _listitem(self) -> bytes:
        repo = self._pick_repo()
        record = {
            "$type": "app.bsky.graph.listitem",
            "createdAt": self._created_at(),
            "list": repo.list_uri,
            "subject": self._some_did(),
        }
        return self._create(repo, "app.bsky.graph.listitem", record)

    def _post(self) -> bytes:
        rng = self._rng
        repo = self._pick_repo()
        lang = rng.choices(_LANGS, _LANG_WEIGHTS)[0]
        text, facets = self._post_text(lang)
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "createdAt": self._created_at(),
            "text": text,
        }
        roll = rng.random()
        if roll < 0.85:
            record["langs"] = [lang]
        elif roll < 0.92:
            record["langs"] = [lang, "en"] if lang != "en" else ["en-US", "en"]
        if facets:
            record["facets"] = facets
        if rng.random() < 0.3:
            root = self._post_ref()
            parent = root if rng.random() < 0.5 else self._post_ref()
            record["reply"] = {"parent": parent, "root": root}
        roll = rng.random()
        if roll < 0.15:
            record["embed"] = self._images_embed()
            if rng.random() < 0.3:
                record["text"] = ""
                record.pop("facets", None)
        elif roll < 0.23:
            record["embed"] = self._external_embed()
        elif roll < 0.28:
            record["embed"] = {"$type": "app.bsky.embed.record", "record": self._post_ref()}
        elif roll < 0.30:
            record["embed"] = {
                "$type": "app.bsky.embed.recordWithMedia",
                "media": self._images_embed(),
                "record": {"$type": "app.bsky.embed.record", "record": self._post_ref()},
            }
        return self._create(repo, "app.bsky.feed.post", record, remember_post=True)

    def _profile(self) -> bytes:
        rng = self._rng
        repo = self._pick_repo()
        record: dict[str, Any] = {
            "$type": "app.bsky.actor.profile",
            "avatar": self._blob("image/jpeg", 20_000, 900_000),
            "createdAt": self._created_at(),
            "description": rng.choice(_BIOS),
            "displayName": rng.choice(_DISPLAY_NAMES),
        }
        if rng.random() < 0.7:
            record["banner"] = self._blob("image/jpeg", 30_000, 1_000_000)
        if rng.random() < 0.3:
            record["pinnedPost"] = self._post_ref()
        block = libipld.encode_dag_cbor(record)
        key = "app.bsky.actor.profile/self"
        action = "update" if key in repo.records else "create"
        return self._commit(repo, [(action, key, block)])

    def _custom(self) -> bytes:
        rng = self._rng
        repo = self._pick_repo()
        created = self._created_at()
        if rng.random() < 0.7:
            payload = rng.randbytes(rng.randrange(8, 64))
            record: dict[str, Any] = {
                "$type": _CUSTOM_BYTES_NSID,
                "createdAt": created,
                "device": {
                    "firmware": {
                        "digest": rng.randbytes(32),
                        "version": f"1.{rng.randrange(10)}.{rng.randrange(10)}",
                    },
                    "id": f"dev-{rng.randrange(16**6):06x}",
                    "location": {
                        "lat": rng.randrange(-90_000_000, 90_000_000),
                        "lon": rng.randrange(-180_000_000, 180_000_000),
                    },
                },
                "payload": payload,
                # A CID kept as a plain byte string: it must render as $bytes, never as $link.
                "checksum": _RAW_SHA256 + _sha256(payload).digest(),
                "note": None if rng.random() < 0.5 else "calibrated & <checked>",
                "samples": [rng.randrange(-1000, 1000) for _ in range(rng.randrange(0, 6))],
            }
            return self._create(repo, _CUSTOM_BYTES_NSID, record, exact=True)
        play: dict[str, Any] = {
            "$type": _CUSTOM_PLAY_NSID,
            "artists": [{"artistName": rng.choice(_ARTISTS)} for _ in range(rng.randrange(1, 3))],
            "duration": None if rng.random() < 0.3 else rng.randrange(90, 420),
            "playedTime": created,
            "releaseName": rng.choice(_TRACKS),
            "submissionClientAgent": "jetflow-synth/1.0",
            "trackName": rng.choice(_TRACKS),
        }
        return self._create(repo, _CUSTOM_PLAY_NSID, play)

    def _delete(self) -> bytes:
        rng = self._rng
        for _ in range(8):
            repo = self._pick_repo()
            if len(repo.records) > (1 if "app.bsky.actor.profile/self" in repo.records else 0):
                break
        else:
            return self._like(None)  # nothing to delete yet: the network's default action
        keys = [k for k in repo.keys if k != "app.bsky.actor.profile/self"]
        return self._commit(repo, [("delete", rng.choice(keys), None)])

    def _identity(self) -> bytes:
        rng = self._rng
        repo = self._pick_repo()
        body: dict[str, Any] = {"did": repo.did, "seq": self._next_seq(), "time": self._time()}
        roll = rng.random()
        if roll < 0.55:
            body["handle"] = repo.handle
        elif roll < 0.6:
            body["handle"] = "handle.invalid"
        return encode_frame({"op": 1, "t": "#identity"}, body)

    def _account(self) -> bytes:
        rng = self._rng
        repo = self._pick_repo()
        body: dict[str, Any] = {"did": repo.did, "seq": self._next_seq(), "time": self._time()}
        if rng.random() < 0.7:
            body["active"] = True
        else:
            body["active"] = False
            body["status"] = rng.choice(_ACCOUNT_STATUSES)
        return encode_frame({"op": 1, "t": "#account"}, body)

    def _sync(self) -> bytes:
        repo = self._pick_repo()
        if repo.commit_cid is None or repo.commit_block is None or repo.rev is None:
            self._commit(repo, [], emit=False)  # a repository announces itself with an empty commit
        assert (
            repo.commit_cid is not None and repo.commit_block is not None and repo.rev is not None
        )
        car = _car(repo.commit_cid, [(repo.commit_cid, repo.commit_block)])
        body = {
            "blocks": car,
            "did": repo.did,
            "rev": repo.rev,
            "seq": self._next_seq(),
            "time": self._time(),
        }
        return encode_frame({"op": 1, "t": "#sync"}, body)

    def _info(self) -> bytes:
        body = {
            "message": "Requested cursor exceeded limit. Possibly missing events",
            "name": "OutdatedCursor",
        }
        return encode_frame({"op": 1, "t": "#info"}, body)

    # -- commits -----------------------------------------------------------------------------

    def _create(
        self,
        repo: _Repo,
        collection: str,
        record: dict[str, Any],
        *,
        exact: bool = False,
        remember_post: bool = False,
        fault: str | None = None,
    ) -> bytes:
        block = encode(record) if exact else libipld.encode_dag_cbor(record)
        key = self._new_key(repo, collection)
        writes: list[tuple[str, str, bytes | None]] = []
        if len(repo.records) >= MAX_RECORDS_PER_REPO:
            oldest = next(k for k in repo.records if k != "app.bsky.actor.profile/self")
            writes.append(("delete", oldest, None))
        writes.append(("create", key, block))
        frame = self._commit(repo, writes, fault=fault)
        if remember_post:
            ref = (f"at://{repo.did}/{key}", cid_to_str(repo.records[key]))
            if len(self._recent_posts) < 512:
                self._recent_posts.append(ref)
            else:
                self._recent_posts[self._recent_at] = ref
                self._recent_at = (self._recent_at + 1) % 512
        return frame

    def _commit(
        self,
        repo: _Repo,
        writes: list[tuple[str, str, bytes | None]],
        *,
        fault: str | None = None,
        emit: bool = True,
    ) -> bytes:
        """Apply ``writes`` (action, key, record block) to ``repo``; return the #commit frame."""
        rng = self._rng
        since, prev_data = repo.rev, repo.root
        ops: list[dict[str, Any]] = []
        records: list[tuple[bytes, bytes]] = []
        for action, key, block in writes:
            if block is None:
                ops.append({"action": action, "path": key, "cid": None, "prev": repo.remove(key)})
                continue
            cid = _dag_cid(block)
            records.append((cid, block))
            previous = repo.put(key, cid)
            op: dict[str, Any] = {"action": action, "path": key, "cid": cid}
            if previous is not None:
                op["prev"] = previous
            ops.append(op)
        root, nodes = repo.rebuild([key for _action, key, _block in writes])
        micros = max(self._now_us, repo.rev_us + 1)
        repo.rev_us = micros
        rev = tid(micros, repo.clock_id)
        commit_block = _commit_block(repo.did, rev, root, rng.randbytes(64))
        commit_cid = _dag_cid(commit_block)
        repo.rev, repo.root, repo.commit_cid, repo.commit_block = (
            rev,
            root,
            commit_cid,
            commit_block,
        )
        if not emit:
            return b""
        if fault == "record_cid_mismatch":
            cid, block = records[-1]
            records[-1] = (cid, block[:-1] + bytes([block[-1] ^ 0x01]))
        elif fault == "path_without_slash":
            ops[-1]["path"] = ops[-1]["path"].replace("/", "")
        nodes.extend(records)
        nodes.append((commit_cid, commit_block))
        car = _car(commit_cid, nodes)
        if fault == "truncated_car":
            # Cut inside the last block entry (never at its start), so the CAR ends inside it.
            last = len(commit_block) + len(commit_cid) + 2
            car = car[: len(car) - rng.randrange(1, last - 1)]
        body = {
            "blobs": [],
            "blocks": car,
            "commit": commit_cid,
            "ops": ops,
            "prevData": prev_data,
            "rebase": False,
            "repo": repo.did,
            "rev": rev,
            "seq": self._next_seq(),
            "since": since,
            "time": self._time(),
            "tooBig": False,
        }
        frame: bytes = _COMMIT_HEADER + libipld.encode_dag_cbor(body)
        return frame

    def _fault(self, kind: str) -> bytes:
        rng = self._rng
        if kind in ("truncated_car", "record_cid_mismatch", "path_without_slash"):
            return self._like(kind)
        frame = self._like(None)
        if kind == "truncated_frame":
            return frame[: rng.randrange(1, len(frame))]
        # non_canonical_cbor: the same values, but not in canonical form.
        body = frame[len(_COMMIT_HEADER) :]
        variant = rng.randrange(3)
        if variant == 0:  # 'op' with a one-byte integer head that a 1 fits in directly
            return b"\xa2\x61t\x67#commit\x62op\x18\x01" + body
        if variant == 1:  # header keys out of canonical (length-first) order
            return b"\xa2\x62op\x01\x61t\x67#commit" + body
        # 'seq' with a needless 8-byte head
        at = body.index(b"\x63seq") + 4
        _major, arg, end = _read_uint(body, at)
        return _COMMIT_HEADER + body[:at] + b"\x1b" + arg.to_bytes(8, "big") + body[end:]

    # -- small helpers -----------------------------------------------------------------------

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _iso(self, micros: int) -> str:
        seconds, rest = divmod(micros, 1_000_000)
        prefix = self._second_prefix.get(seconds)
        if prefix is None:
            if len(self._second_prefix) > 4096:
                self._second_prefix.clear()
            prefix = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second_prefix[seconds] = prefix
        return f"{prefix}.{rest // 1000:03d}Z"

    def _time(self) -> str:
        return self._iso(self._now_us)

    def _created_at(self) -> str:
        # Clients stamp records a little before the relay sees them (and their clocks drift).
        return self._iso(self._now_us - int(self._rng.expovariate(1.0) * 800_000) + 150_000)

    def _new_key(self, repo: _Repo, collection: str) -> str:
        rng = self._rng
        micros = self._now_us - rng.randrange(1_000_000)
        while True:
            key = f"{collection}/{tid(micros, rng.randrange(1024))}"
            if key not in repo.records:
                return key
            micros += 1

    def _some_did(self) -> str:
        rng = self._rng
        if rng.random() < 0.5:
            return self._repos[rng.randrange(len(self._repos))].did
        return rng.choice(self._outside_dids)

    def _outside_post_ref(self) -> dict[str, str]:
        rng = self._rng
        did = "did:plc:" + "".join(rng.choices(_B32, k=24))
        rkey = tid(self._now_us - rng.randrange(10**11), rng.randrange(1024))
        return {
            "cid": cid_to_str(_dag_cid(rng.randbytes(16))),
            "uri": f"at://{did}/app.bsky.feed.post/{rkey}",
        }

    def _post_ref(self) -> dict[str, str]:
        """A strong ref to a post: a recent synthetic one, or one from outside the network."""
        rng = self._rng
        recent = self._recent_posts
        if recent and rng.random() < 0.7:
            uri, cid = recent[rng.randrange(len(recent))]
            return {"cid": cid, "uri": uri}
        return dict(rng.choice(self._outside_posts))

    def _blob(self, mime: str, low: int, high: int) -> dict[str, Any]:
        # libipld writes the raw CID bytes as a tag-42 link (see the module docstring).
        ref = compute_cid(self._rng.randbytes(24), RAW)
        return {
            "$type": "blob",
            "ref": ref,
            "mimeType": mime,
            "size": self._rng.randrange(low, high),
        }

    def _images_embed(self) -> dict[str, Any]:
        rng = self._rng
        images = []
        for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
            image: dict[str, Any] = {
                "alt": rng.choice(_ALTS),
                "image": self._blob(
                    rng.choice(("image/jpeg", "image/jpeg", "image/png", "image/webp")),
                    20_000,
                    1_000_000,
                ),
            }
            if rng.random() < 0.9:
                image["aspectRatio"] = {
                    "height": rng.randrange(300, 2000),
                    "width": rng.randrange(300, 2000),
                }
            images.append(image)
        return {"$type": "app.bsky.embed.images", "images": images}

    def _external_embed(self) -> dict[str, Any]:
        rng = self._rng
        external: dict[str, Any] = {
            "description": rng.choice(_DESCRIPTIONS),
            "title": rng.choice(_TITLES),
            "uri": f"{rng.choice(_SITES)}{rng.randrange(10**6)}",
        }
        if rng.random() < 0.7:
            external["thumb"] = self._blob("image/jpeg", 5_000, 900_000)
        return {"$type": "app.bsky.embed.external", "external": external}

    def _post_text(self, lang: str) -> tuple[str, list[dict[str, Any]]]:
        """Post text with facets whose byte offsets index its UTF-8 encoding."""
        rng = self._rng
        parts: list[str] = [rng.choice(_TEXTS[lang])]
        size = len(parts[0].encode())
        facets: list[dict[str, Any]] = []

        def add(text: str, feature: dict[str, Any] | None) -> None:
            nonlocal size
            encoded = len(text.encode())
            if feature is not None:
                facets.append(
                    {"features": [feature], "index": {"byteEnd": size + encoded, "byteStart": size}}
                )
            parts.append(text)
            size += encoded

        if rng.random() < 0.25:
            add(" " + rng.choice(_EMOJI), None)
        if rng.random() < 0.08:
            add("\n\n", None)
            add(rng.choice(_TEXTS[rng.choice(_LANGS)]), None)
        if rng.random() < 0.1:
            target = self._repos[rng.randrange(len(self._repos))]
            add(" ", None)
            add(
                "@" + target.handle, {"$type": "app.bsky.richtext.facet#mention", "did": target.did}
            )
        if rng.random() < 0.1:
            uri = f"{rng.choice(_SITES)}{rng.randrange(10**6)}"
            if rng.random() < 0.3:
                uri += "&ref=synth"
            add(" ", None)
            add(uri, {"$type": "app.bsky.richtext.facet#link", "uri": uri})
        if rng.random() < 0.08:
            tag = rng.choice(_TAGS)
            add(" ", None)
            add("#" + tag, {"$type": "app.bsky.richtext.facet#tag", "tag": tag})
        return "".join(parts), facets


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    size = len(data)
    if size < 24:
        return bytes([0x60 | size]) + data
    if size < 0x100:
        return bytes([0x78, size]) + data
    return b"\x79" + size.to_bytes(2, "big") + data


def _commit_block(did: str, rev: str, data: bytes, sig: bytes) -> bytes:
    """The signed-commit block, written directly (canonical key order: did, rev, sig, data,
    prev, version); equal to ``encode({..., "data": Link(data), "prev": None, ...})``."""
    return b"".join(
        (
            b"\xa6\x63did",
            _text(did),
            b"\x63rev",
            _text(rev),
            b"\x63sig\x58\x40",
            sig,
            b"\x64data\xd8\x2a\x58\x25\x00",
            data,
            b"\x64prev\xf6\x67version\x03",
        )
    )


def _car(root: bytes, blocks: list[tuple[bytes, bytes]]) -> bytes:
    """A CAR v1 with one CIDv1/sha2-256 root (what :func:`jetflow.codec.car.write_car` writes)."""
    out = bytearray(_CAR_HEADER_START)
    out += root
    out += _CAR_HEADER_END
    for cid, block in blocks:
        size = len(cid) + len(block)
        while size >= 0x80:
            out.append((size & 0x7F) | 0x80)
            size >>= 7
        out.append(size)
        out += cid
        out += block
    return bytes(out)


def _read_uint(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read a canonical CBOR head at ``pos``; return (major type, argument, end position)."""
    initial = data[pos]
    info = initial & 0x1F
    if info < 24:
        return initial >> 5, info, pos + 1
    size = 1 << (info - 24)
    return initial >> 5, int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def write_capture(
    path: str | Path,
    frames: int,
    *,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> int:
    """Write ``frames`` synthetic frames to a jetflow capture file; return how many were written.

    The file holds one :func:`~jetflow.codec.capture.encode_record` per frame, the format of the
    shared corpus, so every replay tool reads it; a path ending in ``.zst`` is written as one
    zstd stream (as the corpus is). ``options`` go to :class:`SyntheticFirehose`; ``progress``
    is called with the running count every 1,000 frames and at the end.
    """
    target = Path(path)
    source = SyntheticFirehose(seed, **options)
    written = 0
    with target.open("wb") as raw:
        out: BinaryIO
        if target.name.endswith(".zst"):
            out = zstandard.ZstdCompressor().stream_writer(raw, closefd=False)
        else:
            out = raw
        try:
            batch: list[bytes] = []
            for frame in source.frames(frames):
                batch.append(encode_record(frame))
                written += 1
                if len(batch) == 1000:
                    out.write(b"".join(batch))
                    batch.clear()
                    if progress is not None:
                        progress(written)
            out.write(b"".join(batch))
        finally:
            if out is not raw:
                out.close()
    if progress is not None and written % 1000:
        progress(written)
    return written
