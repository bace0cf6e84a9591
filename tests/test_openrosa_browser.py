"""A real ODK form engine in a real browser: the XForm our OpenRosa server serves, loaded in
ODK Web Forms (``@getodk/web-forms``, from ``tests/odk/node_modules``: run
``npm ci --no-audit --no-fund`` in ``tests/odk``) under Chromium; a few questions are
answered (the display condition included), and the submission the engine makes is posted
as it is, from the page, to ``/openrosa/submission``. The stored response equals the same
answers sent through ``POST /api/v1/responses/``.

The engine's files are served to the page from ``node_modules`` by Playwright at the live
server's origin (no bundler: an import map points ``vue`` at its browser build), so the
page's requests to ``/openrosa/`` are same-origin, as an Enketo or Web Forms deployment
beside the server would make them.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from django.test import Client

from feedback.models import Answer, Response
from surveys.models import Round
from tests.support.openrosa import make_enumerator
from tests.support.requirements import require

pytestmark = pytest.mark.django_db(transaction=True)
NODE_MODULES = Path(__file__).resolve().parent / "odk" / "node_modules"
ENGINE = NODE_MODULES / "@getodk" / "web-forms" / "dist" / "index.js"

PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>ODK Web Forms</title>
<script type="importmap">{"imports": {"vue": "/__odk__/vue/dist/vue.esm-browser.prod.js"}}</script>
</head><body><div id="app"></div>
<script type="module">
import { createApp, h } from "vue";
import { OdkWebForm, webFormsPlugin } from "/__odk__/@getodk/web-forms/dist/index.js";
const authorization = AUTHORIZATION;
const formXml = await (await fetch("/openrosa/forms/swap/form.xml",
  { headers: { Authorization: authorization } })).text();
async function onSubmit(payload, callback) {
  const data = payload.data[0];
  const instance = await data.get("xml_submission_file").text();
  const answer = await fetch("/openrosa/submission",
    { method: "POST", body: data, headers: { Authorization: authorization } });
  window.odkResult = { status: answer.status, body: await answer.text(), instance };
  if (typeof callback === "function") callback({ status: "success" });
}
const app = createApp({ render: () => h(OdkWebForm, {
  formXml, fetchFormAttachment: (url) => fetch(url), onSubmit }) });
app.use(webFormsPlugin);
app.mount("#app");
window.odkMounted = true;
</script></body></html>
"""


def _serve_engine(route: Any, request: Any, page_html: str) -> None:
    path = request.url.split("/__odk__/", 1)[1].split("?", 1)[0]
    if path == "page.html":
        route.fulfill(status=200, body=page_html, content_type="text/html; charset=utf-8")
        return
    file = (NODE_MODULES / path).resolve()
    if NODE_MODULES.resolve() not in file.parents or not file.is_file():
        route.fulfill(status=404, body="not found")
        return
    kind = "text/javascript" if file.suffix in (".js", ".mjs") else mimetypes.guess_type(file)[0]
    route.fulfill(
        status=200, body=file.read_bytes(), content_type=kind or "application/octet-stream"
    )


def stored(response: Response) -> dict[str, Any]:
    return dict(Answer.objects.filter(response=response).values_list("question__code", "value")) | {
        "unit": response.unit.code,
        "psu": response.psu,
    }


def test_web_forms_fill_and_submit(browser: Any, live_server: Any, agency_round: Round) -> None:
    if not ENGINE.is_file():
        require("ODK Web Forms is not installed: run `npm ci --no-audit --no-fund` in tests/odk")
    user, password = make_enumerator()

    authorization = "Basic " + base64.b64encode(f"{user.username}:{password}".encode()).decode()
    page_html = PAGE.replace("AUTHORIZATION", json.dumps(authorization))
    context = browser.new_context(locale="vi-VN", viewport={"width": 1000, "height": 1200})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route(
        f"{live_server.url}/__odk__/**",
        lambda route, request: _serve_engine(route, request, page_html),
    )
    page.goto(f"{live_server.url}/__odk__/page.html")
    page.wait_for_function("window.odkMounted === true", timeout=30_000)
    page.get_by_text("Vòng thử (swap)").first.wait_for(timeout=30_000)

    def choose(value: str) -> None:
        page.locator(f'label.value-option:has(input[type=radio][value="{value}"])').click()

    choose("01")  # the unit: Hà Nội
    choose("01-TTPVHCC")  # its agencies only are offered once the unit is chosen
    assert page.locator('input[type=radio][value="19-TTPVHCC"]').count() == 0
    page.get_by_label("Địa bàn khảo sát", exact=False).fill("01-PhucXa")
    choose("no")
    assert page.locator('input[type=radio][value="4"]').count() == 0  # SAT: hidden
    choose("yes")
    choose("4")  # SAT, shown now that USED is yes
    page.get_by_role("button", name="Send").click()
    page.wait_for_function("window.odkResult !== undefined", timeout=30_000)
    result = page.evaluate("window.odkResult")
    context.close()
    assert not errors
    assert result["status"] == 201, result["body"]

    odk = Response.objects.get(channel=Response.Channel.ODK)
    instance = ElementTree.fromstring(result["instance"])
    instance_id = next(e.text for e in instance.iter() if e.tag.endswith("instanceID"))
    assert instance_id == f"uuid:{odk.client_id}"
    assert odk.submitted_by == user

    api = Client().post(
        "/api/v1/responses/",
        {
            "round": "swap",
            "unit": "01",
            "agency": "01-TTPVHCC",
            "psu": "01-PhucXa",
            "client_id": str(uuid.uuid4()),
            "answers": {"USED": True, "SAT": 4},
        },
        content_type="application/json",
    )
    assert api.status_code == 201, api.content
    by_api = Response.objects.get(channel=Response.Channel.API)
    assert (
        stored(odk)
        == stored(by_api)
        == {
            "USED": True,
            "SAT": 4,
            "unit": "01",
            "psu": "01-PhucXa",
        }
    )
    assert odk.agency == by_api.agency
    assert odk.agency.code == "01-TTPVHCC"
