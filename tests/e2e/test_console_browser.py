"""The console in a real browser (Debian's headless Chromium): what a crew member does.

Log in (a wrong password first), watch the live frame change, draw a counting line with
the mouse across the simulated road, save, and find it in the TOML on disk, the camera
pipeline restarted and the new line counting; a bad name shows its error next to the
field and changes nothing. One gateway and one browser for the module.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import chromium, close
from tests.support.console import ADMIN, ADMIN_PASSWORD, Gateway, wait_for, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(write_config(tmp_path_factory.mktemp("console-browser"))).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def browser(gateway: Gateway) -> Iterator[Any]:
    driver, profile = chromium()
    driver.get(f"http://127.0.0.1:{gateway.port}/")
    yield driver
    close(driver, profile)


def by_id(browser: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id)


def css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def test_login_refuses_a_wrong_password_then_lets_the_crew_in(browser: Any) -> None:
    assert by_id(browser, "login").is_displayed()
    for hidden in ("camera", "tabs", "who", "status"):  # nothing but the form before logging in
        assert not by_id(browser, hidden).is_displayed(), hidden
    by_id(browser, "login-user").send_keys(ADMIN)
    by_id(browser, "login-password").send_keys("not the password")
    by_id(browser, "login-submit").click()
    wait_for(lambda: "wrong user name or password" in by_id(browser, "login-error").text, 20)
    by_id(browser, "login-password").clear()
    by_id(browser, "login-password").send_keys(ADMIN_PASSWORD)
    by_id(browser, "login-submit").click()
    wait_for(lambda: by_id(browser, "camera").is_displayed(), 20)
    assert by_id(browser, "who-name").text == ADMIN
    assert "pictures never leave this unit" in browser.page_source


def test_the_live_frame_changes(browser: Any) -> None:
    def frame() -> int:
        value = by_id(browser, "frame").get_attribute("data-frame")
        return int(value) if value else -1

    first = wait_for(lambda: frame() >= 0 and frame(), 30) or 0
    later = wait_for(lambda: frame() > first and frame(), 30)
    assert later > first
    state = wait_for(
        lambda: (
            by_id(browser, "cam-state").text in ("ok", "reconnecting", "stalled")
            and by_id(browser, "cam-state").text
        ),
        30,
    )
    assert state == "ok"
    assert "processed" in by_id(browser, "cam-rates").text


def drag(
    browser: Any, start: tuple[float, float], end: tuple[float, float], steps: int = 6
) -> None:
    """A mouse drag on the overlay between two points given as fractions of the picture."""
    from selenium.webdriver.common.action_chains import ActionChains

    svg = by_id(browser, "overlay")
    width, height = svg.rect["width"], svg.rect["height"]

    def offset(p: tuple[float, float]) -> tuple[int, int]:  # from the element's centre
        return round((p[0] - 0.5) * width), round((p[1] - 0.5) * height)

    x0, y0 = offset(start)
    x1, y1 = offset(end)
    chain = ActionChains(browser).move_to_element_with_offset(svg, x0, y0).click_and_hold()
    done = (x0, y0)
    for i in range(1, steps + 1):
        target = (x0 + (x1 - x0) * i // steps, y0 + (y1 - y0) * i // steps)
        chain.move_by_offset(target[0] - done[0], target[1] - done[1])
        done = target
    chain.release().perform()


def test_draw_a_line_save_it_and_see_it_count(browser: Any, gateway: Gateway) -> None:
    by_id(browser, "add-line").click()
    drag(browser, (0.5, 0.45), (0.5, 0.97))
    edit = browser.execute_script("return S.edit")
    assert [line["id"] for line in edit["lines"]] == ["upper", "line-1"]
    (x1, y1), (x2, y2) = edit["lines"][1]["points"]
    assert abs(x1 - 0.5) < 0.02 and abs(y1 - 0.45) < 0.02 and abs(y2 - 0.97) < 0.02
    names = [i.get_attribute("value") for i in css(browser, "#items .name input")]
    assert names == ["upper", "line-1"]
    assert "not saved yet" in by_id(browser, "items").text
    frames_before = browser.execute_script("return S.live.frames")
    by_id(browser, "save").click()
    wait_for(lambda: "Saved" in by_id(browser, "save-message").text, 30)
    saved = tomllib.loads(gateway.path.read_text())["cameras"][0]["lines"]
    assert [line["id"] for line in saved] == ["upper", "line-1"]
    assert saved[1]["points"] == [[x1, y1], [x2, y2]]
    # the pipeline restarted: its frame count starts again
    wait_for(lambda: browser.execute_script("return S.live && S.live.frames") < frames_before, 30)

    def texts(selector: str) -> list[str]:  # read at once: the page redraws every second
        script = "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)"
        return list(browser.execute_script(script, selector))

    def counted() -> int:
        return sum(int(t) for t in texts('[data-count^="line-1:"]') if t.isdigit())

    assert wait_for(counted, 90) > 0
    labels = texts("#overlay text.count")
    assert any(label.isdigit() and int(label) > 0 for label in labels)  # on the picture too


def test_flip_changes_the_direction(browser: Any, gateway: Gateway) -> None:
    before = browser.execute_script("return S.edit.lines[1].points")
    css(browser, "#items .flip")[1].click()
    assert browser.execute_script("return S.edit.lines[1].points") == before[::-1]
    assert by_id(browser, "save").is_enabled()
    by_id(browser, "discard").click()
    assert browser.execute_script("return S.edit.lines[1].points") == before
    assert not by_id(browser, "save").is_enabled()


def test_a_bad_name_shows_its_error_and_changes_nothing(browser: Any, gateway: Gateway) -> None:
    from selenium.webdriver.common.keys import Keys

    before = gateway.path.read_bytes()
    name = css(browser, "#items .name input")[1]
    name.send_keys(Keys.END, " on the left")
    by_id(browser, "save").click()
    wait_for(lambda: "Not saved" in by_id(browser, "save-message").text, 30)
    errors = css(browser, '.field-errors[data-path="lines[1].id"] li')
    assert [e.text for e in errors] == ["use 1 to 64 letters, digits, '_', '.' or '-' (no spaces)"]
    name = css(browser, "#items .name input")[1]  # the panel is drawn again after a save
    assert "invalid" in name.get_attribute("class")
    assert gateway.path.read_bytes() == before
    by_id(browser, "discard").click()
    assert not css(browser, ".field-errors li")


def test_a_change_without_the_csrf_token_is_refused(browser: Any, gateway: Gateway) -> None:
    before = gateway.path.read_bytes()
    script = """
        const done = arguments[arguments.length - 1];
        fetch('/api/cameras/cam/geometry', {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({lines: []})})
          .then(r => r.json().then(b => done([r.status, b.error])));
    """
    status, error = browser.execute_async_script(script)  # the session cookie goes along
    assert status == 403 and "CSRF" in error
    assert gateway.path.read_bytes() == before


def test_logging_out_leaves_nothing_to_see(browser: Any, gateway: Gateway) -> None:
    by_id(browser, "logout").click()
    wait_for(lambda: by_id(browser, "login").is_displayed(), 20)
    status = browser.execute_script(
        "return fetch('/api/cameras/cam/live', {cache: 'no-store'}).then(r => r.status)"
    )
    assert status == 401


def test_guessing_passwords_is_slowed_down(browser: Any, gateway: Gateway) -> None:
    """Last in the module: the browser's address is backed off afterwards.

    3 wrong guesses are free, then each recorded one doubles the wait (1, 2, 4, 8 s).
    The page is driven until a wrong guess is answered with a wait of at least 6 s, so
    the right password sent next is refused however slowly the browser types.
    """
    wait_for(lambda: by_id(browser, "login").is_displayed(), 20)

    def submit(password: str) -> str:
        by_id(browser, "login-user").clear()
        by_id(browser, "login-user").send_keys(ADMIN)
        by_id(browser, "login-password").clear()
        by_id(browser, "login-password").send_keys(password)
        by_id(browser, "login-submit").click()  # the page clears the message, then answers
        text: str = wait_for(
            lambda: (
                by_id(browser, "login-submit").is_enabled() and by_id(browser, "login-error").text
            ),
            20,
        )
        return text

    wait_s = 0
    for i in range(12):
        message = submit(f"guess number {i}")
        found = re.search(r"next try in (\d+) s", message)
        if found is None:
            assert "wrong user name or password" in message
            continue
        assert "too many failed logins" in message
        wait_s = int(found.group(1))
        if wait_s >= 6:
            break
        time.sleep(wait_s + 0.2)  # let the wait pass: the next guess is checked and recorded
    assert wait_s >= 6, "the waits never grew"
    message = submit(ADMIN_PASSWORD)  # right, but too soon
    assert "too many failed logins" in message
    assert "next try in" in message
    assert not by_id(browser, "camera").is_displayed()
