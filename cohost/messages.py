"""What shop owners read, in one place: Chinese by default, English on request.

The code raises its catalog and upload problems in English (stable text that logs, scripts and tests match
on); this module is where they become what an owner reads. The CLI (``--lang``) and the API
(``Accept-Language``, which /admin shows as it comes) both go through it, so `cohost knowledge import` and
the upload card on /admin say the same thing about the same row. A message already written in Chinese
passes through unchanged in both languages.

    message(text, lang)        one message (a Problem's, a StoreError's, a pydantic error's)
    where(w, lang)             "row 3" → 第 3 行, "products[0].id" → 第 1 个商品 › 编号
    problem_line(p, lang)      one Problem as a line for the terminal
    error_text(e, lang)        a CohostError as the CLI prints it
    text(key, lang, **kw)      the messages this module owns outright (unchanged upload, token rules...)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import CatalogError, Problem

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
INT64_MAX = 2**63 - 1  # SQLite's INTEGER: a larger id or version cannot even be looked up

FIELD_NAMES = {
    "product_id": "商品编号", "id": "编号", "question": "问题", "answer": "答案", "variants": "其他问法",
    "faq_id": "FAQ 编号", "name": "名称", "link": "链接号", "price": "价格", "aliases": "别名", "specs": "规格",
    "selling_points": "卖点", "shop": "店铺", "products": "商品", "faqs": "FAQ", "version": "版本", "text": "问题",
    "base_version": "基于的版本", "draft_id": "草稿编号", "filename": "文件名", "on_stage": "正在讲的商品",
    "format": "格式", "token": "令牌",
}
_KINDS = {"string": "文字", "list": "列表", "dictionary": "键值对", "number": "数字", "integer": "整数",
          "tuple": "列表", "boolean": "是或否"}


def size_text(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    if n >= 1024:
        return f"{round(n / 1024)} KB"
    return f"{n} 字节"


_SAVE_UTF8 = "请在 Excel 里“另存为 → CSV UTF-8（逗号分隔）”，或在编辑器里存成 UTF-8，再上传"


def _kind(m: re.Match[str]) -> str:
    return f"格式不对，应该是{_KINDS.get(m[1], m[1])}"


# (English pattern, its Chinese). The first that matches wins; keep the more specific ones first.
# What an upload cap counts (knowledge/uploads.py): English as raised → (Chinese, unit).
CAP_LABELS = {
    "products": ("商品数", "个"), "aliases of one product": ("一个商品的别名数", "个"),
    "selling points of one product": ("一个商品的卖点数", "个"), "specs of one product": ("一个商品的规格数", "个"),
    "selling points in all": ("卖点总数", "个"), "FAQs in all": ("FAQ 总数", "条"),
    "variants of one FAQ": ("一条 FAQ 的问法数", "个"), "variants in all": ("问法总数", "个"),
    "values in the file": ("文件里的值", "个"), "characters in the file": ("文件的总字数", "个字"),
    "FAQ rows": ("FAQ 行数", "行"),
}


def _over_cap(m: re.Match[str]) -> str:
    what, unit = CAP_LABELS.get(m[1], (m[1], ""))
    aliases = "（YAML 别名按展开后计算）" if m[4] else ""
    return f"{what}超过上限：至少 {m[2]} {unit}，上限是 {m[3]} {unit}{aliases}，文件没有被处理"


_ZH: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [(re.compile(p), f) for p, f in [
    # pydantic's own messages, as catalog and API validation reports them
    (r"^(.+) over the cap: at least ([\d,]+), the cap is ([\d,]+)( \(YAML aliases counted expanded\))?; "
     r"the file was not processed$", _over_cap),
    (r"^String should have at least 1 character$", lambda m: "不能为空"),
    (r"^Field required$", lambda m: "缺少这一项"),
    (r"^String should have at most (\d+) characters?$", lambda m: f"太长了，最多 {m[1]} 个字"),
    (r"^String should match pattern", lambda m: "只能用小写英文字母、数字、- 或 _"),
    (r"^Input should be a valid (string|list|dictionary|number|integer|tuple|boolean)", _kind),
    (r"^Input should be a finite number$", lambda m: "必须是有限的数字"),
    (r"^Input should be greater than or equal to (\S+)$", lambda m: f"不能小于 {m[1]}"),
    (r"^Input should be less than or equal to (\S+)$", lambda m: f"不能大于 {m[1]}"),
    (r"^Input should be greater than (\S+)$", lambda m: f"必须大于 {m[1]}"),
    (r"^Input should be less than (\S+)$", lambda m: f"必须小于 {m[1]}"),
    (r"^Extra inputs are not permitted$", lambda m: "不认识的字段（拼写错了？）"),
    (r"^Value error, price (\S+) has more than two decimal places",
     lambda m: f"价格 {m[1]} 超过两位小数：请写成元和分，例如 19.99"),
    # the catalog's cross-checks and file readers
    (r"^unknown product '(.*)'$", lambda m: f"商品“{m[1]}”不存在，请先在知识库里添加这个商品，或检查商品编号"),
    (r"^duplicate FAQ id '(.*)' \(first in row (\d+)\)$", lambda m: f"FAQ 编号“{m[1]}”重复了（第 {m[2]} 行已经用过）"),
    (r"^duplicate FAQ id '(.*)' \(first at (.*)\)$", lambda m: f"FAQ 编号“{m[1]}”重复了（{where(m[2])}已经用过）"),
    (r"^duplicate product id '(.*)'$", lambda m: f"商品编号“{m[1]}”重复了"),
    (r"^link (\d+) is already used by '(.*)'$", lambda m: f"链接号 {m[1]} 已经被商品“{m[2]}”用了"),
    (r"^expected (\d+) columns, got (\d+)$",
     lambda m: f"应该有 {m[1]} 列，这一行有 {m[2]} 列（文字里的英文逗号要用引号括起来）"),
    (r"^header must be (.*), got (.*)$", lambda m: f"第一行表头必须是 {m[1]}，现在是 {m[2] or '（空）'}"),
    (r"^empty file; expected the header (.*)$", lambda m: f"文件是空的；第一行应该是表头 {m[1]}"),
    (r"^the file is empty$", lambda m: "文件是空的"),
    (r"^file not found$", lambda m: "找不到这个文件"),
    (r"^unsupported file type (\S+);",
     lambda m: f"不支持 {m[1]} 文件；整个知识库请用 .yaml、.yml、.json，FAQ 表格请用 .csv、.xlsx"),
    (r"^catalog must be \.yaml, \.yml or \.json$", lambda m: "知识库文件必须是 .yaml、.yml 或 .json"),
    (r"^parsing took longer than the (\S+) s limit;",
     lambda m: f"解析超过 {m[1]} 秒的时间上限，文件没有被处理；请拆分成几个小一些的文件再上传"),
    (r"^parsing needs more than the (\d+) MB memory limit;",
     lambda m: f"解析需要的内存超过 {m[1]} MB 的上限，文件没有被处理；请拆分成几个小一些的文件再上传"),
    (r"^the parse process exited unexpectedly \(exit code (\S+)\);",
     lambda m: f"解析进程意外退出（退出码 {m[1]}），文件没有被处理；请重试，若再次出现请拆分文件"),
    (r"^this shop has no catalog yet", lambda m: "这个店铺还没有知识库：请先上传完整的知识库（.yaml 或 .json）"),
    (r"^not valid (YAML|JSON): ([\s\S]*)$", lambda m: f"不是有效的 {m[1]} 文件：{m[2]}"),
    (r"^not readable as CSV: ([\s\S]*)$", lambda m: f"无法按 CSV 读取：{m[1]}"),
    (r"^not UTF-8 or GB18030 text$", lambda m: "无法识别文件编码，请另存为 UTF-8 编码"),
    # knowledge/untrusted.py: encodings, YAML/JSON documents, spreadsheet cells
    (r"^cannot tell the file's encoding",
     lambda m: "读不出文件的编码（不是 UTF-8、UTF-16、GBK 或 Big5 文本）：" + _SAVE_UTF8),
    (r"^the file starts with a (\S+) byte order mark",
     lambda m: f"文件开头标明是 {m[1]} 编码，但这一行不是 {m[1]} 文本：" + _SAVE_UTF8),
    (r"^looks like mojibake: “([\s\S]*)”; read as (\S+) it",
     lambda m: f"看起来是乱码：“{m[1]}”。按 {m[2]} 读出来不是正常的中文，文件可能存成了别的编码，"
               "或者内容之前就已经转坏了：" + _SAVE_UTF8),
    (r"^looks like mojibake;", lambda m: "看起来是乱码：" + _SAVE_UTF8),
    (r"^duplicate key '([\s\S]*)' \(lines (\d+) and (\d+)\)",
     lambda m: f"键“{m[1]}”重复了（第 {m[2]} 行和第 {m[3]} 行）：同一层里一个键只能写一次"),
    (r"^duplicate key '([\s\S]*)';", lambda m: f"键“{m[1]}”重复了：同一层里一个键只能写一次"),
    (r"^nested deeper than (\d+) levels(?: \(line (\d+)\))?",
     lambda m: f"嵌套超过 {m[1]} 层{f'（第 {m[2]} 行）' if m[2] else ''}，这不是商品知识库的结构"),
    (r"^number of (\d+) digits is too long \(at most (\d+)\)",
     lambda m: f"数字有 {m[1]} 位，太长了（最多 {m[2]} 位）：如果它是文字，请加上引号"),
    (r"^key is a number of (\d+) digits, too long \(at most (\d+)\)",
     lambda m: f"键是一个 {m[1]} 位的数字，太长了（最多 {m[2]} 位）：如果它是文字，请加上引号"),
    (r"^number (\S+) is out of range", lambda m: f"数字 {m[1]} 超出范围（不是有限的数）：请写实际的数"),
    (r"^(key )?contains the invisible control character (U\+[0-9A-F]+) \(character (\d+)\)",
     lambda m: f"{'键里' if m[1] else ''}含有看不见的控制字符 {m[2]}（第 {m[3]} 个字）：请删掉它"),
    (r"^(key )?contains an invalid character \(a lone surrogate (\\u[0-9a-f]{4}), character (\d+)\)",
     lambda m: f"{'键里' if m[1] else ''}含有无效的字符（第 {m[3]} 个字是孤立的代理项 {m[2]}）：请删掉它"),
    (r"^the value '([\s\S]*)' cannot be read \(([\s\S]*)\); if it is text",
     lambda m: f"值“{m[1]}”读不出来（{m[2]}）：如果它是文字，请加上引号"),
    (r"^'([\s\S]*)' is a formula: Excel",
     lambda m: f"“{m[1]}”是公式，Excel 会计算它而不是显示这段文字：请在 Excel 里复制这一列，用“选择性粘贴 → 值”"
               "粘回去再上传；如果它本来就是文字，请在开头加一个英文单引号 '"),
    (r"^not an Excel \.xlsx file$", lambda m: "不是 Excel .xlsx 文件"),
    (r"^old Excel \.xls format", lambda m: "这是旧版 .xls 文件或加了密码的工作簿；请在 Excel 里另存为不加密的 .xlsx"),
    (r"^Excel binary \.xlsb format", lambda m: "这是 .xlsb 格式；请在 Excel 里另存为 .xlsx"),
    (r"^could not read the Excel file", lambda m: "读不出这个 Excel 文件；请用 Excel 打开后重新另存为 .xlsx"),
    (r"^the workbook has no worksheet$", lambda m: "这个 Excel 文件里没有工作表"),
    (r"^more than (\d+) rows; the file is damaged$", lambda m: f"超过 {m[1]} 行，文件可能已损坏"),
    (r"^unpacks to (\d+) bytes; the limit is (\d+) bytes$",
     lambda m: f"解压后有 {size_text(int(m[1]))}，上限是 {size_text(int(m[2]))}"),
    (r"^part '(.*)' is compressed more than (\d+):1",
     lambda m: f"其中的 {m[1]} 压缩比超过 {m[2]}:1，文件可能已损坏或被动过手脚"),
    (r"^file is (\d+) bytes; the limit is (\d+) bytes",
     lambda m: f"文件太大（{size_text(int(m[1]))}），上限是 {size_text(int(m[2]))}"),
    (r"^the file is (\d+) bytes or more; the limit is (\d+) bytes",
     lambda m: f"文件太大（至少 {size_text(int(m[1]))}），上限是 {size_text(int(m[2]))}"),
    (r"^more than (\d+) FAQ rows; split the file$", lambda m: f"FAQ 超过 {m[1]} 行，请拆成几个文件上传"),
    (r"^FAQ id '(.*)' already exists", lambda m: f"FAQ 编号“{m[1]}”已经存在，请换一个编号"),
    (r"^product '(.*)' already exists$", lambda m: f"商品“{m[1]}”已经存在"),
    (r"^expected a mapping with 'shop' and 'products'$", lambda m: "文件最外层应该包含 shop 和 products 两部分"),
    # the store
    (r"^shop '(.*)' is at version (\d+|None), but this change was made on version (\d+|None)",
     lambda m: f"店铺 {m[1]} 现在是 v{m[2]}，而这次修改是在 v{m[3]} 上做的：请刷新后再改一次"),
    (r"^shop '(.*)' has no version (\d+)$", lambda m: f"店铺 {m[1]} 没有 v{m[2]} 这个版本"),
    (r"^shop '(.*)' has no versions in (.*)$", lambda m: f"店铺 {m[1]} 在 {m[2]} 里还没有任何版本"),
    (r"^shop '(.*)' has no catalog yet", lambda m: f"店铺 {m[1]} 还没有知识库：请先上传完整的知识库（.yaml 或 .json）"),
    (r"^shop '(.*)' has no draft (\d+)$", lambda m: f"店铺 {m[1]} 没有 #{m[2]} 号草稿"),
    (r"^no FAQ '(.*)'$", lambda m: f"没有 FAQ“{m[1]}”"),
    (r"^no product '(.*)'$", lambda m: f"没有商品“{m[1]}”"),
    (r"^an Excel export needs -o FILE\.xlsx$", lambda m: "导出 Excel 需要用 -o 指定文件，例如 -o faqs.xlsx"),
]]

# The messages this module owns outright, by key.
_TEXTS: dict[str, dict[str, str]] = {
    "problems": {"zh": "发现 {n} 个问题，知识库没有任何改动", "en": "{n} problem(s) found; nothing was changed"},
    "error": {"zh": "错误：{message}", "en": "error: {message}"},
    "unchanged": {"zh": "没有变化：这个文件和当前的 v{version} 完全一样，没有生成新版本",
                  "en": "unchanged: the file is the same as the current v{version}; no new version was made"},
    "token_in_query": {"zh": "管理令牌不能放在网址里（?token=）：网址会留在浏览器历史、代理日志和截图里。"
                             "请放在请求头 Authorization: Bearer 令牌 里",
                       "en": "the admin token is not accepted in the URL (?token=): URLs end up in browser history, "
                             "proxy logs and screenshots. Send it in the header Authorization: Bearer TOKEN"},
    "token_wrong": {"zh": "管理令牌缺失或不正确", "en": "admin token missing or wrong"},
    "int_range": {"zh": "{field}（{what}）必须是 {low} 到 {high} 之间的整数，收到的是 {value}",
                  "en": "{field} must be a whole number from {low} to {high}; got {value}"},
    "request": {"zh": "请求格式不对：{details}", "en": "invalid request: {details}"},
    "ask_from_store": {"zh": "用店铺 {shop} 的 v{version} 回答（{path}，和 cohost run 用的是同一个知识库）",
                       "en": "answering from shop {shop} v{version} ({path}, the store cohost run serves)"},
    "ask_from_file": {"zh": "用文件 {path} 回答", "en": "answering from the file {path}"},
    "ask_no_store": {"zh": "用文件 {path} 回答（{store} 里还没有店铺 {shop} 的版本）",
                     "en": "answering from the file {path} ({store} has no version of shop {shop} yet)"},
    # `cohost knowledge ...` progress and results (rich markup kept as written)
    "indexing": {"zh": "建立索引 {label}", "en": "indexing {label}"},
    "version_ready": {"zh": "[green]{shop} v{version} 已生效[/]（{faqs} 条 FAQ，{products} 个商品）",
                      "en": "[green]{shop} v{version} is ready[/] ({faqs} FAQs, {products} products)"},
    "diff_counts": {"zh": "FAQ：新增 {added}，修改 {changed}，删除 {removed}；商品：新增 {products_added}，"
                          "修改 {products_changed}，删除 {products_removed}",
                    "en": "FAQs: {added} added, {changed} changed, {removed} removed; products: {products_added} "
                          "added, {products_changed} changed, {products_removed} removed"},
    "diff_shop": {"zh": "全店", "en": "shop"},
    "diff_more": {"zh": "  …… 还有 {n} 条", "en": "  … and {n} more"},
    "import_seed": {"zh": "{store} 里还没有店铺 {shop} 的版本：{file} 加到 {catalog} 上（cohost run 启动时用的知识库）",
                    "en": "{store} has no version of shop {shop} yet: applying {file} to {catalog}, "
                          "the catalog `cohost run` starts with"},
    "dry_run": {"zh": "试运行：没有做任何改动", "en": "dry run: nothing was changed"},
    "nothing_changed": {"zh": "没有变化：{shop} 仍是 v{version}", "en": "nothing changed: {shop} stays at v{version}"},
    "wrote": {"zh": "已写入 {path}（{size} 字节）", "en": "wrote {path} ({size} bytes)"},
    "draft_made": {"zh": "已生成草稿 {id}：{question}（被问 {asked} 次）；请到 /admin 写答案",
                   "en": "draft {id}: {question} ({asked} questions); answer it on /admin"},
    "no_gaps": {"zh": "最近 {days:g} 天没有未回答的问题", "en": "no unanswered questions in the last {days:g} days"},
    "gaps_title": {"zh": "未回答的问题 — {shop}，{found} 条，{clusters} 类",
                   "en": "unanswered questions — {shop}, {found} in {clusters} clusters"},
    "gaps_hint": {"zh": "把其中一类变成 FAQ 草稿：cohost knowledge gaps --draft 类编号",
                  "en": "turn one into a draft FAQ: cohost knowledge gaps --draft CLUSTER"},
}

_WHAT = {"version": "版本号", "base_version": "基于的版本", "draft_id": "草稿编号"}


def pick_lang(accept_language: str | None) -> str:
    """The language an Accept-Language header asks for, of LANGS; Chinese when it names neither."""
    best, best_q = DEFAULT_LANG, -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        base = tag.strip().lower().split("-")[0]
        if base not in LANGS:
            continue
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = base, q
    return best


def text(key: str, lang: str = DEFAULT_LANG, **kw: Any) -> str:
    entry = _TEXTS[key]
    return entry.get(lang, entry[DEFAULT_LANG]).format(**kw)


def message(msg: str | None, lang: str = DEFAULT_LANG) -> str:
    """One message in the owner's language: English as it was raised, else its Chinese when it is known."""
    msg = msg or ""
    if lang == "en":
        return msg
    for pattern, zh in _ZH:
        m = pattern.match(msg)
        if m:
            return zh(m)
    return msg


def where(w: str | None, lang: str = DEFAULT_LANG) -> str:
    """A problem's location as /admin shows it (the same rules as its where(): row, FAQ, path parts)."""
    if not w or lang == "en":
        return w or ""
    if m := re.fullmatch(r"(?:row|line) (\d+)", w):
        return f"第 {m[1]} 行"
    if m := re.fullmatch(r"FAQ (\d+)", w):
        return f"第 {m[1]} 条 FAQ"
    if w == "(file)":
        return "整个文件"
    if w == "(top level)":
        return "文件最外层"
    ordinals = {"products": "第 {} 个商品", "faqs": "第 {} 条 FAQ", "variants": "第 {} 个其他问法"}
    parts = []
    for part in w.split("."):
        p = re.fullmatch(r"(\w+)\[(\d+)\]( \(.*\))?", part)  # "products[0] (dress)" in the gate's problems
        if p and p[1] in ordinals:
            parts.append(ordinals[p[1]].format(int(p[2]) + 1) + (p[3] or ""))
        else:
            parts.append(FIELD_NAMES.get(part, part))
    return " › ".join(parts)


def field_name(f: str | None, lang: str = DEFAULT_LANG) -> str:
    if not f:
        return ""
    return f if lang == "en" else FIELD_NAMES.get(f, f)


def problem_line(p: Problem, lang: str = DEFAULT_LANG) -> str:
    """One problem for the terminal. In Chinese a path inside the file follows in brackets as written, so
    that it can be found in the file."""
    if lang == "en":
        return str(p)
    place = where(p.where, lang)
    is_path = bool(p.where) and not re.fullmatch(r"(?:row|line) \d+|FAQ \d+|\(file\)|\(top level\)", p.where)
    if is_path and place != p.where:
        place += f"（{p.where}）"
    if p.field and not (is_path and p.where.endswith(f".{p.field}")):
        place += f" {field_name(p.field, lang)}"
    return f"{p.file} {place}：{message(p.message, lang)}"


def problems_json(problems: Iterable[Problem], lang: str = DEFAULT_LANG) -> list[dict[str, Any]]:
    """Problems for the API: ``where`` and ``field`` stay machine-readable (/admin names them itself),
    ``message`` is in the asked language and ``message_en`` is the original."""
    return [{"file": p.file, "where": p.where, "field": p.field, "message": message(p.message, lang),
             "message_en": p.message} for p in problems]


def catalog_error_text(e: CatalogError, lang: str = DEFAULT_LANG) -> str:
    if lang == "en":
        return str(e)
    return "\n".join([text("problems", lang, n=len(e.problems)) + "：", *(f"  - {problem_line(p, lang)}"
                                                                         for p in e.problems)])


def error_text(e: BaseException, lang: str = DEFAULT_LANG) -> str:
    """An error as the CLI prints it (without the "error:" prefix)."""
    if isinstance(e, CatalogError):
        return catalog_error_text(e, lang)
    return message(str(e), lang)


def int_range_text(field: str, value: object, lang: str = DEFAULT_LANG, low: int = 1,
                   high: int = INT64_MAX) -> str:
    shown = str(value)
    shown = shown if len(shown) <= 40 else shown[:40] + "…"
    return text("int_range", lang, field=field, what=_WHAT.get(field, field) if lang == "zh" else field,
                low=low, high=high, value=shown)


def validation_errors(errors: Iterable[Mapping[str, Any]], lang: str = DEFAULT_LANG) -> tuple[str, str | None]:
    """FastAPI's request validation errors as one sentence naming each field, and the first field."""
    details, first = [], None
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header")]
        field = next((x for x in reversed(loc) if not x.isdigit()), None)
        first = first or field
        msg = message(str(err.get("msg", "")), lang)
        if err.get("type") in ("less_than_equal", "greater_than_equal") and field in _WHAT:
            # Ids and versions are all 1..INT64_MAX (see VersionNo in server/admin.py): say the whole range.
            low = (err.get("ctx") or {}).get("ge", 0 if field == "base_version" else 1)
            details.append(int_range_text(field, err.get("input"), lang, int(low)))
            continue
        name = field_name(field, lang) if field else ""
        label = f"{field}（{name}）" if lang == "zh" and field and name != field else (field or "")
        details.append(f"{label} {msg}".strip())
    sep = "；" if lang == "zh" else "; "
    return text("request", lang, details=sep.join(details)), first
