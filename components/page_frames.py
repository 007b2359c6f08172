"""The browser stops drawing frames for progress timers nobody can see: a script that runs first in
the page, put there by an ASGI middleware on the app's own page (app.py passes it to `launch`).

Gradio 6.31's status tracker counts its "1.2s" timer in a requestAnimationFrame loop that stops only
when its event completes, never when the tracker leaves the page. The page loader's tracker leaves
while it is still counting, on every page of every Gradio app, so each open page asks for 60 frames a
second for as long as it is open: ~0.1 of a CPU core in Chromium on an idle page (measured,
docs/bench/demo.md), taken from the local fine-tune where browser and backend share a 2-core machine.

The script lets the tracker's frames through at most 10 times a second while a tracker is on screen
(its timer shows tenths: in Chromium a 3 s wait showed 26 of its 30 tenths, against all 30) and
once a second while none is, which is then all a removed tracker's loop costs. Other frames are untouched. The tracker takes its reference to
`requestAnimationFrame` when its module loads, before Gradio adds a `launch(head=...)` to the page,
so the script goes in the served HTML itself, first in <head>. It recognises the tracker's calls by
the script file they come from: if a Gradio release renames that file, nothing is held back (a
browser test counts the frames: tests/test_page_frames.py).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: ms between two frames of the status trackers' timers while one is shown / while none is.
SHOWN_MS = 100
UNSEEN_MS = 1000

SCRIPT = f"""<script>
(() => {{
  const frame = window.requestAnimationFrame.bind(window);
  const fromTracker = /statustracker-[\\w-]+\\.js/;
  const shown = () => document.querySelector('[data-testid="status-tracker"]:not(.hide)') !== null;
  window.requestAnimationFrame = (callback) => {{
    if (!fromTracker.test(new Error().stack || "")) return frame(callback);
    setTimeout(() => frame(callback), shown() ? {SHOWN_MS} : {UNSEEN_MS});
    return 0;
  }};
}})();
</script>"""


def with_script(html: bytes) -> bytes:
    """`html` with SCRIPT first in its <head> (unchanged if it has none)."""
    at = html.find(b"<head>")
    if at < 0:
        return html
    at += len(b"<head>")
    return html[:at] + SCRIPT.encode() + html[at:]


class FirstInHead:
    """ASGI middleware: puts SCRIPT in the HTML of the app's page ("/", GET), before Gradio's modules."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def held(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message  # sent with the body, once its length is known
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            # A list, not a dict: a response may repeat a header (set-cookie).
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
            page = with_script(bytes(body)) if html and start["status"] == 200 else bytes(body)
            await send({**start, "headers": [*headers, (b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, held)
