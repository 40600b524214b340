"""A real MQTT broker for the tests (a pytest plugin, registered in conftest.py).

`mqtt_broker` (session-scoped) is, in this order:

1. the broker at `ACCORD_MQTT_URL`, if that is set (it cannot be restarted, so fault
   tests that need a restart skip);
2. a private Mosquitto (`mosquitto` on PATH or /usr/sbin/mosquitto) on a free
   loopback port, with its config and persistence in a temporary directory, stopped
   at the end; it can be restarted on the same port with the same persistence, so a
   fault test can check what survives a broker restart;
3. otherwise the tests skip, saying why, or fail when CI=true (`service_unavailable`).

Never a mock and never an in-Python broker: the point is to test against the broker
people deploy. `MosquittoBroker` is also used by benchmarks/bus_mqtt.py.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

MOSQUITTO_PATHS = (
    "/usr/sbin/mosquitto",
    "/usr/local/sbin/mosquitto",
    "/opt/homebrew/sbin/mosquitto",
)


def find_mosquitto() -> str | None:
    """The mosquitto binary (often in an sbin directory that is not on PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


class Broker:
    """A broker the tests can reach; `restartable` says whether `restart` works."""

    restartable = False

    def __init__(self, url: str) -> None:
        self.url = url

    def url_with(self, **query: str) -> str:
        """The URL with query options added, e.g. `url_with(client_id="chair")`."""
        extra = "&".join(f"{k}={v}" for k, v in query.items())
        if not extra:
            return self.url
        return f"{self.url}{'&' if '?' in self.url else '?'}{extra}"

    def restart(self) -> None:
        raise NotImplementedError(f"the broker at {self.url} is not ours to restart")


class MosquittoBroker(Broker):
    """A private Mosquitto on 127.0.0.1: start, stop (gracefully or SIGKILL), restart.

    Settings that matter: `set_tcp_nodelay` (no Nagle delay on the broker's side of a
    QoS 1 round trip), persistence in `directory` (a graceful stop saves queued QoS 1
    messages and sessions, so they survive a restart), and a large
    `max_queued_messages` (messages held for an offline persistent session).
    """

    restartable = True

    def __init__(
        self,
        directory: Path,
        *,
        binary: str | None = None,
        port: int | None = None,
        anonymous: bool = True,
        extra_config: str = "",
    ) -> None:
        found = binary or find_mosquitto()
        if found is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = found
        self.directory = directory
        self.port = port or free_port()
        super().__init__(f"mqtt://127.0.0.1:{self.port}")
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            "set_tcp_nodelay true\n"
            # Mosquitto started as root drops to the 'mosquitto' user, which cannot
            # write the persistence file into our private directory: stay who we are.
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            "persistence_file mosquitto.db\n"
            "max_queued_messages 100000\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            "log_type notice\n"
            f"{extra_config}"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        if not wait_for_port("127.0.0.1", self.port, timeout):
            self.stop()
            raise RuntimeError(
                f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout} s; "
                f"its log:\n{self.log_text()}"
            )

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (Mosquitto saves its persistence file) or, with `kill`, SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def restart(self, *, kill: bool = False, down_for: float = 0.0) -> None:
        """Stop and start again on the same port with the same persistence directory."""
        self.stop(kill=kill)
        if down_for:
            time.sleep(down_for)
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"


def _reachable(url: str) -> str | None:
    """None if something accepts TCP connections at the URL's host and port, else why not."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"cannot open a TCP connection to {host}:{port}: {exc}"
    return None


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    """A real MQTT v5 broker for the whole test session (see the module docstring)."""
    from tests.conftest import service_unavailable

    url = os.environ.get("ACCORD_MQTT_URL")
    if url:
        problem = _reachable(url)
        if problem:
            service_unavailable(f"the MQTT broker at ACCORD_MQTT_URL={url}", problem)
        yield Broker(url)
        return
    if find_mosquitto() is None:
        service_unavailable(
            "an MQTT broker",
            "ACCORD_MQTT_URL is not set and mosquitto is not installed "
            "(apt-get install mosquitto, or point ACCORD_MQTT_URL at a broker)",
        )
    with tempfile.TemporaryDirectory(prefix="accord-mosquitto-") as directory:
        broker = MosquittoBroker(Path(directory))
        try:
            broker.start()
        except (OSError, RuntimeError) as exc:
            service_unavailable("a private mosquitto", str(exc))
        try:
            yield broker
        finally:
            broker.stop()


@pytest.fixture
def restartable_broker(mqtt_broker: Broker) -> Iterator[MosquittoBroker]:
    """The private broker, for tests that restart it; started again if a test left it down."""
    if not isinstance(mqtt_broker, MosquittoBroker):
        pytest.skip(
            f"restarting the broker needs the private mosquitto; ACCORD_MQTT_URL "
            f"({mqtt_broker.url}) points at a broker these tests do not own"
        )
    try:
        yield mqtt_broker
    finally:
        mqtt_broker.start()
