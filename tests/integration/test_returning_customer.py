"""A returning customer over real HTTP: their own invitation link reopened, a refreshed code page, and "我的租赁"
(my leases) by mobile number and a one-time code, without the link."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import text

from tests.integration.test_applications import start
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import SALES_A
from tests.integration.test_invitations import invite
from tests.integration.test_invitations import latest_code
from tests.integration.test_invitations import request_code

pytestmark = pytest.mark.db


def join(base: str, app: Any, mobile: str) -> tuple[requests.Session, str]:
    """An invited customer who confirmed ``mobile`` on their phone: (their session, their invitation link)."""
    with sign_in(base, SALES_A) as sales:
        _, link = invite(base, sales, mobile)
    customer = requests.Session()
    request_code(customer, link)
    r = customer.post(f"{link}/verify", data={"code": latest_code(app, mobile), "csrf_token": csrf(customer, link)},
                      timeout=TIMEOUT)
    assert r.status_code == 200 and "/plans/" in r.url, r.text[:300]
    return customer, link


# -- (a) the invitation link reopened on the customer's own phone ----------------------------------------------
def test_the_customer_reopening_their_link_lands_on_their_application(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, link = join(base, app, "13700137001")
    with customer:
        before = customer.get(link, timeout=TIMEOUT, allow_redirects=False)
        assert before.status_code == 303 and "/plans/byd-han-ev" in before.headers["Location"]  # no application yet
        app_id = start(base, customer)
        again = customer.get(link, timeout=TIMEOUT, allow_redirects=False)
        assert again.status_code == 303 and again.headers["Location"].endswith(f"/applications/{app_id}")
        assert customer.get(f"{link}/verify", timeout=TIMEOUT, allow_redirects=False).status_code == 303


def test_anybody_else_reopening_a_used_link_learns_nothing(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    first, link = join(base, app, "13700137002")
    other, _ = join(base, app, "13700137003")  # another invited customer, signed in on their own phone
    with first, other, requests.Session() as stranger:
        for s in (other, stranger):
            r = s.get(link, timeout=TIMEOUT, allow_redirects=False)
            assert r.status_code == 410 and "7002" not in r.text and "/applications/" not in r.text


# -- (b) the code page refreshed or restored ----------------------------------------------------------------
def test_a_refresh_after_a_wrong_code_shows_the_code_form(bff_server: Any, app: Any) -> None:
    repo = app.extensions["leaseline"].invitations_repo
    with sign_in(bff_server.url, SALES_A) as sales, requests.Session() as customer:
        page_url, link = invite(bff_server.url, sales, "13700137004")
        invitation_id = page_url.rstrip("/").rsplit("/", 1)[1]
        request_code(customer, link)
        wrong = customer.post(f"{link}/verify", data={"code": "000000" if latest_code(app, "13700137004") != "000000"
                                                      else "111111", "csrf_token": csrf(customer, link)},
                              timeout=TIMEOUT, allow_redirects=False)
        # Post/Redirect/Get: the form again by GET with the error said once, so a refresh asks for the page
        assert wrong.status_code == 303 and wrong.headers["Location"] == link.removeprefix(bff_server.url)
        shown = customer.get(link, timeout=TIMEOUT)
        assert shown.status_code == 200 and 'role="alert"' in shown.text and "验证码不正确" in shown.text
        assert 'id="code"' in shown.text and "wrong" not in shown.url and "error" not in shown.url
        for url in (link, f"{link}/verify", f"{link}/code"):  # a refresh, a restored tab
            page = customer.get(url, timeout=TIMEOUT)
            assert page.status_code == 200 and 'id="code"' in page.text and "137****7004" in page.text, url
            assert "验证码不正确" not in page.text, url  # said once
        assert repo.get(invitation_id).failed_codes == 1  # one code typed, one attempt counted
        r = customer.post(f"{link}/verify", data={"code": latest_code(app, "13700137004"),
                                                   "csrf_token": csrf(customer, f"{link}/verify")}, timeout=TIMEOUT)
        assert r.status_code == 200 and "/plans/" in r.url


# -- short links -------------------------------------------------------------------------------------------
def test_the_link_is_short_and_unguessable_and_old_long_links_still_work(bff_server: Any, app: Any) -> None:
    from bff.auth.services import Client

    base = bff_server.url
    with sign_in(base, SALES_A) as sales:
        _, link = invite(base, sales, "13700137005")
        _, second = invite(base, sales, "13700137005")
    token = link.rsplit("/i/", 1)[1]
    assert re.fullmatch(r"[a-z2-9]{13}", token), link  # 13 of 32 symbols: 65 bits
    assert second.rsplit("/i/", 1)[1] != token
    with requests.Session() as customer:
        opened = customer.get(link, timeout=TIMEOUT)
        assert opened.status_code == 200 and "137****7005" in opened.text
    svc = app.extensions["leaseline"]
    staff = svc.accounts.by_email(SALES_A)[0]
    created = svc.invitations.create(staff, "13700137006", None, None, Client("127.0.0.1", "test"))
    assert len(created.token) > 60
    with requests.Session() as customer:
        long_link = f"{base}/i/{created.token}"
        assert "137****7006" in customer.get(long_link, timeout=TIMEOUT).text
        request_code(customer, long_link)
        r = customer.post(f"{long_link}/verify", data={"code": latest_code(app, "13700137006"),
                                                        "csrf_token": csrf(customer, long_link)}, timeout=TIMEOUT)
        assert r.status_code == 200 and r.url.endswith("/vehicles")  # invited without a vehicle: the catalogue
    for guess in ("aaaaaaaaaaaaa", token[:-1] + ("a" if token[-1] != "a" else "b")):
        assert requests.get(f"{base}/i/{guess}", timeout=TIMEOUT).status_code == 410


def test_a_short_link_whose_case_changed_still_opens(bff_server: Any) -> None:
    with sign_in(bff_server.url, SALES_A) as sales:
        _, link = invite(bff_server.url, sales, "13700137008")
    base, token = link.rsplit("/i/", 1)
    with requests.Session() as customer:
        for changed in (token.upper(), token[:6].upper() + token[6:]):
            page = customer.get(f"{base}/i/{changed}", timeout=TIMEOUT)
            assert page.status_code == 200 and "137****7008" in page.text, changed


def test_the_invalid_link_page_leads_to_my_leases(bff_server: Any) -> None:
    page = requests.get(f"{bff_server.url}/i/aaaaaaaaaaaaa", timeout=TIMEOUT)
    assert page.status_code == 410 and 'data-testid="to-my-leases"' in page.text and 'href="/mine"' in page.text


def test_short_links_are_found_by_a_unique_index(app: Any) -> None:
    from sqlalchemy import inspect

    engine = app.extensions["leaseline"].db.engine
    unique = [c["column_names"] for c in inspect(engine).get_unique_constraints("invitations")]
    indexes = [i["column_names"] for i in inspect(engine).get_indexes("invitations") if i["unique"]]
    assert ["nonce_hash"] in unique + indexes


# -- the salesperson's invitation page ---------------------------------------------------------------------
def test_the_invitation_page_shares_the_link_then_links_the_application(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    with sign_in(base, SALES_A) as sales, requests.Session() as customer:
        page, link = invite(base, sales, "13700137007")
        html = sales.get(page, timeout=TIMEOUT).text
        assert 'data-testid="copy-link"' in html and 'data-testid="share-link"' in html
        assert "/static/js/invitation.js" in html and "onclick" not in html
        assert 'data-link="' + link + '"' in html
        assert "data-joined" not in html
        request_code(customer, link)
        customer.post(f"{link}/verify", data={"code": latest_code(app, "13700137007"),
                                               "csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
        status = sales.get(page, headers={"HX-Request": "true"}, timeout=TIMEOUT).text
        assert "data-joined" in status and "invitation-application" not in status
        app_id = start(base, customer)
        status = sales.get(page, headers={"HX-Request": "true"}, timeout=TIMEOUT).text
        assert f'href="/applications/{app_id}"' in status and 'data-testid="invitation-application"' in status
        assert sales.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).status_code == 200


# -- (c) 我的租赁: back in by mobile number and a one-time code ----------------------------------------------------
def form_token(client: FlaskClient, url: str) -> str:
    page = client.get(url)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)[:300]
    return match.group(1)


def ask_code(client: FlaskClient, mobile: str) -> Any:
    return client.post("/mine/sign-in", data={"mobile": mobile, "csrf_token": form_token(client, "/mine/sign-in")})


def phone(app: Any, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def text_jobs(app: Any, mobile: str) -> list[str]:
    """The states of the jobs that text a 我的租赁 code to ``mobile`` (bff/invitations/returning.py text_code)."""
    from sqlalchemy import text

    svc = app.extensions["leaseline"]
    with svc.db.session() as session:
        return list(session.scalars(text(
            "SELECT status::text FROM procrastinate_jobs WHERE task_name = 'returning.text_code' "
            "AND args->>'mobile_hash' = :h"), {"h": svc.vault.lookup_hash(mobile, "mobile")}))


def texted(app: Any) -> None:
    """Wait until the suite's worker (tests/conftest.py ``app``) has texted the codes asked for."""
    from sqlalchemy import text

    deadline = time.monotonic() + 30
    while True:
        with app.extensions["leaseline"].db.session() as session:
            busy = session.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = "
                                        "'returning.text_code' AND status IN ('todo', 'doing')")).scalar_one()
        if not busy:
            return
        assert time.monotonic() < deadline, "the codes were not texted in 30 s"
        time.sleep(0.1)


def test_a_returning_customer_signs_in_by_mobile_and_finds_their_application(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, _ = join(base, app, "13700137010")
    with customer:
        app_id = start(base, customer)
    outbox = app.extensions["leaseline"].outbox
    client = phone(app, "10.0.0.10")
    assert client.get("/mine").status_code == 302  # not signed in: the sign-in page
    sent = ask_code(client, "137 0013 7010")
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/mine/code")
    texted(app)
    page = client.get("/mine/code").get_data(as_text=True)
    assert "137****7010" in page and 'autocomplete="one-time-code"' in page
    code = latest_code(app, "13700137010")
    wrong = "000000" if code != "000000" else "111111"
    refused = client.post("/mine/code", data={"code": wrong, "csrf_token": form_token(client, "/mine/code")})
    assert refused.status_code == 303 and refused.headers["Location"] == "/mine/code"  # the form again, by GET
    done = client.post("/mine/code", data={"code": code, "csrf_token": form_token(client, "/mine/code")})
    assert done.status_code == 303 and done.headers["Location"].endswith("/mine")
    mine = client.get("/mine").get_data(as_text=True)
    assert f"/mine/open/{app_id}" in mine
    opened = client.post(f"/mine/open/{app_id}", data={"csrf_token": form_token(client, "/mine")})
    assert opened.status_code == 303 and opened.headers["Location"].endswith(f"/applications/{app_id}")
    assert client.get(f"/applications/{app_id}").status_code == 200
    # the code is single-use
    assert client.post("/mine/code", data={"code": code, "csrf_token": form_token(client, "/mine/sign-in")}
                       ).status_code == 422
    again = phone(app, "10.0.0.11")
    ask_code(again, "13700137010")
    used = again.post("/mine/code", data={"code": code, "csrf_token": form_token(again, "/mine/code")})
    assert used.status_code == 303 and again.get("/mine").status_code == 302  # refused: not signed in
    assert len(outbox.latest(10, to="13700137010")) >= 2
    events = app.extensions["leaseline"].audit.search(action="customer.sign_in")
    assert any(e.outcome == "success" for e in events) and any(e.outcome == "failure" for e in events)


def test_an_unknown_number_gets_the_same_answer_and_no_text(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, _ = join(base, app, "13700137011")
    with customer:
        start(base, customer)
    known, unknown = phone(app, "10.0.0.12"), phone(app, "10.0.0.13")
    a, b = ask_code(known, "13700137011"), ask_code(unknown, "13700137099")
    assert (a.status_code, a.headers["Location"]) == (b.status_code, b.headers["Location"])
    page_a = known.get("/mine/code").get_data(as_text=True).replace("137****7011", "MASK")
    page_b = unknown.get("/mine/code").get_data(as_text=True).replace("137****7099", "MASK")
    strip = re.compile(r'name="csrf_token" value="[^"]+"|X-CSRFToken": "[^"]+"')
    assert strip.sub("", page_a) == strip.sub("", page_b)
    texted(app)
    assert not app.extensions["leaseline"].outbox.latest(1, to="13700137099")
    assert len(text_jobs(app, "13700137099")) == len(text_jobs(app, "13700137011")) == 1  # the same work for both
    for code in ("000000", "123456"):
        r = unknown.post("/mine/code", data={"code": code, "csrf_token": form_token(unknown, "/mine/code")})
        assert r.status_code == 303 and r.headers["Location"] == "/mine/code"  # refused as a known number's
        assert 'id="code-error"' in unknown.get("/mine/code").get_data(as_text=True)
    bad = phone(app, "10.0.0.14")
    r = ask_code(bad, "12345")
    assert r.status_code == 422 and 'value="12345"' in r.get_data(as_text=True)


def test_codes_expire_and_five_wrong_codes_need_a_new_one(bff_server: Any, app: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import bff.invitations.returning as returning
    from infra.db.models import utcnow

    base = bff_server.url
    customer, _ = join(base, app, "13700137012")
    with customer:
        start(base, customer)
    client = phone(app, "10.0.0.15")
    ask_code(client, "13700137012")
    texted(app)
    code = latest_code(app, "13700137012")
    wrong = "000000" if code != "000000" else "111111"
    statuses = [client.post("/mine/code", data={"code": wrong, "csrf_token": form_token(client, "/mine/code")}
                            ).status_code for _ in range(5)]
    assert statuses == [303] * 5  # each refused: the form again by GET (Post/Redirect/Get)
    assert 'data-testid="code-spent"' in client.get("/mine/code").get_data(as_text=True)  # the fifth spent it
    assert client.post("/mine/code", data={"code": code, "csrf_token": form_token(client, "/mine/sign-in")}
                       ).status_code == 303  # the code is spent: ask for a new one
    assert 'data-testid="code-spent"' in client.get("/mine/code").get_data(as_text=True)
    assert client.get("/mine").status_code == 302
    late = phone(app, "10.0.0.16")
    monkeypatch.setattr(returning, "utcnow", lambda: utcnow() + timedelta(minutes=2))  # past the resend minute
    ask_code(late, "13700137012")
    texted(app)
    code = latest_code(app, "13700137012")
    monkeypatch.setattr(returning, "utcnow", lambda: utcnow() + timedelta(minutes=13))
    assert late.post("/mine/code", data={"code": code, "csrf_token": form_token(late, "/mine/code")}
                     ).status_code == 303
    assert 'data-testid="code-spent"' in late.get("/mine/code").get_data(as_text=True)  # expired
    assert late.get("/mine").status_code == 302


def test_code_sending_is_rate_limited_per_number_and_per_address(bff_server: Any, app: Any) -> None:
    statuses = [ask_code(phone(app, f"10.0.1.{i}"), "13700137020").status_code for i in range(6)]
    assert statuses[0] == 303 and statuses[-1] == 429  # one number, many addresses
    shared = phone(app, "10.0.2.1")
    statuses = [ask_code(shared, f"137001371{i:02d}").status_code for i in range(21)]
    assert statuses[0] == 303 and statuses[-1] == 429  # one address, many numbers


def test_the_sign_in_and_home_pages_link_my_leases(bff_server: Any) -> None:
    base = bff_server.url
    for path in ("/login", "/vehicles"):
        page = requests.get(base + path, timeout=TIMEOUT)
        assert 'href="/mine"' in page.text, path


def wrong_code(app: Any, mobile: str) -> str:
    code = latest_code(app, mobile)
    return "000000" if code != "000000" else "111111"


def test_parallel_wrong_codes_count_at_most_five_then_the_code_is_dead(bff_server: Any, app: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base = bff_server.url
    customer, _ = join(base, app, "13700137030")
    with customer:
        start(base, customer)
    first = phone(app, "10.0.3.1")
    ask_code(first, "13700137030")
    texted(app)
    code, wrong = latest_code(app, "13700137030"), wrong_code(app, "13700137030")
    cookie = first.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    devices = []
    for i in range(10):  # the same session (its cookie) on ten connections at once
        device = phone(app, f"10.0.3.{10 + i}")
        device.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
        devices.append((device, form_token(device, "/mine/code")))
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda d: d[0].post("/mine/code", data={"code": wrong, "csrf_token": d[1]}
                                                     ).status_code, devices))
    assert set(statuses) <= {303, 429}, statuses  # refused (the form again by GET) or held back
    events = app.extensions["leaseline"].audit.search(action="customer.sign_in")
    counted = [e for e in events if e.actor_label == "customer 137****7030" and e.details.get("reason") == "wrong_code"]
    assert len(counted) <= 5, counted
    last = first.post("/mine/code", data={"code": code, "csrf_token": form_token(first, "/mine/code")})
    assert last.status_code in (303, 429) and not last.headers.get("Location", "").endswith("/mine")
    assert first.get("/mine").status_code == 302  # still not signed in: the right code came after the fifth try


def test_the_code_is_texted_by_a_job_once_a_minute_and_a_double_tap_sends_one(bff_server: Any, app: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base = bff_server.url
    customer, _ = join(base, app, "13700137031")
    with customer:
        start(base, customer)
    outbox = app.extensions["leaseline"].outbox
    before = len(outbox.latest(10, to="13700137031"))
    taps = [phone(app, f"10.0.4.{i}") for i in range(2)]
    tokens = [form_token(t, "/mine/sign-in") for t in taps]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda i: taps[i].post("/mine/sign-in", data={"mobile": "13700137031",
                                                                              "csrf_token": tokens[i]}), range(2)))
    assert [a.status_code for a in answers] == [303, 303]
    assert len(text_jobs(app, "13700137031")) == 1  # texted by one job, deferred with the code
    texted(app)
    assert text_jobs(app, "13700137031") == ["succeeded"]
    assert len(outbox.latest(10, to="13700137031")) == before + 1
    page = taps[0].get("/mine/code").get_data(as_text=True)  # the countdown of a new code (issue 17 §8)
    assert 'data-testid="resend-countdown"' in page and re.search(r'data-countdown="(5\d|60)"', page), page
    again = taps[0].post("/mine/sign-in", data={"csrf_token": form_token(taps[0], "/mine/code")})
    assert again.status_code == 303  # within the minute: no new code
    texted(app)
    assert len(outbox.latest(10, to="13700137031")) == before + 1 and len(text_jobs(app, "13700137031")) == 1


def test_invalid_numbers_count_against_their_own_address(bff_server: Any, app: Any) -> None:
    statuses = [ask_code(phone(app, f"10.0.5.{i}"), "12345").status_code for i in range(7)]
    assert statuses == [422] * 7


def test_a_customer_signed_in_to_my_leases_reopens_their_used_link(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, link = join(base, app, "13700137032")
    with customer:
        app_id = start(base, customer)
    other = phone(app, "10.0.6.1")
    ask_code(other, "13700137032")
    texted(app)
    other.post("/mine/code", data={"code": latest_code(app, "13700137032"),
                                   "csrf_token": form_token(other, "/mine/code")})
    path = "/i/" + link.rsplit("/i/", 1)[1]
    r = other.get(path)
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/applications/{app_id}")
    assert other.get(f"/applications/{app_id}").status_code == 200


def test_numbers_asked_about_are_forgotten_after_an_hour(bff_server: Any, app: Any) -> None:
    """A code row keeps the number encrypted for the resend wait; the housekeeping sweep forgets it after an hour
    (PIPL: nothing kept longer than its purpose needs), a fresh one stays."""
    from bff.invitations.returning import purge_codes
    from infra.db.models import utcnow

    svc = app.extensions["leaseline"]
    client = phone(app, "10.9.0.41")
    ask_code(client, "139 0013 9141")
    mine = svc.vault.lookup_hash("13900139141", "mobile")[:64]
    row = "SELECT count(*) FROM returning_codes WHERE mobile_hash = :h"
    with svc.db.session() as session:
        assert session.execute(text(row), {"h": mine}).scalar_one() == 1
    purge_codes(svc, utcnow())  # a code of a minute ago is still needed
    with svc.db.session() as session:
        assert session.execute(text(row), {"h": mine}).scalar_one() == 1
    assert purge_codes(svc, utcnow() + timedelta(hours=1, seconds=1)) >= 1
    with svc.db.session() as session:
        assert session.execute(text(row), {"h": mine}).scalar_one() == 0
        assert session.execute(text("SELECT count(*) FROM returning_codes WHERE sent_at < :t"),
                               {"t": utcnow()}).scalar_one() == 0  # nor any other as old
