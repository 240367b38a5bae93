"""Spam and abuse are never answered: disguised contacts, links, insults and floods are labelled spam on the
live path, look-alike questions are not, and benchmarks/spam.py measures it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cohost.understand import abuse

ROOT = Path(__file__).resolve().parent.parent


def _live(engine, text: str):
    """The decision the live room gets (triage, then finish), with nothing cached from earlier tests."""
    from cohost.engine import Message

    engine.clear_cache()
    return engine.answer_many([Message(text)])[0]


@pytest.mark.parametrize("text", [
    "加V 1 3 8 0 0 1 3 8 0 0 0",          # spaced digits
    "ｖｘ：ａｂｃ８８６６ 私聊",             # full width
    "ⓥⓧ 886688 领福利",                   # circled letters
    "jia wei xin 领红包",                  # pinyin
    "扣扣 2⃣️8⃣️4⃣️7⃣️5⃣️6⃣️1⃣️9⃣️",          # keycap emoji digits
    "企鹅 五六七八九零一二",                 # digits spelt in Chinese
    "威 信 zz6688 拿货价",                  # homophone, spaced
    "w w w . f u l i 8 8 . c o m",         # spaced link
    "t点cn/abc123 点开领券",                 # 点 for the dot
    "复制 ¥Xy12345¥ 打开淘宝",              # a shop token
])
def test_disguised_contacts_and_links_are_spam(engine, text):
    d = _live(engine, text)
    assert d.intent.label == "spam", d.intent.probs
    assert not d.answered


@pytest.mark.parametrize("text", [
    "主播 s b", "煞 笔 主 播", "你🐎没了", "n m s l", "河南人都是骗子", "女人就是拜金 恶心", "黑鬼滚出去",
    "哈哈哈哈哈哈哈哈哈哈", "111111111", "求求主播看我一眼" * 25,
])
def test_insults_attacks_and_floods_are_spam(engine, text):
    assert _live(engine, text).intent.label == "spam"


@pytest.mark.parametrize("text", [
    "3号多少钱", "165 120斤穿什么码", "微信能付款吗", "链接在哪", "怎么设置", "怎么取消", "客服电话是多少",
    "订单号 2411221234567 什么时候发货", "去死皮的有吗", "滚筒洗衣机能洗吗", "我是胖子能穿吗", "usb接口是什么的",
    "1 2 3 号都要", "加购了", "主播好美", "太贵了吧", "发货好慢", "哈哈哈",
])
def test_look_alikes_are_not_spam(engine, text):
    assert _live(engine, text).intent.label != "spam"


def test_signals_undo_disguises_and_spare_look_alikes():
    assert abuse.contact_form("ｖｘ：ｚ ｈ ａ ｏ ８ ８") == "vx:zhao88"
    assert abuse.contact_form("幺三八 零零 一二三四").startswith("13800")
    assert abuse.is_contact("V❤️ xx5566") and abuse.is_contact("138-0013-8000 货到付款")
    for text in ("微信能付款吗", "qq怎么绑定", "165 120斤", "1000mAh的有吗", "快递单号 SF1234567890 查不到",
                 "能加主播微信吗", "v领的有吗"):
        assert not abuse.is_contact(text), text
    assert abuse.insult("主播 s b") and abuse.insult("傻Ｘ") and abuse.insult("你🐎的")
    for text in ("usb接口", "去死皮的有吗", "给我妈的生日礼物", "傻傻分不清"):
        assert not abuse.insult(text), text
    assert abuse.group_attack("东北人都是骗子")
    assert not abuse.group_attack("不是所有东北人都是骗子")
    assert not abuse.group_attack("我是东北人 冬天好冷")


def test_benchmark_runs_on_a_slice_and_prints_the_figures(tmp_path, cache_dir):
    cold = tmp_path / "cold"
    cold.mkdir()
    for split, extra in (("test", ["fine-grained-label"]), ("dev", [])):
        with (cold / f"{split}.csv").open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(["", "split", "topic", "label", *extra, "TEXT"])
            w.writerow([1, split, "region", 1, *(["2"] if extra else []), "某地人都是小偷 滚出去"])
            w.writerow([2, split, "region", 0, *(["0"] if extra else []), "我是南方人 第一次看到下雪 好开心"])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"cache_dir": str(cache_dir)}), encoding="utf-8")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "spam.py"), "--config", str(config), "--cold", str(cold),
           "--limit", "12"]
    out = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300, check=True).stdout
    report = json.loads(out)
    assert set(report["sets"]) == {"cold_test", "cold_dev", "own_tune", "own_report"}
    test = report["sets"]["cold_test"]
    assert (test["n"], test["spam"], test["ok"]) == (2, 1, 1)
    assert test["tp"] + test["fn"] == 1 and test["fp"] + test["tn"] == 1
    for name in ("own_tune", "own_report"):
        s = report["sets"][name]
        assert s["n"] == 12 and s["tp"] + s["fn"] == s["spam"]
        assert {g["group"] for g in s["groups"]} <= {"abuse", "ad", "contact", "link", "flood", "copypaste",
                                                      "question", "purchase", "request", "greeting", "chitchat",
                                                      "complaint"}
    text = subprocess.run([*cmd, "--sets", "own_tune"], capture_output=True, text=True, timeout=300,
                          check=True).stdout
    assert "| own_tune | 12 |" in text and "precision" in text and "| group | gold |" in text


def test_own_set_halves_are_stable_and_balanced():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import spam

    rows = spam.read_own(ROOT / "knowledge" / "spam" / "danmaku.jsonl")
    assert len(rows) >= 300
    assert spam.half("3号多少钱") == spam.half("3号多少钱")
    for h in ("tune", "report"):
        part = [r for half, r in rows if half == h]
        assert sum(r.spam for r in part) >= 60 and sum(not r.spam for r in part) >= 60
    kinds = {r.group for _, r in rows if r.spam}
    assert {"ad", "contact", "link", "abuse", "flood", "copypaste"} <= kinds
