"""The catalog owners' page (/admin) against the real server, in real headless Chromium: what shop staff see
when they log in, upload FAQ files, apply them, try questions, roll back and answer the questions viewers asked."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium import launched_browser, live_server_thread, sync_api  # noqa: E402 (skips without Chromium)

from cohost.knowledge.audit import AuditRow  # noqa: E402
from cohost.knowledge.gaps import Gap  # noqa: E402

pytestmark = pytest.mark.slow
TOKEN = "admin-page-test-token"
SHOP = "default"
WAIT_MS = 20_000
expect = sync_api.expect

HEADER = "product_id,id,question,answer,variants\n"
BAD_CSV = HEADER + (
    "dress,dress_pocket,有口袋吗？,两侧都有隐形口袋，能放下手机。,有兜吗\n"  # row 2: fine
    "dress,dress_lining,有内衬吗？,,\n"  # row 3: no answer
    "hoodie,hoodie_size,卫衣怎么选码？,按平时的尺码拍。,\n"  # row 4: no such product
    "dress,dress_pocket,口袋深吗？,口袋深12厘米。,\n"  # row 5: the id of row 2 again
)
NEW_ANSWER = "尺码到2XL，160斤以内都能穿。"
GOOD_CSV = HEADER + (
    "dress,dress_pocket,有口袋吗？,两侧都有隐形口袋，能放下手机。,有兜吗|带口袋吗|裙子有口袋吗\n"
    f"dress,dress_plus,有大码吗？胖一点能穿吗？,{NEW_ANSWER},有大码吗|胖子能穿吗|150斤能穿吗|有2XL吗\n"
)


@pytest.fixture(scope="module")
def server(engine) -> Iterator[tuple[Any, int]]:
    with live_server_thread(engine, admin_token=TOKEN) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with launched_browser() as b:
        yield b


@pytest.fixture
def page(browser, server) -> Iterator[sync_api.Page]:
    """A fresh browser context and page (empty localStorage) that fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert errors == [], f"script errors on the page: {errors}"


def call(port: int, path: str, method: str = "GET", body: Any = None) -> Any:
    """The admin API, as a second client would use it."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/shops/{SHOP}{path}", data=data, method=method,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as res:
        return json.loads(res.read())


def versions(port: int) -> list[int]:
    return [v["version"] for v in call(port, "/versions")]


def catalog_at(port: int, version: int) -> dict[str, Any]:
    return call(port, f"/catalog?format=json&version={version}")


def product_faqs(catalog: dict[str, Any], product_id: str) -> dict[str, dict[str, Any]]:
    product = next(p for p in catalog["products"] if p["id"] == product_id)
    return {f["id"]: f for f in product.get("faqs", [])}


def open_admin(page: sync_api.Page, port: int) -> None:
    page.goto(f"http://127.0.0.1:{port}/admin#token={TOKEN}")
    expect(page.get_by_test_id("serving-version")).to_be_visible(timeout=WAIT_MS)


def upload(page: sync_api.Page, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="选择文件").click()
    chooser.value.set_files(str(path))


def test_wrong_token_says_invalid_then_the_right_one_gets_in(page, server):
    _app, port = server
    page.goto(f"http://127.0.0.1:{port}/admin#token=not-the-token")
    error = page.get_by_test_id("login-error")
    expect(error).to_be_visible(timeout=WAIT_MS)
    expect(error).to_contain_text("令牌无效")
    expect(page.get_by_test_id("upload-card")).to_be_hidden()
    assert "token" not in page.url  # the token leaves the address bar

    page.reload()  # the wrong token was not kept
    expect(page.get_by_test_id("login")).to_be_visible(timeout=WAIT_MS)
    expect(error).to_be_hidden()
    page.get_by_test_id("token-input").fill("错误的令牌")  # not even sendable in a header
    page.get_by_test_id("login-submit").click()
    expect(error).to_contain_text("令牌无效")
    expect(page.get_by_test_id("login")).to_be_visible()

    page.get_by_test_id("token-input").fill(TOKEN)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("serving-version")).to_have_text(re.compile(r"v\d+"), timeout=WAIT_MS)
    expect(page.get_by_test_id("shop-name")).to_have_text(SHOP)
    expect(page.get_by_test_id("login")).to_be_hidden()

    page.reload()  # the token was kept in localStorage
    expect(page.get_by_test_id("serving-version")).to_be_visible(timeout=WAIT_MS)


def test_bad_csv_shows_every_problem_and_changes_nothing(page, server, tmp_path):
    _app, port = server
    before = versions(port)
    bad = tmp_path / "faqs.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    open_admin(page, port)
    upload(page, bad)

    expect(page.get_by_test_id("problems-summary")).to_contain_text("发现 3 个问题", timeout=WAIT_MS)
    expect(page.get_by_test_id("problems-summary")).to_contain_text("没有任何改动")
    headers = page.get_by_test_id("problems").locator("th")
    expect(headers).to_have_text(["行/位置", "字段", "问题"])
    rows = page.get_by_test_id("problem")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("第 3 行")
    expect(rows.nth(0)).to_contain_text("答案")
    expect(rows.nth(0)).to_contain_text("不能为空")
    expect(rows.nth(1)).to_contain_text("第 4 行")
    expect(rows.nth(1)).to_contain_text("hoodie")
    expect(rows.nth(1)).to_contain_text("不存在")
    expect(rows.nth(2)).to_contain_text("第 5 行")
    expect(rows.nth(2)).to_contain_text("dress_pocket")
    expect(rows.nth(2)).to_contain_text("重复")
    expect(page.get_by_test_id("apply")).to_have_count(0)
    assert versions(port) == before


def test_valid_csv_preview_apply_progress_and_try_it(page, server, tmp_path):
    _app, port = server
    head = versions(port)[0]
    old_answer = product_faqs(catalog_at(port, head), "dress")["dress_plus"]["answer"]
    good = tmp_path / "新品FAQ.csv"
    good.write_text(GOOD_CSV, encoding="utf-8")
    open_admin(page, port)
    upload(page, good)

    diff = page.get_by_test_id("diff")
    expect(diff).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("count-added")).to_have_text("新增 1 条")
    expect(page.get_by_test_id("count-changed")).to_have_text("修改 1 条")
    expect(page.get_by_test_id("count-removed")).to_have_text("删除 0 条")
    added = diff.locator("[data-kind=added]")
    expect(added).to_have_count(1)
    expect(added).to_contain_text("新增")
    expect(added).to_contain_text("dress_pocket")
    expect(added).to_contain_text("两侧都有隐形口袋")
    changed = diff.locator("[data-kind=changed]")
    expect(changed).to_have_count(1)
    expect(changed).to_contain_text("修改")
    expect(changed.get_by_test_id("diff-faq-id")).to_have_text("dress_plus")
    answer = changed.get_by_test_id("diff-answer")
    expect(answer.get_by_test_id("diff-before")).to_contain_text(old_answer)
    expect(answer.get_by_test_id("diff-after")).to_contain_text(NEW_ANSWER)
    expect(diff.locator("[data-kind=removed]")).to_have_count(0)
    assert versions(port)[0] == head  # a preview writes nothing
    page.screenshot(path="/tmp/admin.png", full_page=True)

    page.get_by_test_id("apply").click()
    status = page.get_by_test_id("build-status")
    expect(status).to_have_text(f"已生效 v{head + 1}", timeout=WAIT_MS)
    expect(page.get_by_test_id("build-detail")).to_contain_text(re.compile(r"索引 (\d+) / \1 条"))
    expect(page.get_by_test_id("apply-message")).to_contain_text(f"已生效 v{head + 1}")
    expect(page.get_by_test_id("serving-version")).to_have_text(f"v{head + 1}")
    newest = page.get_by_test_id("version").first
    expect(newest.get_by_test_id("version-number")).to_have_text(f"v{head + 1}")
    expect(newest).to_contain_text("生效中")
    expect(newest).to_contain_text("上传 新品FAQ.csv")
    assert product_faqs(catalog_at(port, head + 1), "dress")["dress_plus"]["answer"] == NEW_ANSWER

    page.get_by_test_id("ask-input").fill("裙子有口袋吗")
    page.get_by_test_id("ask-product").select_option(label="1号 法式碎花连衣裙")
    page.get_by_test_id("ask-submit").click()
    expect(page.get_by_test_id("ask-verdict")).to_have_text("会回答", timeout=WAIT_MS)
    expect(page.get_by_test_id("ask-faq")).to_have_text("dress_pocket")
    expect(page.get_by_test_id("ask-reply")).to_contain_text("隐形口袋")
    expect(page.get_by_test_id("ask-confidence")).to_have_text(re.compile(r"^\d{1,3}%$"))
    expect(page.get_by_test_id("ask-candidate").first).to_contain_text("dress_pocket")

    page.get_by_test_id("ask-input").fill("你们老板叫什么名字")
    page.get_by_test_id("ask-product").select_option(value="")
    page.get_by_test_id("ask-submit").click()
    expect(page.get_by_test_id("ask-verdict")).to_have_text("不回答", timeout=WAIT_MS)
    expect(page.get_by_test_id("ask-reason")).not_to_be_empty()


def test_stale_preview_is_refused_with_an_explanation(page, server, tmp_path):
    _app, port = server
    good = tmp_path / "faqs.csv"
    good.write_text(HEADER + "dress,dress_belt,有腰带吗？,配同色系腰带。,\n", encoding="utf-8")
    open_admin(page, port)
    upload(page, good)
    expect(page.get_by_test_id("apply")).to_be_visible(timeout=WAIT_MS)
    call(port, "/faqs?wait=true", "POST", {"id": "stale_check", "product_id": None, "question": "几点开播？",
                                            "answer": "每晚8点开播。"})  # someone else, meanwhile
    head = versions(port)[0]
    page.get_by_test_id("apply").click()
    conflict = page.get_by_test_id("conflict")
    expect(conflict).to_contain_text("别人刚刚修改了知识库", timeout=WAIT_MS)
    expect(conflict).to_contain_text(f"v{head}")
    expect(conflict).to_contain_text("重新上传")
    assert versions(port)[0] == head
    page.get_by_test_id("recheck").click()  # checking the same file again previews it against the new head
    expect(page.get_by_test_id("apply")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("diff")).to_contain_text(f"和当前 v{head} 相比")


def test_rollback_makes_a_new_version_with_the_old_content(page, server):
    _app, port = server
    call(port, "/faqs?wait=true", "POST", {"id": "rollback_probe", "product_id": "dress", "question": "能改短吗？",
                                            "answer": "不提供改短服务。"})
    target = versions(port)[1]  # the version before that change
    head = versions(port)[0]
    open_admin(page, port)
    row = page.locator(f"[data-testid=version][data-version='{target}']")
    row.get_by_test_id("rollback").click()
    expect(row.get_by_test_id("rollback-confirm")).to_contain_text(f"v{target}")
    row.get_by_test_id("rollback-yes").click()

    expect(page.get_by_test_id("build-status")).to_have_text(f"已生效 v{head + 1}", timeout=WAIT_MS)
    expect(page.get_by_test_id("versions-message")).to_contain_text(f"v{head + 1} 的内容与 v{target} 相同")
    newest = page.get_by_test_id("version").first
    expect(newest.get_by_test_id("version-number")).to_have_text(f"v{head + 1}")
    expect(newest).to_contain_text(f"回滚到 v{target}")
    assert versions(port)[0] == head + 1
    assert catalog_at(port, head + 1) == catalog_at(port, target)
    assert "rollback_probe" not in product_faqs(catalog_at(port, head + 1), "dress")


def test_download_links_name_the_version(page, server):
    _app, port = server
    open_admin(page, port)
    first = page.locator("[data-testid=version][data-version='1']")
    with page.expect_download() as download:
        first.get_by_test_id("download-csv").click()
    assert download.value.suggested_filename == f"{SHOP}-v1.csv"
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.startswith("product_id,id,question,answer,variants") and "dress_plus" in text


def test_gaps_become_a_draft_then_a_published_faq(page, server, engine):
    app, port = server
    now = time.time()
    asked = ["孕妇能穿吗", "孕妇能穿吗", "孕妇可以穿吗"]
    app.state.catalogs.store.record_gaps(SHOP, [
        Gap(0, "room-a" if i else "room-b", text, engine.normalizer(text), "dress", "no confident answer", now - 60 + i)
        for i, text in enumerate(asked)])
    open_admin(page, port)

    label = engine.normalizer("孕妇能穿吗")
    cluster = page.get_by_test_id("gap").filter(has=page.get_by_test_id("gap-label").get_by_text(label, exact=True))
    expect(cluster).to_have_count(1, timeout=WAIT_MS)
    expect(cluster.get_by_test_id("gap-count")).to_contain_text("3 次")
    expect(cluster.get_by_test_id("gap-example")).to_have_text(["孕妇能穿吗", "孕妇可以穿吗"])
    expect(cluster).to_contain_text("2 个直播间")

    cluster.get_by_test_id("gap-draft").click()
    draft = page.get_by_test_id("draft")
    expect(draft).to_have_count(1, timeout=WAIT_MS)
    expect(draft.get_by_test_id("draft-question")).to_have_value(label)
    expect(draft).to_contain_text("被问 3 次")
    expect(cluster).to_have_count(0)  # drafted questions leave the list
    draft_id = draft.get_attribute("data-draft-id")
    head = versions(port)[0]

    draft.get_by_test_id("draft-publish").click()  # without an answer: asked for one, nothing published
    expect(draft.get_by_test_id("draft-error")).to_contain_text("请先写答案")
    answer = "孕妇可以穿，收腰处是松紧的，不勒肚子。"
    draft.get_by_test_id("draft-answer").fill(answer)
    draft.get_by_test_id("draft-publish").click()

    message = page.get_by_test_id("draft-message")
    expect(message).to_contain_text(f"已发布为 FAQ gap_{draft_id}，已生效 v{head + 1}", timeout=WAIT_MS)
    expect(page.get_by_test_id("build-status")).to_have_text(f"已生效 v{head + 1}")
    expect(page.get_by_test_id("draft")).to_have_count(0)
    faq = product_faqs(catalog_at(port, head + 1), "dress")[f"gap_{draft_id}"]
    assert faq["answer"] == answer and faq["question"] == label
    assert "孕妇可以穿吗" in faq.get("variants", [])

    page.get_by_test_id("ask-input").fill("孕妇可以穿吗")
    page.get_by_test_id("ask-product").select_option(value="dress")
    page.get_by_test_id("ask-submit").click()
    expect(page.get_by_test_id("ask-faq")).to_have_text(f"gap_{draft_id}", timeout=WAIT_MS)


# -- replies (the audit log), the blocklist and the shop's words ----------------------------------------------

SHOTS = Path("/tmp/shots")


def audit_rows(now: float) -> list[AuditRow]:
    base = {"shop": SHOP, "room": "page-room"}
    return [
        AuditRow(ts=now - 300, **base, outcome="sent", text="@小王 尺码到XL，150斤以内都能穿。", entry_id="dress_plus",
                 viewer_texts=("有大码吗",), viewers=(("u1", "小王"),)),
        AuditRow(ts=now - 200, **base, outcome="blocked", text="这是全网最低价，错过不再有！", rule="ad_law:最",
                 entry_id="dress_price", viewer_texts=("便宜吗",), viewers=(("u2", "小李"),)),
        AuditRow(ts=now - 100, **base, outcome="rewritten", text="@小张 可以机洗，建议30度以下。",
                 original="@小张 绝对可以机洗，建议30度以下。", rule="ad_law:绝对", entry_id="dress_wash"),
        AuditRow(ts=now - 50, **base, outcome="approved", text="@小赵 今晚8点开播。", actor="overlay:场控小美",
                 entry_id="shop_live"),
        AuditRow(ts=now - 10, **base, outcome="held", text="下单送一台iPhone", kind="talking_point",
                 rule="unsupported_promise:送"),
    ]


def test_replies_blocklist_and_words(page, server):
    app, port = server
    now = time.time()
    app.state.audit.record([*audit_rows(now), *[AuditRow(ts=now - 10_000 - i, shop=SHOP, room="old-room",
                                                         outcome="sent", text=f"早先的回复 {i}") for i in range(60)]])
    urls: list[str] = []
    page.on("request", lambda req: urls.append(req.url))
    open_admin(page, port)

    rows = page.get_by_test_id("audit-row")
    expect(rows.first).to_be_visible(timeout=WAIT_MS)
    expect(rows).to_have_count(50)  # a page
    expect(page.get_by_test_id("audit-summary")).to_have_text("共 65 条")
    expect(page.get_by_test_id("audit-range")).to_have_text("第 1–50 条，共 65 条")
    first = rows.first  # newest first: the held talking point
    expect(first.get_by_test_id("audit-outcome")).to_have_text("待审核")
    expect(first.get_by_test_id("audit-text")).to_have_text("下单送一台iPhone")
    expect(first).to_contain_text("提词")
    expect(first.get_by_test_id("audit-rule")).to_have_text("没有依据的承诺“送”")
    expect(rows.nth(1).get_by_test_id("audit-outcome")).to_have_text("已批准")
    expect(rows.nth(1).get_by_test_id("audit-actor")).to_have_text("场控小美（提词器）")
    expect(rows.nth(4).get_by_test_id("audit-outcome")).to_have_text("已发送")
    expect(rows.nth(4).get_by_test_id("audit-asked")).to_have_text("回答：小王：有大码吗")
    expect(rows.nth(4).get_by_test_id("audit-faq")).to_have_text("dress_plus")
    expect(rows.nth(4).get_by_test_id("audit-room")).to_have_text("page-room")

    page.get_by_test_id("audit-next").click()
    expect(page.get_by_test_id("audit-range")).to_have_text("第 51–65 条，共 65 条")
    expect(rows).to_have_count(15)
    expect(page.get_by_test_id("audit-next")).to_be_disabled()
    expect(rows.last.get_by_test_id("audit-text")).to_have_text("早先的回复 59")

    page.get_by_test_id("audit-q").fill("全网最低")
    page.get_by_test_id("audit-search").click()
    expect(rows).to_have_count(1)
    expect(page.get_by_test_id("audit-summary")).to_have_text("找到 1 条")
    expect(rows.first.get_by_test_id("audit-outcome")).to_have_text("已拦截")
    expect(rows.first.get_by_test_id("audit-rule")).to_have_text("广告法用词“最”")
    expect(rows.first.get_by_test_id("audit-faq")).to_have_text("dress_price")
    expect(page.get_by_test_id("audit-pager")).to_be_hidden()

    page.get_by_test_id("audit-q").fill("")
    page.get_by_test_id("audit-filter").select_option(label="已改写")  # the filter applies at once
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_test_id("audit-text")).to_have_text("@小张 可以机洗，建议30度以下。")
    expect(rows.first.get_by_test_id("audit-original")).to_have_text("改写前：@小张 绝对可以机洗，建议30度以下。")

    page.get_by_test_id("audit-q").fill("没有这句话")
    page.get_by_test_id("audit-q").press("Enter")
    expect(page.get_by_test_id("audit-empty")).to_have_text("没有符合条件的回复记录。")
    page.get_by_test_id("audit-q").fill("")
    page.get_by_test_id("audit-filter").select_option(value="rewritten")

    with page.expect_download() as download:
        page.get_by_test_id("audit-export").click()
    assert re.fullmatch(rf"{SHOP}-audit-\d{{8}}-\d{{6}}\.csv", download.value.suggested_filename)
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("id,time,ts,room,outcome") and len(lines) == 2 and "绝对可以机洗" in lines[1]
    assert not [u for u in urls if "token" in u], urls  # the token went in a header, never in a URL

    # the blocklist: add by name with a note, by user id, then remove one
    page.get_by_test_id("block-kind").select_option(label="按昵称")
    page.get_by_test_id("block-value").fill("加V看福利")
    page.get_by_test_id("block-note").fill("刷广告")
    page.get_by_test_id("block-add").click()
    expect(page.get_by_test_id("blocklist-message")).to_contain_text("已屏蔽昵称“加V看福利”")
    blocked = page.get_by_test_id("blocked")
    expect(blocked).to_have_count(1)
    expect(blocked.first.get_by_test_id("blocked-kind")).to_have_text("昵称")
    expect(blocked.first.get_by_test_id("blocked-value")).to_have_text("加V看福利")
    expect(blocked.first.get_by_test_id("blocked-note")).to_contain_text("刷广告")
    expect(page.get_by_test_id("block-value")).to_have_value("")
    page.get_by_test_id("block-kind").select_option(value="user_id")
    page.get_by_test_id("block-value").fill("x" * 64 + "y")  # maxlength stops typing; the API would refuse it too
    expect(page.get_by_test_id("block-value")).to_have_value("x" * 64)
    page.get_by_test_id("block-value").fill("10086")
    page.get_by_test_id("block-add").click()
    expect(blocked).to_have_count(2)
    expect(blocked.first.get_by_test_id("blocked-value")).to_have_text("10086")
    assert [(b["kind"], b["value"], b["note"]) for b in app.state.moderation.blocklist(SHOP)] == [
        ("user_id", "10086", ""), ("name", "加V看福利", "刷广告")]
    page.locator("[data-testid=blocked][data-value='10086']").get_by_test_id("blocked-remove").click()
    expect(blocked).to_have_count(1)
    expect(page.get_by_test_id("blocklist-message")).to_contain_text("已移除用户 ID“10086”")
    assert [b["value"] for b in app.state.moderation.blocklist(SHOP)] == ["加V看福利"]

    # the shop's words: a refused list first, then a good one, kept after a reload
    page.get_by_test_id("words-banned").fill("秒杀价\n" + "长" * 21)
    page.get_by_test_id("words-save").click()
    expect(page.get_by_test_id("words-message")).to_contain_text("没有保存")
    expect(page.get_by_test_id("words-message")).to_contain_text("最多 20 个字")
    assert app.state.moderation.words(SHOP) == {"banned": [], "allowed": []}
    page.get_by_test_id("words-banned").fill("秒杀价\n\n 全网最低 \n秒杀价")
    page.get_by_test_id("words-allowed").fill("最大码")
    expect(page.get_by_test_id("words-banned-count")).to_have_text("3 个词")
    page.get_by_test_id("words-save").click()
    expect(page.get_by_test_id("words-message")).to_contain_text("已保存：额外禁用词 2 个，允许的词 1 个。")
    expect(page.get_by_test_id("words-banned")).to_have_value("秒杀价\n全网最低")
    assert app.state.moderation.words(SHOP) == {"banned": ["秒杀价", "全网最低"], "allowed": ["最大码"]}
    page.reload()
    expect(page.get_by_test_id("words-banned")).to_have_value("秒杀价\n全网最低", timeout=WAIT_MS)
    expect(page.get_by_test_id("words-allowed")).to_have_value("最大码")
    expect(page.get_by_test_id("blocked")).to_have_count(1)


@pytest.mark.parametrize("width", [1280, 390])
def test_safety_sections_fit_the_screen(browser, server, width):
    app, port = server
    if not app.state.audit.search(SHOP, room="page-room")[1]:
        app.state.audit.record(audit_rows(time.time()))
    if not app.state.moderation.blocklist(SHOP):
        app.state.moderation.block(SHOP, "name", "加V看福利", note="刷广告")
        app.state.moderation.block(SHOP, "user_id", "10086")
    if not app.state.moderation.words(SHOP)["banned"]:
        app.state.moderation.set_words(SHOP, ["秒杀价", "全网最低"], ["最大码"])
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    try:
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        open_admin(pg, port)
        expect(pg.get_by_test_id("audit-row").first).to_be_visible(timeout=WAIT_MS)
        expect(pg.get_by_test_id("blocked").first).to_be_visible()
        SHOTS.mkdir(exist_ok=True)
        pg.evaluate("document.getElementById('topbar').style.position = 'static'")  # not over a full-page capture
        for card in ("audit-card", "blocklist-card", "words-card"):
            el = pg.get_by_test_id(card)
            el.scroll_into_view_if_needed()
            box = el.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (card, box)
            # nothing inside spills out sideways (a table too wide for a phone)
            assert el.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), card
            # a clip of the full page: the card whole, up to two screenfuls
            top = el.evaluate("e => e.getBoundingClientRect().top + window.scrollY")
            pg.screenshot(path=str(SHOTS / f"{card}-{width}.png"), full_page=True,
                          clip={"x": 0, "y": max(0, top - 10), "width": width, "height": min(box["height"] + 20, 1800)})
        if width < 600:  # on a phone each reply is a block of labelled lines, not a table row
            assert pg.get_by_test_id("audit").locator("thead").first.is_hidden()
        assert errors == []
    finally:
        context.close()
