"""Signals of spam and abuse in one raw danmaku, for the intent classifier's shape features.

Spammers disguise contact details and links so that a plain pattern misses them: full-width or circled
characters (ｖｘ, ⓥⓧ, ①②③), keycap emoji digits (1️⃣2️⃣), digits spelt in Chinese (幺三八 / 三四五六七),
spaced letters and digits ("v x : z h a o 8 8 6 6", "w w w . x x . c o m"), 点 or "dot" for the dot,
homophones (威信, 薇芯, 卫星 for 微信; 扣扣, 蔻蔻 for QQ; 家 for 加) and pinyin ("jia wei xin"). Insults
are disguised the same way (s b, 煞 笔, 你🐎, nmsl). ``contact_form`` and ``abuse_form`` undo all of that; the
patterns below then read the result. Neither form is shown to anyone or used for retrieval: the normaliser
(``normalize.py``) stays as it is for answer matching.

Three signals come out, each 0 or 1:
- ``contact``: a handle (an app named next to an id, 加 + an app, a phone number), a link or a shop token;
- ``insult``: a word from the insult and slur lexicon below;
- ``group_attack``: a sweeping judgement of a group of people ("河南人都是骗子", "女人就是拜金").
They are features, not verdicts: the classifier learns their weight from the seeds, next to the text's
n-grams, so "微信能付款吗" (an app named, no handle) and "去死皮的有吗" stay questions.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc
from pypinyin import lazy_pinyin

_T2S = opencc.OpenCC("t2s")

# Emoji that stand for a word in abuse and contact spam; every other symbol is dropped.
_EMOJI_WORDS = {"🐎": "马", "🐴": "马", "🐶": "狗", "🐕": "狗", "🐷": "猪", "🐖": "猪", "🐧": "qq", "✈": "飞机",
                "💩": "屎"}
_CN_DIGITS = str.maketrans("零〇一二三四五六七八九幺两", "0012345678912")
_CN_DIGIT_RUN = re.compile(r"[零〇一二三四五六七八九幺两](?:[\s\-]*[零〇一二三四五六七八九幺两]){4,}")
# Separators a spammer puts between the characters of a handle: spaces, dots, dashes, stars, slashes.
_SEP = r"[\s\-_.·•*~,，、|/\\]"
# Single letters or digits, one by one with separators between them: "z h a o 8 8 6 6", "1 3 8 0 0".
_SPACED = re.compile(rf"(?<![a-z0-9])[a-z0-9](?:{_SEP}+[a-z0-9](?![a-z0-9]))+")
_SPACED_CJK = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
_DOT_WORD = re.compile(r"(?<=[a-z0-9])\s*(?:点|點|dot|\(\.\)|。)\s*(?=[a-z0-9])")
_DOT_SPACES = re.compile(r"(?<=[a-z0-9])\s*([.:/])\s*(?=[a-z0-9/])")


def _drop_symbols(text: str) -> str:
    out = []
    for ch in text:
        word = _EMOJI_WORDS.get(ch)
        if word is not None:
            out.append(word)
            continue
        cat = unicodedata.category(ch)
        if cat in ("So", "Sk", "Co", "Cs", "Cf", "Mn", "Me") or 0xFE00 <= ord(ch) <= 0xFE0F:
            out.append(" ")
            continue
        out.append(ch)
    return "".join(out)


def _base_form(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw)  # ｖｘ -> vx, ① -> 1, ⓥ -> v
    text = _T2S.convert(_drop_symbols(text)).lower()
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=4096)
def contact_form(raw: str) -> str:
    """The text with the disguises of contact details and links undone."""
    text = _base_form(raw)
    text = _CN_DIGIT_RUN.sub(lambda m: re.sub(r"[\s\-]", "", m.group()).translate(_CN_DIGITS), text)
    text = _DOT_WORD.sub(".", text)
    text = _SPACED.sub(lambda m: re.sub(_SEP, "", m.group()) if "." not in m.group() else
                       re.sub(r"[\s\-_·•*~,，、|\\]", "", m.group()), text)
    text = _DOT_SPACES.sub(r"\1", text)
    return _SPACED_CJK.sub("", text)


# -- contact details and links -------------------------------------------------------------------------------

# An app or a way to reach someone, in the forms spammers type it (after contact_form, so in simplified
# characters, lower case, without spaces between Chinese characters).
_WX = r"(?:[微威薇徽维卫魏]|wei\s?|v)\s*(?:信|芯|星|心|xin)"
_APP = (rf"(?:{_WX}|vx|wx|wechat|绿泡泡|"
        r"qq|扣扣|蔻蔻|口口|企鹅|q群|q号|qun|kou\s?kou|telegram|tg|飞机|电报|whatsapp|line|"
        r"抖音号|快手号|dy号|微博|围脖|电话|手机号|手机|tel|"
        r"[vq](?![a-z])|[薇威徽维卫]|[+＋]\s*[vq威薇])")
# An id: five or more letters, digits or _ with at least one digit, or a run of digits.
_ID = r"(?=[a-z0-9_@]{5,})[a-z0-9_@]*\d[a-z0-9_@]*"
_CONTACT = re.compile(
    rf"(?:加|家|佳|\+|jia\s?)\s*(?:我\s*)?(?:{_WX}|vx|wx|v(?![a-z])|qq|扣扣|q(?![a-z])|q群|好友|企鹅)|"
    rf"{_APP}\s*(?:号码?|hao|群号?|搜|同号|id)?\s*[:：=]?\s*(?:是|搜)?\s*{_ID}|"
    r"(?:加|进)\s*群\s*\d{5,}|群号?\s*[:：]?\s*\d{5,}|"
    r"私聊|私信我|私我|主页有|看我主页|看主页|来我主页|点我头像|看我头像|头像二维码|看我简介|简介里|看我昵称|"
    r"群号|联系方式|lian\s?xi\s?fang\s?shi|zhu\s?ye|"
    r"(?<!\d)1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}(?!\d)|(?<![a-z0-9])\d{8,}(?![a-z0-9])|"
    r"h[tx]{2}ps?:|://|www\.|[a-z0-9-]+\.(?:com|cn|net|top|cc|xyz|vip|me|tv|app|ly|io|org|site|shop|club|info)"
    r"(?![a-z])|"
    r"[¥$€]\s*[a-z0-9]{6,}\s*[¥$€]",
    re.IGNORECASE)
# Numbers that are not a contact: an order, a parcel, a link number.
_NOT_CONTACT = re.compile(r"(?:订单号?|单号|快递|物流|运单|sf|jd|yt|zto)\s*[:：]?\s*[a-z]*\d{6,}", re.IGNORECASE)


def is_contact(raw: str) -> bool:
    """A handle, a link or a shop token, however disguised."""
    form = contact_form(raw)
    form = _NOT_CONTACT.sub(" ", form)
    if _CONTACT.search(form):
        return True
    return _pinyin_contact(form)


_PY_CONTACT = re.compile(r"(?:^| )jia (?:wo )?(?:wei xin|wei|v|kou kou|q)(?: |$)|wei xin hao|kou kou hao")


def _pinyin_contact(form: str) -> bool:
    """加微信 by sound, in any characters: 家威心, 佳薇信. Only where a handle-like word is near."""
    if not re.search(r"[\u4e00-\u9fff]", form):
        return False
    return bool(_PY_CONTACT.search(" ".join(_syllable(c) for c in form if "\u4e00" <= c <= "\u9fff")))


@lru_cache(maxsize=8192)
def _syllable(ch: str) -> str:
    s = lazy_pinyin(ch)[0]
    return s.replace("xing", "xin")


# -- insults and attacks on groups ---------------------------------------------------------------------------

# Matched on abuse_form: simplified, lower case, no spaces or symbols. Latin ones need letters around them
# to be absent ("usb" is not "sb").
_LATIN_INSULTS = ("sb", "nmsl", "cnm", "cnmd", "wdnmd", "nmb", "rnm", "tmd", "mlgb", "nnd", "shabi", "shab",
                  "nima", "nimasile", "nmsile", "caonima", "sabi", "fuck", "fck", "bitch", "nigger", "nigga",
                  "nimei", "sha bi")
_INSULTS = (
    # the person
    "傻逼", "傻b", "傻比", "傻x", "傻叉", "傻屌", "煞笔", "沙比", "啥比", "沙币", "傻币", "傻缺", "煞比", "煞逼",
    "沙雕主播",
    "脑残", "脑瘫", "智障", "弱智", "白痴", "蠢货", "蠢猪", "蠢驴", "二货", "贱人", "贱货", "贱逼", "贱种", "婊子",
    "骚货", "骚逼", "狗东西", "狗日", "狗娘", "狗杂种", "畜生", "畜牲", "杂种", "野种", "王八蛋", "龟孙", "去死",
    "快死", "死全家", "全家死", "死光", "死妈", "你妈死", "你妈没", "你马没", "你马死", "草泥马", "操你", "艹你",
    "日你", "干你娘", "尼玛", "你妈的", "你马的", "你妈逼", "你麻痹",
    "他妈的", "tm的", "滚犊子", "废物", "人渣", "丑逼", "丑八怪", "死胖子",
    "死肥猪", "肥猪", "母猪", "猪头", "老不死", "神经病", "有病吧", "脑子有病", "脑子有坑", "恶心死", "滚出",
    "滚回", "给爷爬", "爬开", "low逼", "装逼", "逼样", "丑鬼", "穷逼", "屌丝主播", "狗主播", "垃圾主播", "垃圾人",
    "垃圾东西", "丢人现眼", "不要脸", "臭不要脸", "没脑子", "猪脑子", "下贱", "低贱",
    # slurs against a group
    "黑鬼", "黑蛆", "黑砖", "尼哥", "黑奴", "黑猩猩", "阿三", "印度阿三", "小日本", "日本鬼子", "鬼子", "倭寇", "棒子",
    "高丽棒子", "洋垃圾", "白皮猪", "白左", "绿茶婊", "女拳", "田园女权", "女权癌", "普信男", "普信女", "龟男", "蝈蝻",
    "国男", "男拳", "娘炮", "基佬", "gay佬", "黑木耳", "捞女", "母狗", "偷井盖", "乡巴佬", "外地佬", "北佬", "捞仔",
    "台巴子", "港灿", "蝗虫", "支那", "绿绿", "回回", "蛮夷", "猴子", "劣等", "下等人", "低等", "残废",
    "死基佬", "人妖", "变态",
)
_LATIN = re.compile(r"(?<![a-z])(?:" + "|".join(sorted(map(re.escape, _LATIN_INSULTS), key=len, reverse=True))
                    + r")(?![a-z])")
_CJK_INSULT = re.compile("|".join(sorted(map(re.escape, [w for w in _INSULTS if not w.isascii()]),
                                         key=len, reverse=True)))
# Look-alikes that contain an insult and are not one.
_HARMLESS = re.compile(r"去死皮|去死角|滚出来|滚回来|猴子面包|我妈的|你妈妈|鬼子姜|棒子面|玉米棒子|"
                       r"变态辣|猪头肉|滚回家|垃圾东西太多|废物利用|肥猪肉|猪脑子汤")

# A group of people: a place, a people, a gender or a trait, with 人 or a word for people after it.
_PLACES = (
    "河南 河北 山东 山西 东北 上海 北京 天津 广东 广西 福建 浙江 江苏 苏北 安徽 "
    "江西 湖南 湖北 四川 重庆 贵州 云南 西藏 新疆 甘肃 青海 宁夏 陕西 内蒙 辽宁 "
    "吉林 黑龙江 海南 台湾 香港 澳门 温州 莆田 潮汕 茂名 农村 城里 外地 本地 "
    "南方 北方 西北 大陆 中国 日本 韩国 朝鲜 印度 美国 英国 法国 德国 俄罗斯 "
    "越南 泰国 非洲 欧洲 阿拉伯 犹太 穆斯林 黑 白 黄种 亚裔 外国 少数民族 汉族 "
    "回族 藏族 维族 "
).split()
_GROUP = (r"(?:(?:" + "|".join(_PLACES) + r")(?:人|佬|妹子?|女|男|仔|族|裔)|女人|男人|女的|男的|女生|男生|女性|男性|"
          r"娘们|老娘们|女司机|女权|男权|同性恋|gay|基佬|黑人|白人|老外|外国佬|胖子|矮子|穷人|农民|残疾人|"
          r"老人|大妈|小仙女|直男|北方佬|南蛮)")
_SWEEP = r"(?:都是|都|全是|全都|就是|就爱|就会|天生|一个个|没一个|没有一个|个个|本来就|果然|真是|太|最)"
_BAD = (r"(?:骗子|小偷|贼|垃圾|素质低|没素质|素质差|恶心|野蛮|低贱|下贱|罪犯|犯罪|懒|脏|臭|蠢|笨|坏|贱|丑|"
        r"不是好东西|没好东西|好东西|不要脸|该死|去死|滚|劣等|下等|狗|猪|猴|畜生|人渣|智商低|蛮|土|穷|恐怖|"
        r"拜金|绿茶|婊|作|事多|矫情|小气|抠|奸|滑|坑|歧视|看不起|丢人|不配|活该|乱|骚|low|欠揍|欠打|有病)")
# Words that condemn whoever they are said of, with or without 都/就是 ("男人有时真是恶心的生物").
_VILE = r"(?:恶心|骗子|最臭|名声臭|丢人|吓人|有毛病|犯贱|垃圾|素质低|没素质|野蛮|恶臭|下头|普信|可恶|无耻|贱|滚)"
_GROUP_ATTACK = re.compile(rf"{_GROUP}.{{0,6}}?{_SWEEP}.{{0,6}}?{_BAD}|{_GROUP}(?:不配|滚|去死|活该|该死)|"
                           rf"{_GROUP}(?:别|不要|就别).{{0,4}}(?:出来|丢人|丢脸|恶心人)|"
                           rf"{_GROUP}.{{0,8}}?{_VILE}|{_VILE}的?.{{0,4}}{_GROUP}|"
                           rf"(?:滚出|滚回|赶出).{{0,4}}(?:中国|国|去|我们)|(?:讨厌|恶心|看不起|瞧不起|歧视).{{0,3}}{_GROUP}")
# "不是所有河南人都是骗子": a judgement quoted to deny it.
_DENIED = re.compile(r"(?:不是所有|并不是|不是每个|不能说|别说|不要说|谁说|不代表|不等于|不要一棍子|地域黑|歧视别人|"
                     r"不歧视|没有歧视|并不歧视|没歧视|不是歧视|没有看不起|不是看不起|哪里都有好人)")


@lru_cache(maxsize=4096)
def abuse_form(raw: str) -> str:
    """The text with the disguises of insults undone: simplified, lower case, no spaces or symbols."""
    text = _base_form(raw)
    return re.sub(r"[\s\W_]+", "", text.replace("×", "x"))


def insult(raw: str) -> bool:
    form = abuse_form(raw)
    form = _HARMLESS.sub("", form)
    return bool(_CJK_INSULT.search(form) or _LATIN.search(_latin_form(raw)))


def _latin_form(raw: str) -> str:
    """Letters typed one by one are one word here: "s b", "n m s l"."""
    return _SPACED.sub(lambda m: re.sub(_SEP, "", m.group()), _base_form(raw))


def group_attack(raw: str) -> bool:
    form = abuse_form(raw)
    return bool(_GROUP_ATTACK.search(form)) and not _DENIED.search(form)


def signals(raw: str) -> tuple[float, float, float]:
    """(contact, insult, group_attack), each 0.0 or 1.0."""
    return (1.0 if is_contact(raw) else 0.0, 1.0 if insult(raw) else 0.0, 1.0 if group_attack(raw) else 0.0)
