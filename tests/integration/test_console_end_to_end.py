"""The console end to end (issue 16, "Show"): in chromium, a counter clerk finds a holder,
reports the loss, formalizes it and applies for the reissue; the 领卡证明 opens; the clerk
submits the job with the photo; a simulated station (``sscard station run`` on
pcscd + vpcd and a printer emulator on a pty) makes the card; the card center's page shows
the job done and the auditor finds every event of the card. Screenshots of each page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page

from personalize.roles import Role
from simulator.factory import sample_photo
from tests.integration.api_fixture import holder
from tests.integration.console import add_operators, chromium, desk, serve_console
from tests.integration.crash_campaign import Campaign

pytestmark = pytest.mark.pcsc


def flash(page: Page) -> str:
    return page.locator("p.flash").first.inner_text()


def station_run(campaign: Campaign) -> subprocess.Popen[str]:
    """``sscard station run`` on the simulated station, as the card center runs it."""
    argv = [sys.executable, "-m", "personalize.cli", "station", "run",
            "--station", str(campaign.station_files[0]), "--poll", "0.2"]  # fmt: skip
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **campaign.session},
    )  # fmt: skip


def test_counter_to_station_to_card_center_to_auditor(tmp_path: Path) -> None:
    with Campaign(tmp_path / "center", jobs=1) as campaign:
        registry = campaign.registry
        person = holder(0)
        old = registry.allocate_card_number()
        registry.enroll(person, old, operator="setup")
        db = campaign.config.registry
        add_operators(db)
        printed_before = campaign.printed()
        with (
            serve_console(db, track_key=campaign.config.track_key) as base,
            chromium() as browser,
        ):
            # the counter: find the holder by card number, loss, formal loss, reissue
            with desk(browser, base, tmp_path) as d:
                page = d.login(Role.COUNTER)
                page.on("dialog", lambda dialog: dialog.accept())
                page = d.go("/counter")
                page.fill("input[name=q]", old)
                page.click("form.search button[type=submit]")
                page.wait_for_load_state()
                assert page.inner_text("#ssn") == person.ssn
                card = f"#card-{old}"
                assert page.inner_text(f"{card} .status") == "正常"
                d.shot("e2e-1-counter-person")
                page.click(f"{card} form[action$='/report-loss'] button")
                page.wait_for_load_state()
                assert "已预挂失" in flash(page)
                page.click(f"{card} form[action$='/formal-loss'] button")
                page.wait_for_load_state()
                assert "已正式挂失" in flash(page)
                page.fill(f"{card} form[action$='/reissue'] input[name=counter]", "1 号窗口")
                page.click(f"{card} form[action$='/reissue'] button[type=submit]")
                page.wait_for_load_state()
                assert "已受理" in flash(page)
                assert page.inner_text(f"{card} .status") == "补卡中"
                d.shot("e2e-2-counter-reissued")
                request = registry.open_request(registry.card(old).id)
                assert request is not None
                link = page.locator(f"#request-{request.id} a.certificate")
                assert link.get_attribute("target") == "_blank"  # opens beside the page
                href = base.removesuffix("/console") + str(link.get_attribute("href"))
                pdf = page.request.get(href)
                assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
                assert pdf.headers["content-disposition"].startswith("inline")
                assert pdf.body().startswith(b"%PDF")

                # the counter: the job with the photo, after the face preview
                page.click(f"#request-{request.id} a.job")
                page.wait_for_load_state()
                page.set_input_files(
                    "input[name=photo]",
                    {"name": "p.jpg", "mimeType": "image/jpeg", "buffer": sample_photo("e2e")},
                )
                page.click("#preview")
                page.wait_for_load_state()
                assert page.locator("img#face").count() == 1
                d.shot("e2e-3-counter-job-preview")
                page.click("#submit-job")
                page.wait_for_load_state()
                assert "已提交" in flash(page)
                (job,) = [s.job for s in registry.jobs.page(limit=10) if s.old_card_number == old]

            # the card center: the queue, the station, the job done
            with desk(browser, base, tmp_path) as d:
                d.login(Role.CARD_CENTER)
                page = d.go("/center")
                assert f"#{job.id}" in page.inner_text("main")
                d.shot("e2e-4-center-queue-queued")

                # the simulated station makes the card
                worker = station_run(campaign)
                try:
                    deadline = time.monotonic() + 240
                    while registry.job(job.id).status != "done":
                        assert worker.poll() is None, worker.communicate()
                        assert time.monotonic() < deadline, "the station did not finish the job"
                        time.sleep(0.5)
                finally:
                    worker.send_signal(signal.SIGTERM)
                    worker.communicate(timeout=60)
                assert campaign.printed() == printed_before + 1
                page = d.go(f"/center/jobs/{job.id}")
                assert page.inner_text("#job-status") == "已完成"
                assert "activate" in page.inner_text("#steps") or "启用" in page.inner_text(
                    "#steps"
                )
                d.shot("e2e-5-center-job-done")
                page = d.go("/center")
                d.shot("e2e-6-center-queue-done")

            # the auditor: every event of the card, with who did it
            with desk(browser, base, tmp_path) as d:
                d.login(Role.AUDITOR)
                page = d.go(f"/audit/events?card={old}")
                events = page.inner_text("#events")
                for action in ("card.provisional_loss", "card.formal_loss", "request.reissue",
                               "job.submit", "job.done", "card.void"):  # fmt: skip
                    assert action in events, action
                assert {"counter1", "op"} <= set(events.split())
                d.shot("e2e-7-audit-events")
                page = d.go("/audit")
                d.shot("e2e-8-audit-status")
        new = registry.card_by_id(registry.job(job.id).new_card_id or 0)
        assert new.status == "active" and registry.card(old).status != "active"
