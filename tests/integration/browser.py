"""A headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages ended by NUL on file descriptors 3 and 4), with the
standard library only: open a page, evaluate JavaScript in it, take a screenshot. The page runs
in real time (unlike --dump-dom with --virtual-time-budget, whose timers run ahead of the
clock)."""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, width=1400, height=1100):
        exe = find_chromium()
        if exe is None:
            raise FileNotFoundError("chromium not found (Debian package `chromium`)")
        self.profile = tempfile.mkdtemp(prefix="encserve-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # The child reads commands on fd 3 and writes replies on fd 4 (copies above 10 first,
        # so that neither dup2 overwrites the other's source).
        r3 = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        w4 = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)

        def fds():
            os.dup2(r3, 3)
            os.dup2(w4, 4)

        args = [exe, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                "about:blank"]
        # (close_fds off: it would close 3 and 4 after preexec_fn; Python opens its files
        # close-on-exec anyway.)
        self.proc = subprocess.Popen(args, preexec_fn=fds, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_child_r, from_child_w, r3, w4):
            os.close(fd)
        self._buf = b""
        self._next_id = 0
        self.session = None
        self.width, self.height = width, height

    def _send(self, method, params=None, session=True):
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def call(self, method, params=None, session=True, timeout=60):
        """Sends a command and returns its result (events in between are dropped)."""
        want = self._send(method, params, session)
        deadline = time.time() + timeout
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.time()
                if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                    raise TimeoutError(f"no reply to {method} in {timeout} s")
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe (exit {self.proc.poll()})")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            msg = json.loads(raw)
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def open(self, url):
        """Opens `url` in a new tab and attaches to it."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                   "mobile": False})
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout=30, poll=0.1):
        """Polls until `expression` is truthy (an exception counts as false); returns it."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                v = self.evaluate(expression)
            except RuntimeError:  # (the page is not there yet)
                v = None
            if v:
                return v
            time.sleep(poll)
        raise TimeoutError(f"{expression} still false after {timeout} s")

    def reload(self):
        self.call("Page.reload")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))
        return path

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)
