"""What only the MQTT transport does: URLs, sessions, reconnects, wills, TLS, credentials.

Against a real Mosquitto (see tests/mqtt_broker.py), never a mock: what matters here
is how the broker and the client behave together when connections and brokers die.
The shared contract (routing, retained messages, metadata, closing) is in
test_bus_contract.py and runs here too.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from accord.bus import Message, Subscription, open_bus
from accord.bus.mqtt import BusUnavailable, MqttBus, parse_mqtt_url, subscription_id
from tests.mqtt_broker import Broker, MosquittoBroker, find_mosquitto, free_port

pytestmark = pytest.mark.mqtt

TIMEOUT = 10.0


def root() -> str:
    return f"accord-test/{uuid.uuid4().hex[:12]}"


def client_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def take(sub: Subscription, n: int, timeout: float = TIMEOUT) -> list[Message]:
    async def collect() -> list[Message]:
        return [await anext(sub) for _ in range(n)]

    return await asyncio.wait_for(collect(), timeout)


async def nothing_more(sub: Subscription, wait: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(anext(sub), wait)
    except TimeoutError:
        return True
    return False


def mqtt(bus: object) -> MqttBus:
    assert isinstance(bus, MqttBus)
    return bus


# --- URLs and errors (no broker needed) -------------------------------------------------


def test_open_bus_reads_the_url() -> None:
    bus = mqtt(
        open_bus(
            "mqtt://chair:p%40ss%3Aword@broker.example:1884/"
            "?client_id=chair-1&session_expiry=60&keepalive=5&timeout=2.5"
        )
    )
    assert (bus.host, bus.port, bus.tls) == ("broker.example", 1884, False)
    assert bus.client_id == "chair-1"
    assert (bus.session_expiry_s, bus.keepalive_s, bus.timeout_s) == (60, 5, 2.5)
    assert bus._password == "p@ss:word" and bus._username == "chair"
    assert "p@ss" not in repr(bus) and "broker.example:1884" in repr(bus)
    secure = mqtt(open_bus("mqtts://[::1]?ca=/etc/ca.pem"))
    assert (secure.host, secure.port, secure.tls, secure._ca) == ("::1", 8883, True, "/etc/ca.pem")
    plain = mqtt(open_bus("MQTT://127.0.0.1"))
    assert plain.port == 1883 and plain.client_id.startswith("accord-")
    assert plain.client_id != mqtt(open_bus("mqtt://127.0.0.1")).client_id


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mqtt://h?clientid=x", "unknown option 'clientid'; known: client_id"),
        ("mqtt://h?client_id=a&client_id=b", "given twice"),
        ("mqtt://h?client_id=", "client_id is empty"),
        ("mqtt://h?ca=/x.pem", "'ca' needs TLS; use mqtts://"),
        ("mqtt://h?timeout=soon", "timeout='soon' must be a float"),
        ("mqtt://h?session_expiry=-1", "must be >= 0"),
        ("mqtt://h:99999", "Port out of range"),
        ("mqtt://h/topic", "no path"),
        ("mqtt://", "names no broker host"),
        ("mqtt:h", "mqtt://host"),
    ],
)
def test_bad_mqtt_urls_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        open_bus(url)
    assert problem in str(info.value) and repr(url) in str(info.value)


def test_subscription_ids_are_stable_and_valid() -> None:
    ids = {subscription_id(f"accord/v1/s{i}/#") for i in range(1000)}
    assert all(1 <= i <= 268_435_455 for i in ids) and len(ids) == 1000
    assert subscription_id("a/+") == subscription_id("a/+") != subscription_id("a/#")


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="ca=.*tls=True"):
        MqttBus("h", ca="/x.pem")
    with pytest.raises(Exception, match="wildcard"):
        MqttBus("h", will=Message("presence/+", b""))
    assert parse_mqtt_url("mqtts://u@h").password is None


async def test_unreachable_broker_names_host_port_and_what_to_check() -> None:
    port = free_port()  # nothing listens there
    bus = open_bus(f"mqtt://127.0.0.1:{port}")
    with pytest.raises(BusUnavailable) as info:
        await bus.connect()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "Check that a broker is running" in message
    assert isinstance(info.value, ConnectionError)


async def test_use_before_connecting_is_a_clear_error() -> None:
    bus = open_bus("mqtt://127.0.0.1:1")
    with pytest.raises(RuntimeError, match="not connected; use 'async with bus:'"):
        await bus.publish("a", b"x")
    with pytest.raises(RuntimeError, match="not connected"):
        async with bus.subscribe("a"):
            pass


# --- one connection -----------------------------------------------------------------------


async def test_socket_has_tcp_nodelay(mqtt_broker: Broker) -> None:
    async with open_bus(mqtt_broker.url) as bus:
        conn = mqtt(bus)._conn
        assert conn is not None
        sock = conn.client._client.socket()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_many_concurrent_publishes_respect_the_brokers_receive_maximum(
    mqtt_broker: Broker,
) -> None:
    """Mosquitto accepts 20 unacknowledged publishes by default; sending more is a
    protocol error that would cost the connection. 500 at once must all arrive, in order."""
    topic = f"{root()}/burst"
    async with open_bus(mqtt_broker.url) as bus, bus.subscribe(topic) as sub:
        await asyncio.gather(*(bus.publish(topic, str(i).encode()) for i in range(500)))
        got = [int(m.payload) for m in await take(sub, 500)]
        assert got == list(range(500))
        assert mqtt(bus).reconnects == 0 and mqtt(bus).published == 500


async def test_message_expiry_drops_what_was_not_delivered_in_time(mqtt_broker: Broker) -> None:
    topic, me = f"{root()}/expiring", client_id()
    async with open_bus(mqtt_broker.url_with(client_id=me)) as away:
        await away.subscribe(topic).__aenter__()  # left open: the broker keeps it
    async with open_bus(mqtt_broker.url) as publisher:
        await mqtt(publisher).publish(topic, b"stale soon", expiry_s=1)
        await mqtt(publisher).publish(topic, b"keeps")
        with pytest.raises(ValueError, match="positive"):
            await mqtt(publisher).publish(topic, b"x", expiry_s=0)
    await asyncio.sleep(2.2)
    async with open_bus(mqtt_broker.url_with(client_id=me)) as back, back.subscribe(topic) as sub:
        assert [m.payload for m in await take(sub, 1)] == [b"keeps"]
        assert await nothing_more(sub)


# --- persistent sessions ------------------------------------------------------------------


async def test_a_client_that_comes_back_gets_what_was_published_while_it_was_away(
    mqtt_broker: Broker,
) -> None:
    topic, me = f"{root()}/inbox", client_id()
    url = mqtt_broker.url_with(client_id=me)
    bus = open_bus(url)
    await bus.connect()
    sub = bus.subscribe(topic)
    await sub.__aenter__()
    await bus.close()  # the subscription is still open: the broker keeps it and queues
    async with open_bus(mqtt_broker.url) as publisher:
        for i in range(50):
            await publisher.publish(topic, str(i).encode(), properties={"i": str(i)})
    async with open_bus(url) as back, back.subscribe(topic) as again:
        got = await take(again, 50)
        assert [int(m.payload) for m in got] == list(range(50))
        assert [m.properties["i"] for m in got] == [str(i) for i in range(50)]
        await mqtt_broker_publish(mqtt_broker, topic, b"live")
        assert [m.payload for m in await take(again, 1)] == [b"live"]
        assert await nothing_more(again)


async def mqtt_broker_publish(broker: Broker, topic: str, payload: bytes) -> None:
    async with open_bus(broker.url) as publisher:
        await publisher.publish(topic, payload)


async def test_queued_messages_wait_unclaimed_until_their_filter_is_subscribed(
    mqtt_broker: Broker,
) -> None:
    """After a restart the broker delivers at once, before the process has subscribed
    again; each message must reach the subscription it was queued for, not be lost."""
    base, me = root(), client_id()
    url = mqtt_broker.url_with(client_id=me)
    async with open_bus(url) as first:
        for f in ("a/+", "b/+"):
            await first.subscribe(f"{base}/{f}").__aenter__()
    async with open_bus(mqtt_broker.url) as publisher:
        for topic in ("a/1", "b/1", "a/2"):
            await publisher.publish(f"{base}/{topic}", topic.encode())
    async with open_bus(url) as back:
        async with back.subscribe(f"{base}/b/+") as b:
            assert [m.payload for m in await take(b, 1)] == [b"b/1"]
            assert await nothing_more(b)
            assert mqtt(back).unclaimed == 2
            async with back.subscribe(f"{base}/a/+") as a:
                assert [m.payload for m in await take(a, 2)] == [b"a/1", b"a/2"]
            assert mqtt(back).unclaimed == 0


async def test_leaving_a_subscription_means_nothing_is_queued_for_it(mqtt_broker: Broker) -> None:
    topic, me = f"{root()}/left", client_id()
    url = mqtt_broker.url_with(client_id=me)
    async with open_bus(url) as bus, bus.subscribe(topic):
        pass  # left before closing: unsubscribed at the broker
    await mqtt_broker_publish(mqtt_broker, topic, b"nobody wants this")
    async with open_bus(url) as back, back.subscribe(topic) as sub:
        assert await nothing_more(sub)
        assert mqtt(back).unclaimed == 0


# --- connections that drop ----------------------------------------------------------------


async def test_a_dropped_connection_reconnects_and_loses_nothing(mqtt_broker: Broker) -> None:
    topic = f"{root()}/drop"
    bus = MqttBus.from_url(
        mqtt_broker.url_with(client_id=client_id()), reconnect_min_s=0.5, reconnect_max_s=0.5
    )
    async with bus, bus.subscribe(topic) as sub, open_bus(mqtt_broker.url) as publisher:
        await publisher.publish(topic, b"before")
        assert [m.payload for m in await take(sub, 1)] == [b"before"]
        conn = bus._conn
        assert conn is not None
        conn.client._client.socket().shutdown(socket.SHUT_RDWR)  # the network goes away
        await asyncio.wait_for(conn.lost, TIMEOUT)
        assert not bus.connected
        for i in range(5):  # while it is away: the broker queues them for its session
            await publisher.publish(topic, f"away {i}".encode())
        got = [m.payload for m in await take(sub, 5)]
        assert got == [f"away {i}".encode() for i in range(5)]
        assert bus.connected and bus.reconnects == 1
        await bus.publish(topic, b"after")
        assert [m.payload for m in await take(sub, 1)] == [b"after"]


async def test_broker_restart_mid_stream(restartable_broker: MosquittoBroker) -> None:
    """Subscriber and publisher both reconnect; a publish made while the broker is down
    waits and goes through; a message published after the restart arrives."""
    broker, topic = restartable_broker, f"{root()}/stream"
    subscriber = MqttBus.from_url(broker.url_with(client_id=client_id()), reconnect_max_s=0.2)
    publisher = MqttBus.from_url(broker.url, reconnect_max_s=0.2)
    async with subscriber, publisher, subscriber.subscribe(topic) as sub:
        for i in range(10):
            await publisher.publish(topic, f"{i}".encode())
        await asyncio.to_thread(broker.stop)
        during = asyncio.create_task(publisher.publish(topic, b"during"))
        await asyncio.sleep(0.5)
        assert not during.done() and not publisher.connected
        await asyncio.to_thread(broker.start)
        await asyncio.wait_for(during, TIMEOUT)
        await publisher.publish(topic, b"after")
        seen: list[bytes] = []
        while b"after" not in seen:  # at least once: duplicates allowed, loss is not
            seen.extend(m.payload for m in await take(sub, 1))
        assert [p for p in dict.fromkeys(seen)] == [f"{i}".encode() for i in range(10)] + [
            b"during",
            b"after",
        ]
        assert subscriber.reconnects == 1 and publisher.reconnects == 1


async def test_queued_messages_survive_a_broker_restart(
    restartable_broker: MosquittoBroker,
) -> None:
    broker, topic, me = restartable_broker, f"{root()}/kept", client_id()
    async with open_bus(broker.url_with(client_id=me)) as bus:
        await bus.subscribe(topic).__aenter__()
    async with open_bus(broker.url) as publisher:
        for i in range(5):
            await publisher.publish(topic, f"{i}".encode())
    await asyncio.to_thread(broker.restart)  # graceful: Mosquitto saves its state
    async with open_bus(broker.url_with(client_id=me)) as back, back.subscribe(topic) as sub:
        assert [m.payload for m in await take(sub, 5)] == [f"{i}".encode() for i in range(5)]


async def test_publish_gives_up_with_a_clear_error_when_the_broker_stays_down(
    restartable_broker: MosquittoBroker,
) -> None:
    bus = MqttBus.from_url(restartable_broker.url, timeout_s=0.5, reconnect_max_s=0.1)
    async with bus:
        await asyncio.to_thread(restartable_broker.stop)
        await asyncio.sleep(0.1)
        with pytest.raises(BusUnavailable, match=rf"127.0.0.1:{restartable_broker.port}.*0.5 s"):
            await bus.publish("a", b"x")
        await asyncio.to_thread(restartable_broker.start)
        await asyncio.wait_for(_until(lambda: bus.connected), TIMEOUT)
        await bus.publish("a", b"x")


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.02)


# --- wills --------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from accord.bus import Message
from accord.bus.mqtt import MqttBus

async def main() -> None:
    url, topic = sys.argv[1], sys.argv[2]
    async with MqttBus.from_url(url, will=Message(topic, b"", retain=True)) as bus:
        await bus.publish(topic, b"online", retain=True)
        print("ready", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_will_clears_presence_when_a_client_dies(mqtt_broker: Broker) -> None:
    presence = f"{root()}/presence/alice"
    async with open_bus(mqtt_broker.url) as chair, chair.subscribe(presence) as sub:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, mqtt_broker.url, presence],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
            assert line == b"ready\n", child.stderr.read() if child.stderr else b""
            assert [m.payload for m in await take(sub, 1)] == [b"online"]
            child.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the will
            [will] = await take(sub, 1)
            assert (will.topic, will.payload) == (presence, b"")
        finally:
            child.kill()
            child.wait()
    async with open_bus(mqtt_broker.url) as late, late.subscribe(presence) as again:
        assert await nothing_more(again)  # the retained presence was cleared


async def test_no_will_on_a_clean_close(mqtt_broker: Broker) -> None:
    presence = f"{root()}/presence/bob"
    async with open_bus(mqtt_broker.url) as chair, chair.subscribe(presence) as sub:
        async with open_bus(mqtt_broker.url, will=Message(presence, b"gone")) as bob:
            await bob.publish(presence, b"here")
        assert [m.payload for m in await take(sub, 1)] == [b"here"]
        assert await nothing_more(sub)


# --- credentials and TLS ------------------------------------------------------------------


@dataclass
class SecureBroker:
    broker: MosquittoBroker
    tls_port: int
    ca: Path


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("accord test CA"))
        .issuer_name(name("accord test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[SecureBroker]:
    """A second private Mosquitto: no anonymous clients, a plain and a TLS listener."""
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if find_mosquitto() is None or not Path(passwd).exists():
        pytest.skip("credentials and TLS tests need mosquitto and mosquitto_passwd installed")
    with tempfile.TemporaryDirectory(prefix="accord-mosquitto-secure-") as name:
        directory = Path(name)
        ca, cert, key = _certificates(directory)
        passwords = directory / "passwords"
        subprocess.run([passwd, "-c", "-b", str(passwords), "delegate", "s3cret:/@"], check=True)
        tls_port = free_port()
        broker = MosquittoBroker(
            directory,
            anonymous=False,
            extra_config=(
                f"password_file {passwords}\n"
                f"listener {tls_port} 127.0.0.1\n"
                f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
            ),
        )
        broker.start()
        try:
            yield SecureBroker(broker, tls_port, ca)
        finally:
            broker.stop()


async def test_credentials_from_the_url(secure_broker: SecureBroker) -> None:
    port, topic = secure_broker.broker.port, f"{root()}/auth"
    async with open_bus(f"mqtt://delegate:s3cret%3A%2F%40@127.0.0.1:{port}") as bus:
        async with bus.subscribe(topic) as sub:
            await bus.publish(topic, b"in")
            assert [m.payload for m in await take(sub, 1)] == [b"in"]
    for url in (f"mqtt://delegate:wrong@127.0.0.1:{port}", f"mqtt://127.0.0.1:{port}"):
        with pytest.raises(BusUnavailable) as info:
            await open_bus(url).connect()
        assert f"127.0.0.1:{port} refused the connection" in str(info.value)
        assert "check the user name and password" in str(info.value)


async def test_tls_with_a_ca_file(secure_broker: SecureBroker) -> None:
    port, topic = secure_broker.tls_port, f"{root()}/tls"
    url = f"mqtts://delegate:s3cret%3A%2F%40@127.0.0.1:{port}"
    async with open_bus(f"{url}?ca={secure_broker.ca}") as bus, bus.subscribe(topic) as sub:
        await bus.publish(topic, b"private")
        assert [m.payload for m in await take(sub, 1)] == [b"private"]
        assert mqtt(bus).tls
    with pytest.raises(BusUnavailable) as info:  # the system CAs do not know the test CA
        await open_bus(url).connect()
    assert f"127.0.0.1:{port}" in str(info.value) and "?ca=PATH" in str(info.value)


def test_paho_properties_share_tables_but_not_values() -> None:
    # accord.bus.mqtt makes paho's Properties share its constant lookup tables
    # (`_share_property_tables`); each instance must still hold its own values and
    # paho's checks must still apply.
    import accord.bus.mqtt  # noqa: F401 - applies the change
    from paho.mqtt.exception import MQTTException
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    first, second = Properties(PacketTypes.PUBLISH), Properties(PacketTypes.PUBLISH)
    first.SubscriptionIdentifier = 7
    first.UserProperty = [("k", "v")]
    assert first.names is second.names and second.isEmpty()
    assert not hasattr(second, "SubscriptionIdentifier")
    again = Properties(PacketTypes.PUBLISH)
    again.unpack(first.pack())
    assert again.SubscriptionIdentifier == [7] and again.UserProperty == [("k", "v")]
    with pytest.raises(MQTTException):
        Properties(PacketTypes.PUBACK).SubscriptionIdentifier = 7  # not a PUBACK property
