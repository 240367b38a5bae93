"""Each shop's blocklist and advertising-law words on their own (no models)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from cohost.knowledge.moderation import WORD_MAX, WORDS_MAX, Moderation, ModerationError
from cohost.knowledge.store import CatalogStore

SHOP = "s1"


@pytest.fixture
def mod(tmp_path: Path) -> Moderation:
    return Moderation(CatalogStore(tmp_path / "catalog.sqlite3").path)


def test_block_list_and_unblock(mod):
    assert mod.blocklist(SHOP) == []
    mod.block(SHOP, "user_id", " 10086 ", note="刷广告")
    mod.block(SHOP, "name", "加微信看福利", author="tester")
    mod.block("other", "name", "别家的")
    got = mod.blocklist(SHOP)
    assert [(b["kind"], b["value"]) for b in got] == [("name", "加微信看福利"), ("user_id", "10086")]  # newest first
    assert got[1]["note"] == "刷广告" and got[1]["author"] == "admin" and got[0]["author"] == "tester"
    assert set(got[0]) == {"kind", "value", "note", "created_at", "author"}
    assert got[0]["created_at"] >= got[1]["created_at"] > 0
    assert mod.unblock(SHOP, "user_id", "10086") is True
    assert mod.unblock(SHOP, "user_id", "10086") is False
    assert mod.unblock(SHOP, "name", "别家的") is False  # another shop's entry stays
    assert [b["value"] for b in mod.blocklist(SHOP)] == ["加微信看福利"]
    assert [b["value"] for b in mod.blocklist("other")] == ["别家的"]


def test_blocking_again_updates_the_note_not_a_duplicate(mod):
    mod.block(SHOP, "name", "小号", note="第一次")
    first = mod.blocklist(SHOP)[0]
    mod.block(SHOP, "name", "小号", note="又来了")
    (again,) = mod.blocklist(SHOP)
    assert again["note"] == "又来了" and again["created_at"] == first["created_at"]
    mod.block(SHOP, "user_id", "小号")  # the same text as another kind is another entry
    assert len(mod.blocklist(SHOP)) == 2


@pytest.mark.parametrize(("kind", "value", "field", "message"), [
    ("email", "x", "kind", "屏蔽类型"),
    ("user_id", "   ", "value", "不能为空"),
    ("name", "", "value", "不能为空"),
    ("name", "长" * 65, "value", "最多 64 个字"),
    ("name", "换\n行", "value", "控制字符"),
    ("user_id", "a\x00b", "value", "控制字符"),
    ("name", "a\u2028b", "value", "控制字符"),
])
def test_block_refuses_bad_values_in_chinese(mod, kind, value, field, message):
    with pytest.raises(ModerationError, match=message) as e:
        mod.block(SHOP, kind, value)
    assert isinstance(e.value, ValueError) and e.value.field == field
    assert mod.blocklist(SHOP) == []


def test_block_accepts_the_edges(mod):
    mod.block(SHOP, "name", "长" * 64)
    mod.block(SHOP, "name", "👨\u200d👩\u200d👧")  # emoji joined by ZWJ: a real display name
    with pytest.raises(ModerationError, match="备注"):
        mod.block(SHOP, "name", "x", note="注" * 201)
    assert len(mod.blocklist(SHOP)) == 2


def test_words_replace_both_lists(mod):
    assert mod.words(SHOP) == {"banned": [], "allowed": []}
    mod.set_words(SHOP, ["秒杀价", " 全网最低 ", "秒杀价"], ["最大码"])
    assert mod.words(SHOP) == {"banned": ["秒杀价", "全网最低"], "allowed": ["最大码"]}  # stripped, deduplicated
    mod.set_words(SHOP, ["神器"], [])
    assert mod.words(SHOP) == {"banned": ["神器"], "allowed": []}
    mod.set_words("other", [], ["第一次"])
    assert mod.words(SHOP)["allowed"] == [] and mod.words("other") == {"banned": [], "allowed": ["第一次"]}
    mod.set_words(SHOP, [], [])
    assert mod.words(SHOP) == {"banned": [], "allowed": []}


def test_words_keep_their_order_and_first_author(mod):
    mod.set_words(SHOP, ["丙", "甲", "乙"], [], author="alice")
    mod.set_words(SHOP, ["乙", "丁", "丙"], [], author="bob")
    assert mod.words(SHOP)["banned"] == ["乙", "丁", "丙"]
    with sqlite3.connect(mod.path) as db:
        authors = dict(db.execute("SELECT word, author FROM shop_words WHERE shop=?", (SHOP,)).fetchall())
    assert authors == {"乙": "alice", "丙": "alice", "丁": "bob"}


@pytest.mark.parametrize(("banned", "allowed", "field", "message"), [
    (["x" * (WORD_MAX + 1)], [], "banned", f"最多 {WORD_MAX} 个字"),
    ([], ["  "], "allowed", "允许的词第 1 个是空的"),
    (["好", "a\tb"], [], "banned", "额外禁用词第 2 个里有控制字符"),
    ([f"词{i}" for i in range(WORDS_MAX + 1)], [], "banned", f"最多 {WORDS_MAX} 个"),
    (["最大码"], ["最大码"], "allowed", "不能同时"),
    ("最大码", [], "banned", "列表"),
    ([1], [], "banned", "文字"),
])
def test_set_words_refuses_bad_lists_and_keeps_the_old_ones(mod, banned, allowed, field, message):
    mod.set_words(SHOP, ["原来的"], ["原来允许"])
    with pytest.raises(ModerationError, match=message) as e:
        mod.set_words(SHOP, banned, allowed)
    assert e.value.field == field
    assert mod.words(SHOP) == {"banned": ["原来的"], "allowed": ["原来允许"]}


def test_set_words_takes_the_limits_exactly(mod):
    mod.set_words(SHOP, [f"{i:03d}" + "x" * (WORD_MAX - 3) for i in range(WORDS_MAX)], [])
    assert len(mod.words(SHOP)["banned"]) == WORDS_MAX


def test_listeners_hear_every_change_on_the_callers_thread(mod):
    heard: list[tuple[str, int]] = []
    mod.listen(lambda shop: heard.append((shop, threading.get_ident())))

    def boom(_shop: str) -> None:
        raise RuntimeError("a broken listener")
    mod.listen(boom)  # does not stop the change nor the other listeners
    mod.block(SHOP, "name", "a")
    mod.unblock(SHOP, "name", "a")
    mod.unblock(SHOP, "name", "a")  # nothing removed: nothing changed
    mod.set_words("other", ["b"], [])
    with pytest.raises(ModerationError):
        mod.set_words(SHOP, ["x" * 99], [])  # refused: nothing changed
    me = threading.get_ident()
    assert heard == [(SHOP, me), (SHOP, me), ("other", me)]

    other: list[int] = []
    t = threading.Thread(target=lambda: (mod.listen(lambda _s: other.append(threading.get_ident())),
                                         mod.block(SHOP, "user_id", "9")))
    t.start()
    t.join()
    assert other == [t.ident]


def test_the_table_checks_kinds_too(mod):
    with sqlite3.connect(mod.path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO blocklist (shop, kind, value, created_at, author) VALUES ('s', 'ip', 'x', 0, 'a')")
    with sqlite3.connect(mod.path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO shop_words (shop, word, kind, created_at, author) VALUES ('s', 'x', 'maybe', 0, 'a')")


def test_two_instances_on_one_file_see_each_other(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    a, b = Moderation(path), Moderation(path)
    threads = [threading.Thread(target=lambda i=i: a.block(SHOP, "user_id", f"u{i}")) for i in range(20)]
    threads += [threading.Thread(target=lambda i=i: b.block(SHOP, "name", f"n{i}")) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(a.blocklist(SHOP)) == len(b.blocklist(SHOP)) == 40
