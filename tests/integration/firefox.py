"""A headless Firefox (Debian's `firefox-esr`) driven over WebDriver BiDi, with only the standard
library (a minimal WebSocket client: text frames, client masking, no extensions). The same
interface as browser.Browser (open, evaluate, wait_for, screenshot, close), so that a page test
runs in both browsers."""
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time


def find_firefox():
    for name in ("firefox-esr", "firefox"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _WebSocket:
    def __init__(self, host, port, path, timeout=60):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("WebSocket handshake: connection closed")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise OSError(f"WebSocket handshake refused: {status!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def send(self, text):
        payload = text.encode()
        n = len(payload)
        header = bytes([0x81])  # FIN, text
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise OSError("WebSocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next text message (fragments joined; pings answered)."""
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)  # (servers do not mask)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise OSError("WebSocket closed by Firefox")
            if opcode == 0x9:  # ping -> pong
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                continue
            if opcode in (0x0, 0x1):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Firefox:
    def __init__(self, width=1400, height=1100):
        exe = find_firefox()
        if exe is None:
            raise RuntimeError("firefox-esr not installed")
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="encserve-firefox-")
        self.log_path = os.path.join(self.profile, "firefox.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-remote", "--profile", self.profile,
             "--remote-debugging-port", "0", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "MOZ_HEADLESS": "1"})
        port = self._wait_port(60)
        self.ws = _WebSocket("127.0.0.1", port, "/session")
        self.next_id = 0
        self.call("session.new", {"capabilities": {}})
        tree = self.call("browsingContext.getTree", {})
        self.context = tree["contexts"][0]["context"]
        self.call("browsingContext.setViewport",
                  {"context": self.context, "viewport": {"width": width, "height": height}})

    def _wait_port(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path) as f:
                m = re.search(r"WebDriver BiDi listening on ws://127\.0\.0\.1:(\d+)", f.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"Firefox did not start its WebDriver BiDi server:\n{self._logs()}")

    def _logs(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def call(self, method, params, timeout=60):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        self.ws.sock.settimeout(timeout)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") != my_id:
                continue  # events
            if msg.get("type") == "error":
                raise RuntimeError(f"{method}: {msg.get('error')}: {msg.get('message')}")
            return msg["result"]

    def open(self, url):
        self.call("browsingContext.navigate",
                  {"context": self.context, "url": url, "wait": "complete"})

    def reload(self):
        self.call("browsingContext.reload", {"context": self.context})

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        # Statements allowed, the last one's value returned, as DevTools' Runtime.evaluate: a
        # global eval of the text; the value comes back as JSON.
        wrapped = f"(async () => JSON.stringify(await (0, eval)({json.dumps(expression)})))()"
        r = self.call("script.evaluate", {"expression": wrapped,
                                          "target": {"context": self.context},
                                          "awaitPromise": True})
        if r.get("type") == "exception":
            raise RuntimeError(f"{expression}: {r['exceptionDetails'].get('text')}")
        value = r["result"]
        if value.get("type") != "string":
            return None  # undefined
        return json.loads(value["value"])

    def wait_for(self, expression, timeout=30, poll=0.1):
        """Polls until `expression` is truthy (an exception counts as false); returns it."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                v = self.evaluate(expression)
            except RuntimeError:
                v = None
            if v:
                return v
            time.sleep(poll)
        raise TimeoutError(f"{expression} still false after {timeout} s")

    def screenshot(self, path):
        r = self.call("browsingContext.captureScreenshot",
                      {"context": self.context, "origin": "document"})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path

    def close(self):
        try:
            self.call("browser.close", {}, timeout=10)
        except (RuntimeError, OSError, AttributeError, TimeoutError, socket.timeout):
            pass
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
