"""Who may connect, without a listener: peer credentials from the kernel, the allow list, safe
directories, secret files (spec/security.md SEC-001..SEC-006)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator

import pytest

from symphony_ipc.security import (
    PeerCredentials,
    SecurityPolicy,
    UnsafeDirectory,
    check_directory,
    own_credentials,
    peer_credentials_of_fd,
    read_secret_file,
)

ROOT = os.geteuid() == 0


@pytest.fixture
def tmpdir_short() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-sec-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_unix_socket_credentials_are_the_connecting_process() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        creds = peer_credentials_of_fd(a.fileno())
        assert creds == PeerCredentials(os.getpid(), os.geteuid(), os.getegid(), "SO_PEERCRED")
        assert a.fileno() >= 0  # the descriptor is still the caller's
        a.sendall(b"x")
        assert b.recv(1) == b"x"


def test_pipe_credentials_are_its_owner() -> None:
    r, w = os.pipe()
    try:
        creds = peer_credentials_of_fd(r)
        assert creds is not None
        assert (creds.pid, creds.uid, creds.source) == (None, os.geteuid(), "fifo-owner")
    finally:
        os.close(r)
        os.close(w)


def test_tcp_and_files_have_no_credentials(tmpdir_short: str) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        with socket.create_connection(srv.getsockname()) as c:
            conn, _ = srv.accept()
            with conn:
                assert peer_credentials_of_fd(conn.fileno()) is None
                assert peer_credentials_of_fd(c.fileno()) is None
    with open(os.path.join(tmpdir_short, "f"), "wb") as f:
        assert peer_credentials_of_fd(f.fileno()) is None
    assert peer_credentials_of_fd(99999) is None  # not open


def test_default_policy_admits_our_user_only() -> None:
    p = SecurityPolicy()
    me = own_credentials()
    assert p.refusal(me) is None
    other = PeerCredentials(1, me.uid + 1, me.gid + 1, "SO_PEERCRED")
    why = p.refusal(other)
    assert why is not None
    assert "allow list" in why
    assert f"uid {me.uid + 1}" in why
    assert SecurityPolicy(allow_gids=frozenset({me.gid + 1})).refusal(other) is None
    assert SecurityPolicy(allow_uids=None).refusal(other) is None
    assert SecurityPolicy(allow_uids=frozenset({me.uid + 1})).refusal(me) is not None


def test_unverified_peers_need_a_secret_or_an_explicit_yes() -> None:
    assert "SEC-006" in (SecurityPolicy().refusal(None) or "")
    assert SecurityPolicy(allow_unverified=True).refusal(None) is None
    assert SecurityPolicy(secret=b"s" * 16).refusal(None) is None
    assert SecurityPolicy.open().refusal(None) is None


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SecurityPolicy(secret=b"short")
    with pytest.raises(ValueError, match="max_connections"):
        SecurityPolicy(max_connections=0)
    with pytest.raises(ValueError, match="mode"):
        SecurityPolicy(socket_mode=0o1000)


def test_safe_directories_pass(tmpdir_short: str) -> None:
    check_directory(tmpdir_short)  # 0700, ours, under /tmp (root's, sticky)
    sticky = os.path.join(tmpdir_short, "sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    check_directory(sticky)
    readable = os.path.join(tmpdir_short, "r")
    os.mkdir(readable, 0o755)
    check_directory(readable)


@pytest.mark.parametrize(("mode", "who"), [(0o777, "group and others"), (0o770, "group"), (0o707, "others")])
def test_writable_directory_without_sticky_bit_is_refused(tmpdir_short: str, mode: int, who: str) -> None:
    d = os.path.join(tmpdir_short, "open")
    os.mkdir(d)
    os.chmod(d, mode)
    with pytest.raises(UnsafeDirectory, match=f"writable by {who}"):
        check_directory(d)
    inner = os.path.join(d, "inner")  # an unsafe ancestor taints its descendants
    os.mkdir(inner, 0o700)
    with pytest.raises(UnsafeDirectory, match="open"):
        check_directory(inner)


def test_symlinked_directory_is_checked_at_its_target(tmpdir_short: str) -> None:
    target = os.path.join(tmpdir_short, "target")
    os.mkdir(target)
    os.chmod(target, 0o777)
    link = os.path.join(tmpdir_short, "link")
    os.symlink(target, link)
    with pytest.raises(UnsafeDirectory, match="writable by group and others"):
        check_directory(link)


def test_missing_directory_is_refused(tmpdir_short: str) -> None:
    with pytest.raises(UnsafeDirectory, match="No such file"):
        check_directory(os.path.join(tmpdir_short, "absent"))


@pytest.mark.skipif(not ROOT, reason="chown to another user needs root")
def test_directory_of_another_user_is_refused(tmpdir_short: str) -> None:
    d = os.path.join(tmpdir_short, "theirs")
    os.mkdir(d, 0o755)
    os.chown(d, 65534, 65534)
    with pytest.raises(UnsafeDirectory, match="owned by uid 65534"):
        check_directory(d)


def test_secret_file_must_be_private(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "secret")
    with open(path, "wb") as f:
        f.write(b"  0123456789abcdef0123  \n")
    os.chmod(path, 0o600)
    assert read_secret_file(path) == b"0123456789abcdef0123"
    os.chmod(path, 0o640)
    with pytest.raises(PermissionError, match="owner only"):
        read_secret_file(path)
    os.chmod(path, 0o600)
    with open(path, "wb") as f:
        f.write(b"short")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        read_secret_file(path)
    link = os.path.join(tmpdir_short, "link")
    os.symlink(path, link)
    with pytest.raises(OSError, match="symbolic links"):  # O_NOFOLLOW: a planted symlink is not followed
        read_secret_file(link)
