"""Lexical evidence: which content words of a question a candidate answer actually states.

Dense similarity says two questions are about the same kind of thing; it cannot tell "有口袋吗" from
"有内衬吗". Lexical evidence can: a content word that no part of an entry mentions is a reason to stay
silent, and a word the whole catalog never mentions is a question about something the catalog does not say.
"""

from __future__ import annotations

import re

import jieba

jieba.setLogLevel(60)

# Question frames and chat filler: words that say how something is asked, not what is asked about
# (多久 and 什么时候 ask when, whatever is asked about).
FUNCTION_WORDS = frozenset("""
吗 呢 吧 啊 呀 哦 嘛 哈 噢 么 的 地 得 了 着 过 是 不 没 有
没有 有没有 多少 什么 啥 怎么 怎么样 咋 咋样 如何 哪 哪个 哪里 哪些
能 能不能 可以 可不可以 会 会不会 要 要不要 用 想 想要 问 请问 问下
问一下 一下 下 还 还有 都 也 就 又 再 很 太 挺 好 比较 大概 一般
这 那 这个 那个 这款 那款 这件 那件 这种 款 件 个 号 链接 宝贝
商品 东西 衣服 产品 主播 宝宝 姐妹 家人 家人们 亲 老板 小姐姐 你们 我们 你 我
他 她 它 在 和 跟 与 或 或者 还是 呗 呐 嗯 额 诶 哎 耶 给 让
把 被 对 从 到 吗吗 呀呀 得 多 几 一 上 些 点 一点 儿 么样 咱
咱们 人 啦 喔 滴 能用 可以用 适合 适用
时候 什么时候 啥时候 何时 多久 多长时间 多长 为什么 为啥 为何 怎样 咋样 怎么办 咋办
""".split())
_TOKEN_OK = re.compile(r"[\u4e00-\u9fffa-z0-9]")
# "一支", "两件", "那瓶", "几个": quantities and pointers say how many or which one, not what about.
_NUMERALS = "这那哪几每一二两三四五六七八九十百千万"
_CLASSIFIERS = "个件支瓶条双套袋盒包只块张台把罐份次天周月年号"
_QUANTITY = re.compile(rf"^[{_NUMERALS}\d.]+[{_CLASSIFIERS}]?$")


def content_tokens(text: str) -> list[str]:
    """The words of a question that name what is asked about."""
    return [t for t in jieba.lcut(text)
            if t not in FUNCTION_WORDS and _TOKEN_OK.search(t) and not _QUANTITY.match(t)]


def grams(text: str) -> set[str]:
    """Character unigrams and bigrams of the meaningful characters in text."""
    chars = [c for c in text.lower() if _TOKEN_OK.match(c)]
    return set(chars) | {a + b for a, b in zip(chars, chars[1:], strict=False)}
