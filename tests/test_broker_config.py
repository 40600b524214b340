"""`accord broker-config`: the files it writes, and a real Mosquitto started from them.

The broker tests start Mosquitto from the generated `mosquitto.conf` (only the port is
chosen free, through `--port`), never a mock: the point is that the passwords hash the
way Mosquitto checks them and that the ACL stops what it should, on the broker people
deploy.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import getpass
import ipaddress
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from accord.broker_config import (
    BrokerConfigError,
    WrittenConfig,
    bus_url,
    hash_password,
    parse_group,
    verify_password,
    write_broker_config,
)
from accord.bus import (
    Message,
    Subscription,
    broadcast_topic,
    chair_topic,
    delegate_inbox,
    delegate_outbox,
    open_bus,
    outboxes_filter,
    presence_topic,
)
from accord.bus.mqtt import BusUnavailable
from accord.cli_broker import broker_config
from accord.session_file import SessionFileError
from tests.conftest import FIXTURES, ROOT, service_unavailable
from tests.mqtt_broker import find_mosquitto, free_port, wait_for_port

TINY = FIXTURES / "tiny.yaml"
DELEGATES = ("neighbours", "shops", "parents")  # the constituencies of tiny.yaml
ACCORD = [sys.executable, "-m", "accord.cli"]
TIMEOUT = 10.0


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cli() -> typer.Typer:
    """The command as `accord broker-config` mounts it, without depending on cli.py."""
    app = typer.Typer(add_completion=False)
    app.command("broker-config")(broker_config)

    @app.command("other")  # a second command, so typer keeps the command name
    def _other() -> None:  # pragma: no cover
        pass

    return app


# --- the files ------------------------------------------------------------------------


def test_hash_matches_mosquitto_passwd() -> None:
    # `mosquitto_passwd -b -c f alice secret` (Mosquitto 2.0.11) wrote this line.
    line = (
        "alice:$7$101$OgWhs6UMe/SjmKvO$NtbkXuMf2JhT9Ag/WQw9nc0l5R4y/zR7SFrdJZfe3Zht"
        "GhGcVKWytlknJn96JvwwPZcx621E+psHBvA7xFJNsA=="
    )
    encoded = line.split(":", 1)[1]
    salt = base64.b64decode(encoded.split("$")[3])
    assert hash_password("secret", salt=salt, iterations=101) == encoded
    assert verify_password("secret", encoded)
    assert not verify_password("Secret", encoded)
    fresh = hash_password("secret")
    assert fresh != hash_password("secret")  # a new salt every time
    assert fresh.startswith("$7$101$") and verify_password("secret", fresh)


def test_hash_is_read_back_by_mosquitto_passwd_and_vice_versa(tmp_path: Path) -> None:
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(passwd).exists():
        pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
    path = tmp_path / "pw"
    subprocess.run([passwd, "-b", "-c", str(path), "someone", "pa:ss w0rd"], check=True)
    user, encoded = path.read_text().strip().split(":", 1)
    assert user == "someone" and verify_password("pa:ss w0rd", encoded)


def test_writes_config_passwords_acl_and_credentials(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    written = write_broker_config(TINY, out, port=18883, groups=["duo=shops,parents"])
    assert [u.name for u in written.users] == ["chair", *DELEGATES, "duo"]

    conf = written.config.read_text()
    for line in (
        "listener 18883 127.0.0.1",
        "allow_anonymous false",
        f"password_file {out.resolve() / 'passwords'}",
        f"acl_file {out.resolve() / 'acl'}",
        "set_tcp_nodelay true",
        "persistence true",
        f"persistence_location {out.resolve()}/",
        "max_queued_messages 100000",
    ):
        assert line in conf.splitlines(), line
    assert "certfile" not in conf and "\nuser " not in conf

    assert _mode(written.passwords) == 0o600
    assert _mode(written.credentials_json) == 0o600
    assert _mode(out / "credentials") == 0o700
    creds = json.loads(written.credentials_json.read_text())["users"]
    hashes = dict(line.split(":", 1) for line in written.passwords.read_text().splitlines())
    assert set(hashes) == set(creds) == {"chair", *DELEGATES, "duo"}
    for name, entry in creds.items():
        assert verify_password(entry["password"], hashes[name])
        assert entry["url"] == f"mqtt://{name}:{entry['password']}@127.0.0.1:18883"
        url_file = written.credential_urls[name]
        assert url_file == out.resolve() / "credentials" / f"{name}.url"
        assert url_file.read_text().strip() == entry["url"] and _mode(url_file) == 0o600
    assert len({e["password"] for e in creds.values()}) == len(creds)  # all different
    assert creds["duo"]["delegates"] == ["shops", "parents"]

    blocks: dict[str, list[str]] = {}
    for line in written.acl.read_text().splitlines():
        if line.startswith("user "):
            current = blocks.setdefault(line.removeprefix("user "), [])
        elif line.startswith("topic "):
            current.append(line)
        else:
            assert not line or line.startswith("#"), line
    assert blocks["chair"] == [
        "topic read accord/v1/+/delegates/+/outbox",
        "topic read accord/v1/+/presence/+",
        "topic write accord/v1/+/delegates/+/inbox",
        "topic write accord/v1/+/broadcast",
        "topic readwrite accord/v1/+/chair/#",
    ]
    assert blocks["shops"] == [
        "topic write accord/v1/+/delegates/shops/outbox",
        "topic write accord/v1/+/presence/shops",
        "topic read accord/v1/+/delegates/shops/inbox",
        "topic read accord/v1/+/broadcast",
        "topic read accord/v1/+/chair/#",
    ]
    duo = blocks["duo"]
    assert "topic write accord/v1/+/presence/duo" in duo
    assert (
        "topic write accord/v1/+/presence/host-shops-2" in duo
    )  # `accord delegate` without --host
    assert {
        "topic write accord/v1/+/delegates/shops/outbox",
        "topic read accord/v1/+/delegates/parents/inbox",
    } <= set(duo)
    assert not any("neighbours" in x for x in duo)


def test_tls_listener_and_urls(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    written = write_broker_config(TINY, tmp_path / "b", tls_cert=cert, tls_key=key, ca=ca)
    conf = written.config.read_text().splitlines()
    assert "listener 8883 127.0.0.1" in conf  # the TLS default port
    assert {f"certfile {cert}", f"keyfile {key}", f"cafile {ca}"} <= set(conf)
    assert not any(line.startswith("listener 1883") for line in conf)  # no clear-text listener
    password = json.loads(written.credentials_json.read_text())["users"]["shops"]["password"]
    assert written.urls["shops"] == f"mqtts://shops:{password}@127.0.0.1:8883?ca={ca}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tls_cert": TINY}, "--tls-cert and --tls-key go together"),
        ({"ca": TINY}, "--ca is for a TLS listener"),
        ({"tls_cert": Path("/nonexistent.pem"), "tls_key": TINY}, "no such file"),
        ({"groups": ["team=shops,nobody"]}, "no delegate 'nobody'"),
        ({"groups": ["shops=shops,parents"]}, "already used"),
        ({"groups": ["chair=shops"]}, "already used by the chair"),
        ({"groups": ["team"]}, "expected NAME=DELEGATE"),
        ({"groups": ["bad/name=shops"]}, "a group name is"),
        ({"port": 0}, "--port 0"),
    ],
)
def test_bad_options_write_nothing(tmp_path: Path, options: dict, message: str) -> None:
    out = tmp_path / "broker"
    with pytest.raises(BrokerConfigError, match=message):
        write_broker_config(TINY, out, **options)
    assert not out.exists()


def test_paths_with_white_space_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "my broker"
    with pytest.raises(BrokerConfigError, match="white space"):
        write_broker_config(TINY, out)
    assert not out.exists()


def test_constituency_named_chair_is_refused(tmp_path: Path) -> None:
    doc = yaml.safe_load(TINY.read_text())
    doc["constituencies"][0]["id"] = "chair"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        write_broker_config(path, tmp_path / "broker")
    except (BrokerConfigError, SessionFileError) as exc:  # whichever notices first
        assert "chair" in str(exc)
    else:
        pytest.fail("a constituency named 'chair' would share the chair's broker user")
    assert not (tmp_path / "broker").exists()


def test_existing_credentials_are_kept_without_force(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    first = write_broker_config(TINY, out)
    before = first.passwords.read_text()
    with pytest.raises(BrokerConfigError, match="--force"):
        write_broker_config(TINY, out)
    assert first.passwords.read_text() == before
    second = write_broker_config(TINY, out, force=True)
    assert second.passwords.read_text() != before
    assert _mode(second.passwords) == 0o600


def test_cli_reports_files_and_start_command_without_passwords(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    result = CliRunner().invoke(
        _cli(),
        [
            "broker-config",
            str(TINY),
            "-o",
            str(out),
            "--port",
            "1999",
            "--group",
            "duo=shops,parents",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"mosquitto -c {out.resolve() / 'mosquitto.conf'}" in result.output
    assert "credentials/shops.url" in result.output
    assert "--as shops --as parents --host duo" in result.output
    for entry in json.loads((out / "credentials.json").read_text())["users"].values():
        assert entry["password"] not in result.output
    bad = CliRunner().invoke(_cli(), ["broker-config", str(TINY), "-o", str(out)])
    assert bad.exit_code == 2 and "--force" in bad.output
    missing = CliRunner().invoke(
        _cli(), ["broker-config", str(tmp_path / "none.yaml"), "-o", str(tmp_path / "x")]
    )
    assert missing.exit_code == 2


def test_parse_group_and_url_quoting() -> None:
    assert parse_group("duo = shops, parents") == ("duo", ("shops", "parents"))
    assert bus_url("a", "p:w/@", "::1", 1883) == "mqtt://a:p%3Aw%2F%40@[::1]:1883"


# --- a real Mosquitto from the generated configuration --------------------------------


@dataclass
class SecuredBroker:
    written: WrittenConfig
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return self.written.port

    def url(self, user: str, **query: str) -> str:
        url = self.written.urls[user]
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _start(written: WrittenConfig, binary: str) -> SecuredBroker:
    log = written.directory / "mosquitto.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [binary, "-c", str(written.config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=written.directory,
        )
    broker = SecuredBroker(written, process, log)
    if not wait_for_port("127.0.0.1", written.port, 10):
        broker.stop()
        raise RuntimeError(
            f"mosquitto did not start from {written.config}: {log.read_text(errors='replace')}"
        )
    return broker


def _mosquitto() -> str:
    binary = find_mosquitto()
    if binary is None:
        service_unavailable("mosquitto", "it is not installed (apt-get install mosquitto)")
    assert binary is not None
    return binary


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """Mosquitto started from `accord broker-config tiny.yaml` with a group `duo`."""
    binary = _mosquitto()
    written = write_broker_config(
        TINY,
        tmp_path_factory.mktemp("secured-broker"),
        port=free_port(),
        groups=["duo=shops,parents"],
        # Mosquitto started as root drops to the 'mosquitto' user unless told otherwise.
        run_as=getpass.getuser(),
    )
    try:
        broker = _start(written, binary)
    except (OSError, RuntimeError) as exc:
        service_unavailable("mosquitto from the generated configuration", str(exc))
        raise
    try:
        yield broker
    finally:
        broker.stop()


def _session() -> str:
    return f"tiny-{uuid.uuid4().hex[:8]}"


async def take(sub: Subscription, n: int = 1, timeout: float = TIMEOUT) -> list[Message]:
    async def collect() -> list[Message]:
        return [await anext(sub) for _ in range(n)]

    return await asyncio.wait_for(collect(), timeout)


async def empty(sub: Subscription, wait: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(anext(sub), wait)
    except TimeoutError:
        return True
    return False


pytest_mqtt = pytest.mark.mqtt


@pytest_mqtt
async def test_anonymous_and_wrong_passwords_are_refused(secured: SecuredBroker) -> None:
    port = secured.port
    shops = json.loads(secured.written.credentials_json.read_text())["users"]["shops"]
    for url in (
        f"mqtt://127.0.0.1:{port}",
        f"mqtt://shops:wrong@127.0.0.1:{port}",
        f"mqtt://nobody:{shops['password']}@127.0.0.1:{port}",
        f"mqtt://parents:{shops['password']}@127.0.0.1:{port}",  # another user's password
    ):
        with pytest.raises(BusUnavailable, match="refused the connection"):
            await open_bus(url).connect()
    async with open_bus(secured.url("shops")):
        pass  # and the right one is let in


@pytest_mqtt
async def test_delegate_publishes_to_its_outbox_and_reads_its_inbox(secured: SecuredBroker) -> None:
    s = _session()
    async with open_bus(secured.url("chair")) as chair, open_bus(secured.url("shops")) as shops:
        async with (
            chair.subscribe(outboxes_filter(s)) as outboxes,
            shops.subscribe(delegate_inbox(s, "shops")) as inbox,
            shops.subscribe(broadcast_topic(s)) as broadcast,
        ):
            await shops.publish(delegate_outbox(s, "shops"), b"move")
            [got] = await take(outboxes)
            assert (got.topic, got.payload) == (delegate_outbox(s, "shops"), b"move")
            await chair.publish(delegate_inbox(s, "shops"), b"call")
            await chair.publish(broadcast_topic(s), b"to all")
            assert [m.payload for m in await take(inbox)] == [b"call"]
            assert [m.payload for m in await take(broadcast)] == [b"to all"]
        # The retained opening and the delegate's retained presence: both ways allowed.
        await chair.publish(chair_topic(s, "open"), b"opening", retain=True)
        async with shops.subscribe(chair_topic(s, "open")) as opening:
            assert [(m.payload, m.retain) for m in await take(opening)] == [(b"opening", True)]
        await chair.publish(chair_topic(s, "open"), b"", retain=True)


@pytest_mqtt
async def test_a_delegate_cannot_write_anothers_outbox_or_read_its_inbox(
    secured: SecuredBroker,
) -> None:
    s = _session()
    async with (
        open_bus(secured.url("chair")) as chair,
        open_bus(secured.url("shops")) as shops,
        open_bus(secured.url("parents")) as parents,
        chair.subscribe(outboxes_filter(s)) as outboxes,
    ):
        # Mosquitto answers the forged PUBLISH with PUBACK 0x87 (not authorized) and drops
        # it. MqttBus does not look at PUBACK reason codes (aiomqtt hands them to nobody),
        # so publish() returns as if it had worked: what matters is that nobody gets it.
        try:
            await shops.publish(delegate_outbox(s, "parents"), b"forged move")
        except (BusUnavailable, PermissionError):  # pragma: no cover - if MqttBus learns to refuse
            pass
        # One publisher's messages arrive in order: once its next (legitimate) message is
        # in, the forged one would have been too.
        await shops.publish(delegate_outbox(s, "shops"), b"own move")
        assert [(m.topic, m.payload) for m in await take(outboxes)] == [
            (delegate_outbox(s, "shops"), b"own move")
        ]
        assert await empty(outboxes)

        # Reading another's inbox: Mosquitto 2.0 grants the SUBSCRIBE, then checks read
        # access on every delivery (other brokers may refuse the SUBACK: also fine).
        try:
            async with (
                shops.subscribe(delegate_inbox(s, "parents")) as stolen,
                shops.subscribe(delegate_inbox(s, "shops")) as own,
                parents.subscribe(delegate_inbox(s, "parents")) as rightful,
            ):
                await chair.publish(delegate_inbox(s, "parents"), b"for parents only")
                await chair.publish(delegate_inbox(s, "shops"), b"for shops")
                assert [m.payload for m in await take(rightful)] == [b"for parents only"]
                # In order on shops' one connection: the parents' message would come first.
                assert [m.payload for m in await take(own)] == [b"for shops"]
                assert await empty(stolen)
        except BusUnavailable as exc:
            assert "refused the subscription" in str(exc)

        # Nor may a delegate announce presence for another.
        async with chair.subscribe(f"accord/v1/{s}/presence/+") as presence:
            await shops.publish(presence_topic(s, "parents"), b"fake", retain=True)
            await shops.publish(presence_topic(s, "shops"), b"real", retain=True)
            assert [(m.topic, m.payload) for m in await take(presence)] == [
                (presence_topic(s, "shops"), b"real")
            ]
            assert await empty(presence)
        await shops.publish(presence_topic(s, "shops"), b"", retain=True)


def _paho(secured: SecuredBroker, user: str):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    password = json.loads(secured.written.credentials_json.read_text())["users"][user]["password"]
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.username_pw_set(user, password)
    return client


@pytest_mqtt
def test_a_will_on_anothers_presence_is_never_published(secured: SecuredBroker) -> None:
    """Mosquitto 2.0 accepts the CONNECT but checks the ACL when the will fires."""
    s, got = _session(), []
    chair = _paho(secured, "chair")
    subscribed = threading.Event()
    chair.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
    chair.on_subscribe = lambda *_: subscribed.set()
    chair.connect("127.0.0.1", secured.port)
    chair.loop_start()
    try:
        chair.subscribe(f"accord/v1/{s}/presence/+", qos=1)
        assert subscribed.wait(TIMEOUT)
        for topic in (presence_topic(s, "parents"), presence_topic(s, "shops")):
            client = _paho(secured, "shops")
            client.will_set(topic, b"offline", qos=1)
            client.connect("127.0.0.1", secured.port)
            while not client.is_connected():
                client.loop(0.1)
            client.socket().close()  # the connection dies without DISCONNECT: the will fires
        deadline = time.monotonic() + TIMEOUT
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # the forged will was due first; give a stray one the chance to show
    finally:
        chair.disconnect()
        chair.loop_stop()
    assert got == [(presence_topic(s, "shops"), b"offline")]


@pytest_mqtt
def test_broker_answers_a_forged_publish_with_puback_0x87(secured: SecuredBroker) -> None:
    """What the broker says (seen with paho directly), which MqttBus does not surface."""
    s = _session()
    codes: dict[int, int] = {}
    client = _paho(secured, "shops")
    client.on_publish = lambda _c, _u, mid, rc, _p: codes.__setitem__(mid, rc.value)
    client.connect("127.0.0.1", secured.port)
    client.loop_start()
    try:
        forged = client.publish(delegate_outbox(s, "parents"), b"x", qos=1)
        own = client.publish(delegate_outbox(s, "shops"), b"x", qos=1)
        forged.wait_for_publish(TIMEOUT)
        own.wait_for_publish(TIMEOUT)
    finally:
        client.disconnect()
        client.loop_stop()
    assert codes[forged.mid] == 0x87  # not authorized
    assert codes[own.mid] < 0x80  # success (0x10, "no matching subscribers", here)


def _env(**extra: str) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"} | extra


def _chair(path: Path, session: str, url: str, ledger: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *ACCORD,
            "chair",
            str(path),
            "--session",
            session,
            "--bus",
            url,
            "--ledger",
            str(ledger),
            "--json",
            "--wait",
            "60",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _delegates(
    path: Path, session: str, url: str, keys: Path, *who: str, host: str | None = None
) -> subprocess.Popen[str]:
    command = [
        *ACCORD,
        "delegate",
        str(path),
        "--session",
        session,
        "--bus",
        url,
        "--keys",
        str(keys),
    ]
    for d in who:
        command += ["--as", d]
    if host:
        command += ["--host", host]
    return subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _run_session(
    secured: SecuredBroker, tmp_path: Path, hosts: list[tuple[str, tuple[str, ...], str | None]]
) -> dict:
    """Chair and delegate hosts as separate processes, each with its own credentials."""
    session, ledger = _session(), tmp_path / "ledger.db"
    chair = _chair(TINY, session, secured.url("chair"), ledger)
    procs = [
        _delegates(TINY, session, secured.url(user), tmp_path / f"keys-{user}", *who, host=host)
        for user, who, host in hosts
    ]
    try:
        out, err = chair.communicate(timeout=180)
        assert chair.returncode == 0, (
            f"{err}\n--- broker log:\n{secured.log.read_text(errors='replace')[-3000:]}"
        )
        for proc in procs:
            assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        for proc in (chair, *procs):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    verify = subprocess.run(
        [*ACCORD, "verify", session, "--ledger", str(ledger)],
        check=False,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    return json.loads(out)


@pytest_mqtt
def test_whole_session_with_a_user_per_process(secured: SecuredBroker, tmp_path: Path) -> None:
    from accord.session_plan import load_plan
    from accord.simulate import simulate

    result = _run_session(secured, tmp_path, [(d, (d,), None) for d in DELEGATES])
    expected = simulate(load_plan(TINY)[0]).ended
    assert result["agreement"] == expected.agreement
    assert (result["reason"], result["round"]) == (expected.reason, expected.round)


@pytest_mqtt
def test_whole_session_with_a_group_user_for_a_shared_host(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    result = _run_session(
        secured,
        tmp_path,
        [("neighbours", ("neighbours",), None), ("duo", ("shops", "parents"), "duo")],
    )
    assert result["reason"]


@pytest_mqtt
def test_one_delegates_credentials_cannot_host_two(secured: SecuredBroker, tmp_path: Path) -> None:
    """Such a host announces on `presence/host-shops-2`, which shops may not write: the
    broker drops the announcement, and the chair gives up waiting, naming who is missing."""
    session, ledger = _session(), tmp_path / "ledger.db"
    chair = subprocess.Popen(
        [
            *ACCORD,
            "chair",
            str(TINY),
            "--session",
            session,
            "--bus",
            secured.url("chair"),
            "--ledger",
            str(ledger),
            "--wait",
            "5",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs = [
        _delegates(TINY, session, secured.url("neighbours"), tmp_path / "k1", "neighbours"),
        _delegates(TINY, session, secured.url("shops"), tmp_path / "k2", "shops", "parents"),
    ]
    try:
        _, err = chair.communicate(timeout=120)
    finally:
        for proc in (chair, *procs):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert chair.returncode != 0
    assert "no delegate process has announced: parents, shops" in " ".join(err.split())


@pytest_mqtt
def test_tls_broker_from_the_generated_configuration(tmp_path: Path) -> None:
    binary = _mosquitto()
    ca, cert, key = _certificates(tmp_path)
    written = write_broker_config(
        TINY,
        tmp_path / "b",
        port=free_port(),
        tls_cert=cert,
        tls_key=key,
        ca=ca,
        run_as=getpass.getuser(),
    )
    broker = _start(written, binary)
    try:
        s = _session()

        async def go() -> None:
            async with (
                open_bus(written.urls["chair"]) as chair,
                open_bus(written.urls["shops"]) as shops,
                chair.subscribe(outboxes_filter(s)) as outboxes,
            ):
                await shops.publish(delegate_outbox(s, "shops"), b"over tls")
                assert [m.payload for m in await take(outboxes)] == [b"over tls"]
            plain = written.urls["shops"].replace("mqtts://", "mqtt://").split("?")[0]
            with pytest.raises(BusUnavailable):  # no clear-text listener to fall back on
                await open_bus(plain + "?timeout=2").connect()

        asyncio.run(go())
    finally:
        broker.stop()


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def build(
        subject: str, issuer: str, public_key: Any, signer: Any, *extensions: tuple[Any, bool]
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build(
        "accord test CA",
        "accord test CA",
        ca_key.public_key(),
        ca_key,
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build(
        "127.0.0.1",
        "accord test CA",
        key.public_key(),
        ca_key,
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
    )
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths
