"""A locked-down Mosquitto for one session file: users, passwords and per-user ACLs.

`accord broker-config FILE -o DIR` (see `accord/cli_broker.py`) writes into DIR:

* `mosquitto.conf`: a listener (plain, or TLS when a certificate and key are given),
  `allow_anonymous false`, the password and ACL files below, `set_tcp_nodelay true`,
  persistence in DIR and a generous `max_queued_messages`;
* `passwords` (0600): one user per delegate id, one per `--group`, and `chair`, each
  with a fresh random password, hashed as Mosquitto 2's `mosquitto_passwd` does;
* `acl` (0644, no secrets in it): what each user may publish and read (below);
* `credentials/<user>.url` (0600 each, directory 0700) and `credentials.json` (0600):
  each user's password and the bus URL to hand to the machine that runs it.

The ACL follows the topic layout of `accord.bus.topics`, with `+` at the session level
so that one broker configuration serves every run of the session file::

    user        publishes (write)                         reads (read)
    chair       accord/v1/+/delegates/+/inbox             accord/v1/+/delegates/+/outbox
                accord/v1/+/broadcast                     accord/v1/+/presence/+
                accord/v1/+/chair/#                       accord/v1/+/chair/#
    delegate D  accord/v1/+/delegates/D/outbox            accord/v1/+/delegates/D/inbox
                accord/v1/+/presence/D                    accord/v1/+/broadcast
                                                          accord/v1/+/chair/#
    group G     the outboxes of its delegates             the inboxes of its delegates
    (D1,D2,..)  accord/v1/+/presence/G                    accord/v1/+/broadcast
                accord/v1/+/presence/host-D1-N            accord/v1/+/chair/#

A delegate host announces itself on `presence/{host}`, where the host is the delegate
id when it runs one delegate. A host running several delegates (`accord delegate --as
D1 --as D2`) is named `host-D1-2` unless `--host` says otherwise, and D1's credentials
cannot publish there; such a host uses a group user (`--group G=D1,D2`, then `accord
delegate --as D1 --as D2 --host G --bus <G's URL>`), or each delegate runs in its own
process with its own credentials.

The ACL decides who may *send* on a topic; it is not the proof of authorship: every
move is a signed envelope, and the chair checks that the signer is the delegate whose
outbox carried it. See docs/deployment.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from accord.session_file import load_session

__all__ = [
    "CHAIR_USER",
    "BrokerConfigError",
    "BrokerUser",
    "WrittenConfig",
    "acl_text",
    "bus_url",
    "hash_password",
    "parse_group",
    "plan_users",
    "verify_password",
    "write_broker_config",
]

CHAIR_USER = "chair"
"""The chair's broker user (and its actor id in the ledger)."""

PBKDF2_ITERATIONS = 101
"""Mosquitto 2.0's `mosquitto_passwd` default. The passwords are 192-bit random tokens,
so a slower KDF would add nothing against guessing; it would only cost the broker CPU
on every CONNECT."""

SALT_BYTES = 12
"""`mosquitto_passwd` 2.0 writes 12-byte salts; every 2.x broker reads them."""

MAX_QUEUED_MESSAGES = 100_000
"""Messages Mosquitto holds per offline persistent session (its default is 1000)."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


class BrokerConfigError(ValueError):
    """Bad options or a session file that cannot be turned into a broker configuration."""


@dataclass(frozen=True)
class BrokerUser:
    """One broker user: the chair, one delegate, or a group of delegates on one host."""

    name: str
    password: str = field(repr=False)
    delegates: tuple[str, ...] = ()  # empty for the chair
    presence: tuple[str, ...] = ()  # presence host names it may announce on

    @property
    def is_chair(self) -> bool:
        return self.name == CHAIR_USER

    @property
    def role(self) -> str:
        if self.is_chair:
            return "chair"
        return "delegate" if self.delegates == (self.name,) else "group"


@dataclass(frozen=True)
class WrittenConfig:
    """What `write_broker_config` wrote, for the CLI to report and the tests to use."""

    directory: Path
    config: Path
    passwords: Path
    acl: Path
    credentials_json: Path
    credential_urls: dict[str, Path]
    users: tuple[BrokerUser, ...]
    urls: dict[str, str] = field(repr=False)
    session_file: Path
    spec_id: str
    host: str
    port: int
    public_host: str
    tls: bool
    run_as: str | None
    notes: tuple[str, ...] = ()

    @property
    def start_command(self) -> str:
        return f"mosquitto -c {self.config}"


# --- password hashes ------------------------------------------------------------------


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """Mosquitto's `$7$` hash: PBKDF2-HMAC-SHA512, `$7$<iterations>$<b64 salt>$<b64 hash>`.

    The format Mosquitto 2 reads in a password file (`common/password_mosq.c`: type 7
    is `pw_sha512_pbkdf2`, encoded as `"$%d$%d$%s$%s"` of type, iterations, base64 salt
    of 12 or 64 bytes, base64 of the 64-byte derived key); the line is `user:<hash>`.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) not in (12, 64):
        raise ValueError(f"Mosquitto reads salts of 12 or 64 bytes, got {len(salt)}")
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches a `$7$` hash (as Mosquitto checks it)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        raise ValueError(f"not a Mosquitto $7$ (PBKDF2-SHA512) hash: {encoded[:20]!r}...")
    iterations, salt = int(parts[2]), base64.b64decode(parts[3], validate=True)
    expected = base64.b64decode(parts[4], validate=True)
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(key, expected)


def new_password() -> str:
    """192 random bits, URL-safe so it sits in a bus URL without escaping."""
    return secrets.token_urlsafe(24)


# --- users and ACLs -------------------------------------------------------------------


def parse_group(text: str) -> tuple[str, tuple[str, ...]]:
    """`NAME=D1,D2` -> ("NAME", ("D1", "D2"))."""
    name, sep, members = text.partition("=")
    name = name.strip()
    delegates = tuple(d.strip() for d in members.split(",") if d.strip())
    if not sep or not name or not delegates:
        raise BrokerConfigError(f"--group {text!r}: expected NAME=DELEGATE[,DELEGATE...]")
    return name, delegates


def default_host_name(delegates: Sequence[str]) -> str:
    """The presence host `accord delegate` picks without `--host` (accord.distributed)."""
    return delegates[0] if len(delegates) == 1 else f"host-{delegates[0]}-{len(delegates)}"


def plan_users(
    delegate_ids: Sequence[str],
    groups: Sequence[tuple[str, Sequence[str]]] = (),
) -> list[BrokerUser]:
    """The chair, one user per delegate, one per group; each with a fresh password."""
    problems: list[str] = []
    if CHAIR_USER in delegate_ids:
        problems.append(
            f"a constituency is named {CHAIR_USER!r}, the chair's user and actor id; rename it"
        )
    taken = {CHAIR_USER, *delegate_ids}
    group_users: list[BrokerUser] = []
    for name, members in groups:
        if not _ID.match(name):
            problems.append(
                f"--group {name!r}: a group name is 1 to 64 of A-Z a-z 0-9 _ . - "
                "(starting with a letter or digit), as delegate ids are"
            )
        elif name in taken:
            what = "the chair" if name == CHAIR_USER else "a delegate or another group"
            problems.append(f"--group {name!r}: the name is already used by {what}")
        unknown = [d for d in members if d not in delegate_ids]
        if unknown:
            problems.append(
                f"--group {name!r}: no delegate {', '.join(map(repr, unknown))} in the session "
                f"file (its delegates: {', '.join(delegate_ids)})"
            )
        if len(set(members)) != len(members):
            problems.append(f"--group {name!r}: a delegate is listed twice")
        taken.add(name)
        presence = tuple(dict.fromkeys([name, default_host_name(list(members))]))
        group_users.append(BrokerUser(name, new_password(), tuple(members), presence))
    if problems:
        raise BrokerConfigError("; ".join(problems))
    users = [BrokerUser(CHAIR_USER, new_password())]
    users += [BrokerUser(d, new_password(), (d,), (d,)) for d in delegate_ids]
    return users + group_users


def acl_lines(user: BrokerUser) -> list[str]:
    """The ACL block of one user (Mosquitto `acl_file` syntax)."""
    s = "accord/v1/+"
    if user.is_chair:
        return [
            f"user {user.name}",
            f"topic read {s}/delegates/+/outbox",
            f"topic read {s}/presence/+",
            f"topic write {s}/delegates/+/inbox",
            f"topic write {s}/broadcast",
            f"topic readwrite {s}/chair/#",
        ]
    lines = [f"user {user.name}"]
    lines += [f"topic write {s}/delegates/{d}/outbox" for d in user.delegates]
    lines += [f"topic write {s}/presence/{h}" for h in user.presence]
    lines += [f"topic read {s}/delegates/{d}/inbox" for d in user.delegates]
    lines += [f"topic read {s}/broadcast", f"topic read {s}/chair/#"]
    return lines


def acl_text(users: Sequence[BrokerUser], source: str = "") -> str:
    header = [
        "# Accord broker ACL, written by `accord broker-config`"
        + (f" for {source}" if source else "")
        + ".",
        "# `+` at the third level is the session id: one file serves every run of the",
        "# session file. Users not listed here (and anonymous clients) may do nothing.",
        "",
    ]
    blocks = []
    for user in users:
        comment = {
            "chair": "# the chair: reads outboxes and presence, writes inboxes, broadcast, chair/",
            "delegate": f"# delegate {user.name}",
            "group": f"# group {user.name}: delegates {', '.join(user.delegates)} on one host "
            f"(accord delegate --host {user.name} ...)",
        }[user.role]
        blocks.append("\n".join([comment, *acl_lines(user)]))
    return "\n".join(header) + "\n\n".join(blocks) + "\n"


def passwords_text(users: Sequence[BrokerUser]) -> str:
    return "".join(f"{u.name}:{hash_password(u.password)}\n" for u in users)


# --- URLs and the Mosquitto configuration ---------------------------------------------


def bus_url(
    user: str, password: str, host: str, port: int, *, tls: bool = False, ca: str | None = None
) -> str:
    """`mqtt[s]://user:password@host:port[?ca=PATH]`, as `accord.bus.mqtt` parses it."""
    netloc_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    scheme = "mqtts" if tls else "mqtt"
    url = f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{netloc_host}:{port}"
    if tls and ca:
        url += f"?ca={quote(ca, safe='/')}"
    return url


def config_text(
    directory: Path,
    *,
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    ca: Path | None,
    run_as: str | None,
    source: str,
    users: Sequence[BrokerUser],
) -> str:
    d = directory
    lines = [
        f"# Mosquitto 2 configuration for the Accord session file {source},",
        "# written by `accord broker-config`. Start the broker with:",
        f"#   mosquitto -c {d / 'mosquitto.conf'}",
        f"# Users: {', '.join(u.name for u in users)}. Topics and ACLs: docs/deployment.md.",
        "",
        "# Every client authenticates; what each may publish and read is in the ACL file.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {d / 'passwords'}",
        f"acl_file {d / 'acl'}",
        "",
        "# A QoS 1 round trip must not wait on Nagle's algorithm and delayed ACKs.",
        "set_tcp_nodelay true",
        "",
        "# Persistent sessions and queued QoS 1 messages survive a broker restart.",
        "persistence true",
        f"persistence_location {d}/",
        "persistence_file mosquitto.db",
        "autosave_interval 60",
        "# Messages held for a delegate whose host is away (Mosquitto's default is 1000).",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "",
    ]
    if run_as:
        lines += [
            "# Started as root, Mosquitto drops to this user; it must be able to read",
            "# the password and ACL files and to write the persistence file here.",
            f"user {run_as}",
            "",
        ]
    if tls_cert is not None and tls_key is not None:
        lines += [
            "# TLS only: passwords never cross the network in clear text.",
            f"listener {port} {host}",
            "protocol mqtt",
            f"certfile {tls_cert}",
            f"keyfile {tls_key}",
        ]
        if ca is not None:
            lines.append(f"cafile {ca}")
        lines += ["tls_version tlsv1.2", ""]
    else:
        lines += [
            "# Plain MQTT: passwords travel in clear text; keep it on a trusted network",
            "# or loopback, or use --tls-cert/--tls-key.",
            f"listener {port} {host}",
            "protocol mqtt",
            "",
        ]
    return "\n".join(lines)


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Create or replace `path` with `mode`, never readable by others even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _readable_file(option: str, value: Path | None) -> Path | None:
    if value is None:
        return None
    path = value.expanduser().resolve()
    if not path.is_file():
        raise BrokerConfigError(f"{option} {value}: no such file")
    if not os.access(path, os.R_OK):
        raise BrokerConfigError(f"{option} {value}: not readable")
    return path


def _check_host(option: str, host: str) -> None:
    if not host or any(c.isspace() for c in host) or "/" in host or "@" in host:
        raise BrokerConfigError(f"{option} {host!r} is not a host name or address")


def write_broker_config(
    session_file: Path,
    directory: Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    public_host: str | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    ca: Path | None = None,
    groups: Sequence[str] = (),
    run_as: str | None = None,
    force: bool = False,
) -> WrittenConfig:
    """Check everything, then write the broker's files into `directory` (see the module doc).

    Raises `BrokerConfigError` (or `SessionFileError` for a bad session file) before
    anything is written. Existing password or credential files are replaced only with
    `force`, because replacing them invalidates the credentials already handed out.
    """
    spec, _ = load_session(session_file)
    delegate_ids = [c.id for c in spec.constituencies]
    if (tls_cert is None) != (tls_key is None):
        raise BrokerConfigError("--tls-cert and --tls-key go together: give both, or neither")
    tls = tls_cert is not None
    if ca is not None and not tls:
        raise BrokerConfigError("--ca is for a TLS listener: give --tls-cert and --tls-key too")
    cert, key, ca_path = (
        _readable_file("--tls-cert", tls_cert),
        _readable_file("--tls-key", tls_key),
        _readable_file("--ca", ca),
    )
    if port is None:
        port = 8883 if tls else 1883
    if not 1 <= port <= 65535:
        raise BrokerConfigError(f"--port {port}: a TCP port is 1 to 65535")
    _check_host("--host", host)
    notes: list[str] = []
    if public_host is None:
        if host in _WILDCARD_HOSTS:
            public_host = socket.getfqdn()
            notes.append(
                f"the URLs name the broker as {public_host!r} (this machine's name; "
                "--public-host sets the name delegates' machines reach it by)"
            )
        else:
            public_host = host
    _check_host("--public-host", public_host)
    if run_as is not None and (not run_as or any(c.isspace() for c in run_as)):
        raise BrokerConfigError(f"--run-as {run_as!r} is not a user name")
    users = plan_users(delegate_ids, [parse_group(g) for g in groups])

    directory = directory.expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise BrokerConfigError(f"-o {directory}: exists and is not a directory")
    for option, path in (
        ("-o", directory),
        ("--tls-cert", cert),
        ("--tls-key", key),
        ("--ca", ca_path),
    ):
        if path is not None and any(c.isspace() for c in str(path)):
            raise BrokerConfigError(
                f"{option} {path}: mosquitto.conf cannot name a path with white space in it"
            )
    secret_files = [
        directory / "passwords",
        directory / "credentials.json",
        directory / "credentials",
    ]
    existing = [p for p in secret_files if p.exists()]
    if existing and not force:
        raise BrokerConfigError(
            f"{directory} already holds {', '.join(p.name for p in existing)}; new passwords "
            "would invalidate the credentials already handed out. Pass --force to replace them."
        )

    source = str(session_file)
    urls = {
        u.name: bus_url(
            u.name, u.password, public_host, port, tls=tls, ca=str(ca_path) if ca_path else None
        )
        for u in users
    }
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "mosquitto.conf"
    config.write_text(
        config_text(
            directory,
            host=host,
            port=port,
            tls_cert=cert,
            tls_key=key,
            ca=ca_path,
            run_as=run_as,
            source=source,
            users=users,
        )
    )
    passwords = directory / "passwords"
    _write_private(passwords, passwords_text(users))
    acl = directory / "acl"
    _write_private(acl, acl_text(users, source), 0o644)  # not secret: no passwords in it
    cred_dir = directory / "credentials"
    cred_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(cred_dir, 0o700)
    for stale in cred_dir.glob("*.url"):
        stale.unlink()
    credential_urls: dict[str, Path] = {}
    for user in users:
        path = cred_dir / f"{user.name}.url"
        _write_private(path, urls[user.name] + "\n")
        credential_urls[user.name] = path
    credentials_json = directory / "credentials.json"
    document = {
        "session_file": source,
        "session_spec": spec.id,
        "broker": {
            "host": public_host,
            "port": port,
            "tls": tls,
            "ca": str(ca_path) if ca_path else None,
        },
        "users": {
            u.name: {
                "role": u.role,
                "password": u.password,
                "url": urls[u.name],
                "delegates": list(u.delegates),
                "presence_hosts": list(u.presence),
            }
            for u in users
        },
    }
    _write_private(credentials_json, json.dumps(document, indent=2) + "\n")

    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if run_as is not None and as_root:
        # The broker reads these after dropping to `run_as`, and writes its database here.
        import pwd

        try:
            entry = pwd.getpwnam(run_as)
        except KeyError:
            notes.append(
                f"no local user {run_as!r}: create it, then chown {passwords}, {acl} "
                f"and {directory} to it"
            )
        else:
            for path in (directory, passwords, acl):
                os.chown(path, entry.pw_uid, entry.pw_gid)
    elif run_as is None and as_root:
        notes.append(
            "Mosquitto started as root drops to the user 'mosquitto', which must read "
            f"{passwords} (mode 0600) and write {directory}: chown both to it, or write "
            "the configuration again with --run-as USER"
        )
    return WrittenConfig(
        directory=directory,
        config=config,
        passwords=passwords,
        acl=acl,
        credentials_json=credentials_json,
        credential_urls=credential_urls,
        users=tuple(users),
        urls=urls,
        session_file=session_file,
        spec_id=spec.id,
        host=host,
        port=port,
        public_host=public_host,
        tls=tls,
        run_as=run_as,
        notes=tuple(notes),
    )
