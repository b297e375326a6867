"""The service page in a real browser: Debian's Chromium, headless, driven by selenium through
Debian's ChromeDriver (`make browser-tools` installs both; nothing is downloaded). It reads what
the page says about the model, runs "Try it out" on /classify, and keeps a screenshot in reports/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from src import config
from src.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = PROJECT_ROOT / "reports" / "service_page.png"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


@pytest.fixture
def browser(tmp_path):
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "`make browser-tools` installs chromium and chromium-driver"
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")), options=options
    )
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_the_page_describes_the_model_and_try_it_out_answers(server, browser, trained, booster):
    wait = WebDriverWait(browser, 30)
    browser.get(f"{server.url}/")
    info = wait.until(seen.visibility_of_element_located((By.CSS_SELECTOR, ".information-container .info")))
    assert browser.title.startswith("XGBoost binary classifier") and trained.tag in browser.title
    assert info.find_element(By.CSS_SELECTOR, ".title").text.startswith(config.SERVICE_NAME)
    assert info.find_element(By.CSS_SELECTOR, ".version").text.strip() == trained.tag
    text = info.find_element(By.CSS_SELECTOR, ".description").text
    for fact in (
        "binary class, 0 or 1",
        f"{config.N_FEATURES} numeric features",
        config.FEATURE_NAMES[0],
        config.FEATURE_NAMES[-1],
        f"at least {config.DECISION_THRESHOLD}",
        trained.tag,
        f"AUC {trained.metrics['auc']:.4f}",
        f"accuracy {trained.metrics['accuracy']:.4f}",
        "curl -X POST",
        "python -m src.client",
        '{"error":',
    ):
        assert fact in text, fact
    assert "created with BentoML" not in browser.page_source

    operation = browser.find_element(By.ID, "operations-Service_APIs-classify")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda _: operation.find_element(By.CSS_SELECTOR, ".try-out__btn")).click()
    body = wait.until(lambda _: operation.find_element(By.CSS_SELECTOR, "textarea.body-param__text"))
    assert json.loads(body.get_attribute("value")) == config.EXAMPLE_ROWS
    operation.find_element(By.CSS_SELECTOR, ".execute").click()
    status = wait.until(
        lambda _: operation.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
    )
    answer = operation.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_description pre")
    expected = booster.inplace_predict(np.asarray(config.EXAMPLE_ROWS, dtype=np.float32)) >= config.DECISION_THRESHOLD
    assert status.text.strip() == "200"
    assert json.loads(answer.text) == expected.astype(int).tolist()
    shown = operation.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_description").text
    assert f"x-model-version: {trained.tag}" in shown.lower()

    # From the page's top to the live answer: the model's description, the request and the answer.
    bottom = browser.execute_script(
        "return arguments[0].getBoundingClientRect().bottom + window.scrollY",
        operation.find_element(By.CSS_SELECTOR, ".live-responses-table"),
    )
    browser.set_window_size(1280, int(bottom) + 140)
    browser.execute_script("window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
