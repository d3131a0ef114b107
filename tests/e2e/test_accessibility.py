"""Accessibility of the phone pages in a real browser (Chromium, Pixel 7): the vehicle list, the plan builder
(alone, with a comparison, the budget search), the sign-in page, the hand-off (the salesperson's invitation
pages, the customer's code page), the pipeline, an application and its KYC pages (consent, ID card, the two
detail steps, the face check), each as the salesperson or the customer sees it (issue 8; Lighthouse's view of
the builder and the KYC pages: ``make lighthouse``).

On every page:

* **tap targets** — every visible interactive element (``a[href]``, ``button``, ``input`` other than hidden,
  ``select``, ``textarea``, ``summary``, ``[role=button]``, anything focusable by ``tabindex``, and a
  ``label`` wrapping a control) is at least 44 × 44 CSS px. A checkbox or radio button is measured by its label
  (the label is what the finger taps; the chips hide the radio itself). **Exempt:** a link that is inline
  text inside a sentence (``display: inline`` with other text in the same block), as in WCAG 2.5.8's inline
  exception — its height is the line's; so are disabled controls (they take no tap) and anything off-screen
  (the skip link until it is focused);
* **names** — every form control has an accessible name from a ``label``, ``aria-label`` or
  ``aria-labelledby`` (pointing at elements with text); every link and button has a name too (its text, an
  image's ``alt``, or one of those);
* **language and landmarks** — ``html[lang]`` is the page's language; one ``header``, one ``main``, one
  ``footer``; each ``nav`` is labelled (there are two on most pages);
* **keyboard** — pressing Tab from the top visits exactly the focusable elements in DOM order (one stop per
  radio group: the checked radio), no positive ``tabindex``; the order is also the visual one (each stop is
  below the previous, or on the same row to its right); each focused element shows a focus indicator (its
  computed outline or box-shadow changes and is at least 2 px; for a visually hidden radio, on the chip that
  shows it), with an outline of at least 3:1 against what it stands on (WCAG 1.4.11), and is not covered by
  anything (e.g. the builder's fixed rent bar).

And a list that refreshes itself (the pipeline, every 5 s) gives the focus back to the link that had it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.e2e.conftest import TABLET
from tests.e2e.waiting import wait_until
from tests.integration.test_applications import PLAN
from tests.integration.test_applications import VEHICLE
from tests.integration.test_applications import face_attempt
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import post
from tests.integration.test_applications import ready_to_submit
from tests.integration.test_applications import start
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.e2e

MIN_TARGET = 44  # CSS px: WCAG 2.5.5 (AAA), Apple's and Material's minimum; 2.5.8 (AA) asks for 24

#: Helpers installed in the page as ``window.__a11y`` (plain DOM and CSSOM, no library).
A11Y = r"""
(() => {
  const FOCUSABLE = 'a[href], button, input:not([type=hidden]), select, textarea, summary, iframe, [tabindex], ' +
                    '[contenteditable=""], [contenteditable=true]';
  const INTERACTIVE = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button], ' +
                      '[tabindex]:not([tabindex="-1"]), label';
  const text = el => (el.innerText || el.textContent || '').replace(/\s+/g, ' ').trim();
  // laid out and not hidden (display, visibility, or the closed part of a <details>); opacity is checked apart
  const rendered = el => el.checkVisibility({visibilityProperty: true, checkVisibilityCSS: true})
    && el.getClientRects().length > 0;
  const transparent = el => {
    for (let e = el; e; e = e.parentElement) if (parseFloat(getComputedStyle(e).opacity) === 0) return true;
    return false;
  };
  const onPage = el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > 0 && r.left < document.documentElement.clientWidth;
  };
  const describe = el => {
    const bits = [el.tagName.toLowerCase()];
    if (el.id) bits.push('#' + el.id);
    if (el.dataset && el.dataset.testid) bits.push(`[data-testid=${el.dataset.testid}]`);
    if (el.getAttribute('type')) bits.push(`[type=${el.getAttribute('type')}]`);
    if (el.getAttribute('name')) bits.push(`[name=${el.getAttribute('name')}]`);
    if (el.getAttribute('value') && el.matches('input, button')) bits.push(`[value=${el.getAttribute('value')}]`);
    const t = text(el).slice(0, 30);
    return bits.join('') + (t ? ` "${t}"` : '');
  };
  const page = el => {
    const r = el.getBoundingClientRect();
    return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height};
  };
  function nameOf(el) {
    const by = el.getAttribute('aria-labelledby');
    if (by) {
      const t = by.split(/\s+/).map(id => document.getElementById(id)).filter(Boolean).map(text).join(' ').trim();
      if (t) return t;
    }
    const aria = (el.getAttribute('aria-label') || '').trim();
    if (aria) return aria;
    for (const label of el.labels || []) if (text(label)) return text(label);
    return '';
  }
  function contentName(el) {
    if (text(el)) return text(el);
    for (const img of el.querySelectorAll('img[alt]')) if (img.alt.trim()) return img.alt.trim();
    return '';
  }
  function inSentence(el) {  // WCAG 2.5.8's inline exception: a link that is part of a line of text
    if (!el.matches('a') || getComputedStyle(el).display !== 'inline') return false;
    let block = el.parentElement;
    while (block && getComputedStyle(block).display.startsWith('inline')) block = block.parentElement;
    return !!block && text(block).replace(text(el), '').trim().length > 0;
  }
  function targets() {
    const out = [];
    for (const el of document.querySelectorAll(INTERACTIVE)) {
      if (el.matches('label')) {
        const control = el.control;
        if (!control || !(el.contains(control) || control.matches('[type=checkbox], [type=radio]'))) continue;
        if (control.disabled) continue;
      } else if (el.matches('input[type=checkbox], input[type=radio]') && el.labels && el.labels.length) {
        continue;  // measured by its label
      }
      if (el.disabled || !rendered(el) || transparent(el) || !onPage(el) || inSentence(el)) continue;
      const r = el.getBoundingClientRect();
      out.push({what: describe(el), w: Math.round(r.width * 10) / 10, h: Math.round(r.height * 10) / 10});
    }
    return out;
  }
  function unnamed() {
    const out = [];
    for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
      if (rendered(el) && !nameOf(el)) out.push(describe(el));
    }
    for (const el of document.querySelectorAll('a[href], button, summary, [role=button]')) {
      if (rendered(el) && !nameOf(el) && !contentName(el)) out.push(describe(el));
    }
    return out;
  }
  function focusable(el) {
    if (el.matches(FOCUSABLE)) {
      if (el.disabled || (el.hasAttribute('tabindex') && el.tabIndex < 0) || el.closest('[inert]')) return false;
      if (el.matches('summary') && !(el.parentElement && el.parentElement.matches('details')
                                     && el.parentElement.querySelector(':scope > summary') === el)) return false;
      return rendered(el);
    }
    // Chromium 130+: a scrolling box with nothing focusable inside is a tab stop itself
    if (el === document.documentElement || el === document.body || !rendered(el)) return false;
    const cs = getComputedStyle(el);
    const scrolls = /(auto|scroll)/.test(cs.overflowX + cs.overflowY)
      && (el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight);
    return scrolls && ![...el.querySelectorAll(FOCUSABLE)].some(rendered);
  }
  function radioStop(el) {  // the one tab stop of a radio group: the checked radio, else the first
    const group = [...document.querySelectorAll('input[type=radio]')]
      .filter(r => r.name === el.name && r.form === el.form && !r.disabled && rendered(r));
    return group.find(r => r.checked) || group[0];
  }
  function stops() {
    const positive = [...document.querySelectorAll('[tabindex]')].filter(el => el.tabIndex > 0).map(describe);
    const out = [];
    for (const el of document.querySelectorAll('*')) {
      if (!focusable(el)) continue;
      if (el.matches('input[type=radio]') && radioStop(el) !== el) continue;
      el.dataset.a11yStop = String(out.length);
      out.push(describe(el));
    }
    return {stops: out, positive};
  }
  function host(el) {  // where the focus shows: the element, or the chip standing in for a hidden radio
    const r = el.getBoundingClientRect();
    if (!transparent(el) && r.width >= 2 && r.height >= 2) return el;
    const label = el.closest('label') || (el.labels && el.labels[0]);
    const sibling = el.nextElementSibling;
    return label && sibling && label.contains(sibling) ? sibling : (label || el);
  }
  const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
  const luminance = c => {
    const [r, g, b] = rgb(c).slice(0, 3).map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return Math.round((hi + 0.05) / (lo + 0.05) * 100) / 100;
  };
  function behind(el) {  // the colour an outline drawn around ``el`` stands on: the first opaque ancestor's
    for (let e = el.parentElement; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor, alpha = rgb(c)[3];
      if (alpha === undefined || alpha > 0.5) return c;
    }
    return 'rgb(255, 255, 255)';
  }
  function ring(el) {
    const cs = getComputedStyle(el);
    const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2;
    return {outline: `${cs.outlineStyle} ${cs.outlineWidth} ${cs.outlineColor} ${cs.outlineOffset}`,
            shadow: cs.boxShadow, visible: outline || cs.boxShadow !== 'none',
            // WCAG 1.4.11: an outline is a focus indicator only if it stands out (3:1) from what is behind it
            contrast: outline ? contrast(cs.outlineColor, behind(el)) : null};
  }
  function rings() {
    return [...document.querySelectorAll('[data-a11y-stop]')].map(el => ring(host(el)));
  }
  function focused() {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const h = host(el), r = h.getBoundingClientRect();
    const cx = Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1);
    const cy = Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1);
    const top = document.elementFromPoint(cx, cy);
    const mine = top && (h.contains(top) || top.contains(h) || el.contains(top)
                         || [...(el.labels || [])].some(l => l.contains(top)));
    return {stop: el.dataset.a11yStop === undefined ? null : Number(el.dataset.a11yStop), what: describe(el),
            ring: ring(h), box: page(h), coveredBy: mine ? null : (top ? describe(top) : 'nothing (off screen)')};
  }
  function landmarks() {
    const navs = [...document.querySelectorAll('nav')];
    return {lang: document.documentElement.getAttribute('lang') || '',
            header: document.querySelectorAll('body > header').length,
            main: document.querySelectorAll('main').length,
            footer: document.querySelectorAll('body > footer').length,
            unlabelledNavs: navs.length > 1 ? navs.filter(n => !nameOf(n)).map(describe) : []};
  }
  window.__a11y = {targets, unnamed, stops, rings, focused, landmarks};
})();
"""


@pytest.fixture(scope="module")
def journey(live_server: Any) -> dict[str, Any]:
    """The salesperson's session cookies, three applications — new (consent), card read and details filled in
    (ID card, details), submitted (face check) — and an invitation whose customer has asked for the code."""
    base = live_server.url
    images = make_card_images()
    with sign_in(base, SALES_A) as s:
        new = start(base, s)
        draft = ready_to_submit(base, s, images)
        submitted = ready_to_submit(base, s, images)
        r = post(s, f"{base}/applications/{submitted}/submit", form_url=f"{base}/applications/{submitted}")
        assert r.status_code == 200 and r.url.endswith("/face"), r.url
        failed = ready_to_submit(base, s, images)  # one face check that did not pass: what next, on both pages
        r = post(s, f"{base}/applications/{failed}/submit", form_url=f"{base}/applications/{failed}")
        assert r.status_code == 200 and r.url.endswith("/face"), r.url
        assert 'data-outcome="fail"' in face_attempt(base, s, failed, "biden.jpg")
        r = post(s, f"{base}/invitations", {"mobile": "139 0013 9077", "vehicle": VEHICLE, "plan": PLAN},
                 form_url=f"{base}/invitations")
        link = re.search(r'data-testid="invitation-link">([^<]+)<', r.text)
        assert r.status_code == 200 and link, r.text[:300]
        invitation = urlsplit(r.url).path
        cookies = [{"name": c.name, "value": c.value, "url": base} for c in s.cookies]
    with requests.Session() as customer:  # the customer's phone asked for the code: the page shows its field
        r = post(customer, f"{link.group(1)}/code", form_url=link.group(1))
        assert r.status_code == 200 and 'id="code"' in r.text, r.text[:300]
    return {"cookies": cookies, "paths": {
        "vehicles": "/vehicles",
        "builder": f"/plans/{VEHICLE}?down=20&term=36",
        "compare": f"/plans/{VEHICLE}?down=30&term=48&cmp={quote(PLAN)}",
        "budget": f"/plans/{VEHICLE}/budget?budget=3000&down=20&term=36",
        "login": "/login",
        "invite": f"/invitations?vehicle={VEHICLE}&plan={quote(PLAN)}",
        "invitation": invitation,
        "handoff": urlsplit(link.group(1)).path,
        "pipeline": "/applications",
        "application": f"/applications/{draft}",
        "consent": f"/applications/{new}/consent",
        "id-card": f"/applications/{draft}/id-card",
        "details": f"/applications/{draft}/steps/customer",
        "work": f"/applications/{draft}/steps/work",
        "face": f"/applications/{submitted}/face",
        "face-again": f"/applications/{failed}/face",
        "application-face-failed": f"/applications/{failed}",
        "counter": f"/applications/{submitted}/counter",
        "desk": "/desk",
    }}


#: signed out: the sign-in page and the customer's confirmation page (the customer has no staff account)
SIGNED_OUT = {"login", "handoff"}
PAGES = ["vehicles", "builder", "compare", "budget", "login", "invite", "invitation", "handoff", "pipeline",
         "application", "consent", "id-card", "details", "work", "face", "face-again", "application-face-failed",
         "counter", "desk"]


def open_page(page: Page, journey: dict[str, Any], name: str) -> None:
    """``name``'s page, signed in as the salesperson (or not, see SIGNED_OUT), its scripts run."""
    if name not in SIGNED_OUT:
        page.context.add_cookies(journey["cookies"])
    path = journey["paths"][name]
    page.goto(path)
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))  # not sent to the sign-in page
    wait_until(page, "document.documentElement.classList.contains('js') && window.htmx !== undefined")
    page.evaluate(A11Y)


@pytest.mark.parametrize("name", PAGES)
def test_tap_targets_are_at_least_44_px(page: Page, journey: dict[str, Any], name: str) -> None:
    open_page(page, journey, name)
    targets = page.evaluate("__a11y.targets()")
    assert len(targets) >= 3, targets  # the header alone has three
    small = [t for t in targets if t["w"] < MIN_TARGET or t["h"] < MIN_TARGET]
    assert small == [], "tap targets under 44 × 44 px:\n" + "\n".join(
        f"  {t['what']}: {t['w']} × {t['h']}" for t in small)


@pytest.mark.parametrize("name", PAGES)
def test_every_control_and_link_has_a_name(page: Page, journey: dict[str, Any], name: str) -> None:
    open_page(page, journey, name)
    assert page.evaluate("__a11y.unnamed()") == []


@pytest.mark.parametrize("name", PAGES)
def test_language_and_landmarks(page: Page, journey: dict[str, Any], name: str) -> None:
    open_page(page, journey, name)
    marks = page.evaluate("__a11y.landmarks()")
    assert marks == {"lang": "zh-CN", "header": 1, "main": 1, "footer": 1, "unlabelledNavs": []}


@pytest.mark.parametrize("name", PAGES)
def test_tab_follows_the_dom_and_the_eye_with_a_visible_focus(page: Page, journey: dict[str, Any],
                                                               name: str) -> None:
    open_page(page, journey, name)
    found = page.evaluate("__a11y.stops()")
    assert found["positive"] == [], f"positive tabindex breaks the DOM order: {found['positive']}"
    expected: list[str] = found["stops"]
    assert len(expected) >= 4, expected
    # Tab from the top of the page, whatever has focus now (an autofocus field): focus a start marker there
    page.evaluate("""() => { const start = document.createElement('span'); start.tabIndex = -1;
                               document.body.prepend(start); start.focus(); window.scrollTo(0, 0); }""")
    unfocused = page.evaluate("__a11y.rings()")

    visited: list[dict[str, Any]] = []
    for _ in expected:
        page.keyboard.press("Tab")
        now = page.evaluate("__a11y.focused()")
        assert now is not None, f"focus left the page after {len(visited)} of {len(expected)} stops"
        visited.append(now)
    order = [v["stop"] for v in visited]
    assert order == list(range(len(expected))), "Tab order differs from the DOM order:\n" + "\n".join(
        f"  {i:>2}. expected {expected[i] if i < len(expected) else '-'}, got {v['what']}"
        for i, v in enumerate(visited) if v["stop"] != i)

    problems = []
    for i, v in enumerate(visited):
        if v["ring"] == unfocused[i] or not v["ring"]["visible"]:
            problems.append(f"no visible focus indicator on {v['what']}: {v['ring']}")
        elif v["ring"]["contrast"] is not None and v["ring"]["contrast"] < 3:
            problems.append(f"the focus outline of {v['what']} has a contrast of {v['ring']['contrast']}:1 with "
                            "its background (3:1 needed)")
        if v["coveredBy"]:
            problems.append(f"{v['what']} is covered by {v['coveredBy']} when focused")
        if i:
            a, b = visited[i - 1]["box"], v["box"]
            below = b["y"] >= a["y"] + a["h"] - 1
            same_row = b["y"] < a["y"] + a["h"] and a["y"] < b["y"] + b["h"]
            if not (below or (same_row and b["x"] >= a["x"] - 1)):
                problems.append(f"{v['what']} at {b} comes after {visited[i - 1]['what']} at {a}, "
                                "but is seen before it")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("device", ["Pixel 7", "tablet"])
@pytest.mark.parametrize("name", PAGES)
def test_no_page_is_wider_than_the_screen(browser: Any, playwright: Any, live_server: Any, journey: dict[str, Any],
                                          name: str, device: str) -> None:
    """On the phone and on the showroom tablet (1024 × 768) nothing makes the page scroll sideways (a long link,
    a wide table, a grid track pushed open by its content)."""
    screen = playwright.devices["Pixel 7"] if device == "Pixel 7" else TABLET
    context = browser.new_context(base_url=live_server.url, **screen)
    try:
        page = context.new_page()
        open_page(page, journey, name)
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")  # folded tables too
        # (a mobile browser zooms out to show a page wider than the screen: innerWidth grows with it, so the
        # page is measured against the device's own width)
        screen_width = screen["viewport"]["width"]
        width = page.evaluate("Math.max(document.documentElement.scrollWidth, window.innerWidth)")
        wide = page.evaluate("""(w) => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > w + 1)
            .slice(0, 5).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                                   + (el.className ? '.' + String(el.className).split(' ').join('.') : ''))""",
                             screen_width)
        assert width <= screen_width, f"{width} px wide on a {screen_width} px screen: {wide}"
    finally:
        context.close()


def test_focus_stays_on_a_pipeline_link_when_the_list_refreshes(page: Page, journey: dict[str, Any]) -> None:
    """The pipeline replaces its list every 5 s: the focused link must get the focus back (an id on each link;
    htmx refocuses by id), or a keyboard or screen-reader user is thrown back to the top of the page."""
    open_page(page, journey, "pipeline")
    link = page.locator("#pipeline a[href^='/applications/']").first
    href = link.get_attribute("href")
    link.focus()
    page.evaluate("document.activeElement.__beforeRefresh = true")
    current = f"document.querySelector('#pipeline a[href=\"{href}\"]')"
    wait_until(page, f"{current} && !{current}.__beforeRefresh", 10)  # the list was replaced
    assert page.evaluate("document.activeElement.getAttribute('href')") == href, "the refresh lost the focus"
