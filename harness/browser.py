"""A real browser for the dashboard's tests and benchmark: Debian's ``chromium``, headless.

:class:`Chromium` renders a page (``--dump-dom``: the DOM after the page's scripts ran) or takes a
screenshot of it, each run in its own throwaway profile and stopped however it ends.
:func:`elements` finds rendered elements by ``data-testid``.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """Headless Chromium, one process per page (run as an asyncio subprocess: the server under test
    may share the caller's event loop)."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.binary, self.timeout = binary, timeout

    async def _run(self, *args: str) -> str:
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            proc = await asyncio.create_subprocess_exec(
                self.binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        return out.decode()

    async def dom(self, url: str) -> str:
        """The page's DOM once it has loaded (its scripts ran), serialized."""
        return await self._run("--dump-dom", url)

    async def screenshot(self, url: str, path: Path, size: str = "1400,1800") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self._run(f"--screenshot={path}", f"--window-size={size}", "--hide-scrollbars", url)
        return path


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    def find(self, testid: str) -> list[Element]:
        found = [self] if self.attrs.get("data-testid") == testid else []
        return found + [e for c in self.children for e in c.find(testid)]

    def all(self, tag: str) -> list[Element]:
        return ([self] if self.tag == tag else []) + [e for c in self.children for e in c.all(tag)]


_VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(el)
        if tag not in _VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        for el in self.stack[1:]:
            el.text += data


def parse(dom: str) -> Element:
    tree = _Tree()
    tree.feed(dom)
    return tree.root


def elements(dom: str, testid: str) -> list[Element]:
    """The rendered elements with ``data-testid="testid"``, in document order."""
    return parse(dom).find(testid)
