"""The ``symphony-conformance`` command: run the conformance suite, list the requirements,
validate message files; render (``report``) and compare (``diff``) saved reports; check the suite
itself (``coverage``, ``selftest``). Gating a release on it: docs/ci.md.

Exit codes of ``run``: 0 when every MUST requirement of the selected profiles that the
implementation declares passed (or failed as the ``--expected-failures`` baseline expects), 1 when
one failed or errored (or the implementation declined all of its checks, a baseline entry is
stale, or the run was cut short by ``--max-fail``), 2 on a usage or harness error (bad ``--impl``,
an implementation that does not start, missing spec files, no tests collected).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__, _spec

EXIT_OK = 0
EXIT_NONCONFORMING = 1
EXIT_HARNESS = 2


class HarnessError(Exception):
    """A usage or harness problem: reported in one line, exit code 2."""


# ---------------------------------------------------------------- run


class _Capture:
    """Registered with the in-process pytest run: keeps its config so the results can be read."""

    symphony_cli = True  # tells the plugin not to print its own table

    def __init__(self) -> None:
        self.config: Any = None

    def pytest_configure(self, config: Any) -> None:
        self.config = config


@contextlib.contextmanager
def _isolated_environment() -> Iterator[None]:
    """No entry-point plugins (the user's pytest-randomly, -cov, ...) and no PYTEST_ADDOPTS; the
    plugins the run needs are named with ``-p``. xdist workers inherit this environment."""
    saved = {
        k: os.environ.get(k) for k in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    }
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ.pop("PYTEST_PLUGINS", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _selected_profiles(
    requested: Sequence[str], *, transport_only: bool = False, endpoint: bool = False
) -> list[str]:
    from ._adapters import driven_profiles

    testable = driven_profiles()
    if transport_only:  # --transport / --endpoint: checked by the profiles transport and security
        wire = ("transport", "security", "bus-node") if endpoint else ("transport", "security")
        if requested and not set(requested) <= set(wire):
            raise HarnessError(
                "--transport and --endpoint are checked by the profiles transport and security "
                "(and a bus node's --endpoint by bus-node): add --profile transport or --profile security"
            )
        return [p for p in wire if p in requested] if requested else ["transport"]
    if not requested:
        return testable
    out: list[str] = []
    for p in requested:
        if p not in _spec.profiles():
            raise HarnessError(f"--profile {p!r}: unknown profile; known: {', '.join(testable)}")
        if p not in testable:
            raise HarnessError(
                f"--profile {p!r}: this version of the harness does not drive that profile yet"
            )
        if p not in out:
            out.append(p)
    return out


def pytest_args(args: argparse.Namespace, profiles: Sequence[str], seed: int) -> list[str]:
    """The pytest command line of a run (isolated from the user's pytest configuration)."""
    from . import suite

    suite_dir = Path(suite.__file__).resolve().parent
    out = [
        "--pyargs",
        "symphony_conformance.suite",
        "-p",
        "symphony_conformance.plugin",
        "-p",
        "no:cacheprovider",
        "-c",
        os.devnull,  # no pytest.ini/pyproject/tox.ini of the current directory
        "--rootdir",
        str(suite_dir.parent),
        "--noconftest",  # no conftest.py of the user's project
        "-o",
        "console_output_style=progress",
        "--symphony-impl",
        args.impl,
        "--symphony-seed",
        str(seed),
        "--symphony-hypothesis-profile",
        args.hypothesis_profile,
        "--symphony-timeout",
        str(args.timeout),
        "-rN",  # the verdict table lists the failing cases (pytest's summary would repeat them)
        "--tb=long" if args.verbose else "--tb=short",
        "-v" if args.verbose else "-q",
    ]
    for p in profiles:
        out += ["--symphony-profile", p]
    if getattr(args, "transport", None):
        out += ["--symphony-transport", args.transport]
    if getattr(args, "endpoint", None):
        out += ["--symphony-endpoint", args.endpoint]
    if args.vectors:
        out += ["--symphony-vectors", str(args.vectors)]
    if args.keyword:
        out += ["-k", args.keyword]
    from ._gate import pytest_options

    out += pytest_options(args)
    if args.workers > 1:
        out += ["-p", "xdist.plugin", "-n", str(args.workers)]
    return out


def _preflight(impl_spec: str, timeout: float) -> dict[str, Any]:
    """Start the implementation once (import, exec and handshake), so that a bad ``--impl`` is a
    one-line harness error instead of every test erroring."""
    from ._adapters import ImplementationLoadError, load_implementation
    from ._impl import ImplBroken

    try:
        impl = load_implementation(impl_spec, timeout=timeout)
    except ImplementationLoadError as e:
        raise HarnessError(str(e)) from None
    try:
        info = impl.info
        return {
            "name": info.name,
            "version": info.version,
            "language": info.language,
            "spec_version": info.spec_version,
            **info.capabilities.to_dict(),
        }
    except ImplBroken as e:
        raise HarnessError(f"--impl {impl_spec!r}: the implementation did not start: {e}") from None
    finally:
        with contextlib.suppress(Exception):
            impl.close()


def _preflight_transport(args: argparse.Namespace) -> dict[str, Any]:
    """Load ``--transport`` / check ``--endpoint`` once, so a bad one is a one-line harness error;
    return what the run's header and report say about them."""
    from ._adapters import DEFAULT_IMPL, EndpointImplementation, ImplementationLoadError, load_transport_maker

    if args.transport and args.endpoint:
        raise HarnessError("--transport and --endpoint are exclusive: one transport under test at a time")
    if args.endpoint:
        if args.impl != DEFAULT_IMPL:
            raise HarnessError(
                "--endpoint and --impl are exclusive: the endpoint is the implementation under test"
            )
        try:
            EndpointImplementation(args.endpoint)
        except ImplementationLoadError as e:
            raise HarnessError(str(e)) from None
        if args.endpoint.partition(":")[0] in ("unix", "fifo"):
            from .transport_checks import RawWire

            try:
                RawWire(args.endpoint, timeout=5.0).close()
            except (OSError, ValueError) as e:
                raise HarnessError(f"--endpoint {args.endpoint!r}: cannot connect: {e}") from None
        return {"endpoint": args.endpoint}
    if args.transport:
        try:
            maker = load_transport_maker(args.transport)
        except ImplementationLoadError as e:
            raise HarnessError(str(e)) from None
        with contextlib.suppress(Exception):
            close = getattr(maker, "close", None)
            if callable(close):
                close()
        return {"transport": args.transport, "transport_name": maker.name}
    return {}


def _run(args: argparse.Namespace, out: TextIO) -> int:
    import pytest

    from ._hypothesis import UnknownProfileError, settings_for
    from ._vectors import VectorError, load_vectors

    if args.workers < 1:
        raise HarnessError("-n: expected a number of workers >= 1")
    from ._gate import finish_run, preflight

    preflight(args)
    try:
        settings_for(args.hypothesis_profile)
    except UnknownProfileError as e:
        raise HarnessError(f"--hypothesis-profile: {e}") from None
    plugged = _preflight_transport(args)
    profiles = _selected_profiles(args.profile, transport_only=bool(plugged), endpoint="endpoint" in plugged)
    try:
        _spec.requirements()
        vectors = load_vectors(Path(args.vectors) if args.vectors else None)
        _spec.message_schema()
    except (_spec.SpecError, VectorError, FileNotFoundError) as e:
        raise HarnessError(str(e)) from None
    if "endpoint" in plugged:
        from ._adapters import EndpointImplementation

        ep = EndpointImplementation(args.endpoint).info
        impl = {
            "name": ep.name,
            "version": ep.version,
            "language": ep.language,
            "spec_version": ep.spec_version,
            **ep.capabilities.to_dict(),
        }
    else:
        impl = _preflight(args.impl, args.timeout)
    impl.update(plugged)
    declared = [p for p in profiles if p in impl["profiles"]]
    if not declared:
        raise HarnessError(
            f"the implementation declares none of the selected profiles ({', '.join(profiles)}); "
            f"it declares: {', '.join(impl['profiles']) or 'none'}"
        )
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    who = f"{impl['name']} {impl['version']} ({impl['language']}), --impl {args.impl}"
    if "endpoint" in plugged:
        who = f"the server at {args.endpoint}"
    print(f"Symphony IPC conformance {__version__}: {who}", file=out)
    undeclared = [p for p in profiles if p not in declared]
    skipped_note = f" (not declared, skipped: {', '.join(undeclared)})" if undeclared else ""
    codecs = ", ".join(impl["codecs"]) or "none declared"
    print(f"profiles: {', '.join(declared)}{skipped_note}; codecs: {codecs}", file=out)
    if plugged:
        what = f"--endpoint {args.endpoint} (raw wire checks only)" if args.endpoint else ""
        what = what or f"--transport {args.transport} ({plugged['transport_name']}: in-process checks)"
        print(f"transport under test: {what}", file=out)
    n_vectors = sum(1 for v in vectors if v.driven or v.transport)
    print(f"{n_vectors} vectors; hypothesis profile {args.hypothesis_profile}; seed {seed}", file=out)
    out.flush()
    capture = _Capture()
    with _isolated_environment():
        rc = pytest.main(pytest_args(args, profiles, seed), plugins=[capture])
    sys.stdout.flush()
    if rc == pytest.ExitCode.NO_TESTS_COLLECTED:
        raise HarnessError("no conformance test was collected (check -k and --profile)")
    from .plugin import results_collector

    # --max-fail under xdist stops the run as an interruption (pytest exit code 2).
    stopped = capture.config is not None and results_collector(capture.config).cut_short is not None
    completed = (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    if capture.config is None or not (rc in completed or (stopped and rc == pytest.ExitCode.INTERRUPTED)):
        raise HarnessError(
            f"the test run did not complete (pytest exit code {int(rc)}); see the output above"
        )
    return finish_run(
        args,
        capture.config,
        profiles=profiles,
        declared=declared,
        implementation=impl,
        seed=seed,
        vectors=vectors,
        out=out,
    )


# ---------------------------------------------------------------- list


def _list(args: argparse.Namespace, out: TextIO) -> int:
    from ._adapters import driven_profiles
    from ._vectors import VectorError, load_vectors, vector_counts

    try:
        reqs = _spec.requirements()
        counts = vector_counts(load_vectors(Path(args.vectors) if args.vectors else None))
    except (_spec.SpecError, VectorError, FileNotFoundError) as e:
        raise HarnessError(str(e)) from None
    testable = driven_profiles()
    wanted = args.profile or _spec.profiles()
    for p in wanted:
        if p not in _spec.profiles():
            raise HarnessError(f"--profile {p!r}: unknown profile; known: {', '.join(_spec.profiles())}")
    print("profiles:", file=out)
    for p in wanted:
        of = [r for r in reqs.values() if r.profile == p]
        levels = ", ".join(f"{sum(1 for r in of if r.level == lv)} {lv}" for lv in ("MUST", "SHOULD", "MAY"))
        note = "" if p in testable else "  (not driven by this harness version)"
        n_vec = sum(counts.get(r.id, 0) for r in of)
        print(f"  {p:<14} {len(of):>3} requirements ({levels}); {n_vec} vector references{note}", file=out)
    print("", file=out)
    print(f"{'requirement':<12} {'level':<7} {'profile':<14} {'vectors':>7}  statement", file=out)
    for r in reqs.values():
        if r.profile in wanted:
            statement = r.statement if len(r.statement) <= 90 else r.statement[:87] + "..."
            print(f"{r.id:<12} {r.level:<7} {r.profile:<14} {counts.get(r.id, 0):>7}  {statement}", file=out)
    return EXIT_OK


# ---------------------------------------------------------------- validate


def _codec_of(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix in (".msgpack", ".mp", ".mpk"):
        return "msgpack"
    if suffix == ".json":
        return "json"
    stripped = data.lstrip(b" \t\r\n")
    if stripped.startswith((b"{", b"[", b'"', b"\xef\xbb\xbf")):
        return "json"
    return "msgpack" if data[:1] in (b"\x93", b"\xdc", b"\xdd") else "json"


def validate_bytes(data: bytes, codec: str) -> list[str]:
    """What is wrong with one encoded message: schema errors (JSON pointer: message) and the
    reference decoder's verdict (code: message); empty when it is valid and canonical."""
    import symphony_ipc as ref
    from symphony_ipc._codec import message_to_data

    from .suite._support import parse_json_strict, schema_errors

    problems: list[str] = []
    if codec == "json":
        try:
            doc = parse_json_strict(data)
        except UnicodeDecodeError as e:
            problems.append(f"not UTF-8: byte {e.start}: {e.reason}")
        except json.JSONDecodeError as e:
            problems.append(f"not JSON: line {e.lineno} column {e.colno}: {e.msg}")
        except ValueError as e:
            problems.append(f"not canonical JSON text: {e}")
        else:
            problems += [f"schema: {p}" for p in schema_errors(doc)]
    try:
        msg = ref.decode(data, "msgpack" if codec == "msgpack" else "json")
    except ref.ProtocolError as e:
        detail = f" {json.dumps(e.details, default=str)}" if e.details else ""
        problems.append(f"reference decoder: {e.code.value}: {e.message}{detail}")
    else:
        if codec == "msgpack":
            problems += [f"schema (as JSON data): {p}" for p in schema_errors(message_to_data(msg))]
            if ref.encode(msg, "msgpack") != bytes(data):
                problems.append(
                    "not canonical: the reference encodes this message to other bytes (COD-101, COD-102)"
                )
    return problems


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    try:
        _spec.message_schema()
    except _spec.SpecError as e:
        raise HarnessError(str(e)) from None
    bad = 0
    for name in args.files:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise HarnessError(f"{name}: cannot read: {e.strerror or e}") from None
        codec = args.codec or _codec_of(path, data)
        problems = validate_bytes(data, codec)
        if problems:
            bad += 1
            print(f"{name}: INVALID ({codec})", file=out)
            for p in problems:
                print(f"  {p}", file=out)
        else:
            print(f"{name}: OK ({codec})", file=out)
    return EXIT_NONCONFORMING if bad else EXIT_OK


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    from ._hypothesis import DEFAULT_PROFILE, PROFILES

    parser = argparse.ArgumentParser(
        prog="symphony-conformance",
        description="The Symphony IPC conformance harness: run the suite against any implementation.",
    )
    parser.add_argument("--version", action="version", version=f"symphony-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the conformance suite and print the verdict per requirement")
    run.add_argument(
        "--impl",
        default="reference",
        metavar="SPEC",
        help="reference (default) | python:package.module:factory | exec:COMMAND ARGS...",
    )
    run.add_argument(
        "--profile", action="append", default=[], metavar="P", help="only this profile (repeatable)"
    )
    run.add_argument(
        "-n", dest="workers", type=int, default=1, metavar="N", help="parallel workers (pytest-xdist)"
    )
    run.add_argument("--seed", type=int, default=None, help="seed of the property tests (default: random)")
    run.add_argument(
        "--hypothesis-profile",
        default=DEFAULT_PROFILE,
        metavar="NAME",
        help=f"property test effort: {', '.join(f'{k} ({v} examples)' for k, v in PROFILES.items())}",
    )
    run.add_argument(
        "--vectors", default=None, metavar="DIR", help="golden vectors directory (default: bundled)"
    )
    run.add_argument(
        "-k", dest="keyword", default=None, metavar="EXPR", help="only tests matching EXPR (pytest -k)"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="one line per test, long tracebacks")
    run.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="per-operation timeout for exec:"
    )
    from ._gate import add_run_options

    add_run_options(run)
    run.add_argument(
        "--transport",
        default=None,
        metavar="SPEC",
        help="profile transport: run the in-process transport checks on the maker "
        "python:package.module:factory (or python:path/file.py:factory) returns",
    )
    run.add_argument(
        "--endpoint",
        default=None,
        metavar="ADDRESS",
        help="profile transport: check the server running at ADDRESS (unix:PATH, fifo:DIR, "
        "'stdio:COMMAND ...') on the wire alone (with --profile bus-node: a bus node's address)",
    )

    lst = sub.add_parser("list", help="list the profiles and requirements (with their vector counts)")
    lst.add_argument(
        "--profile", action="append", default=[], metavar="P", help="only this profile (repeatable)"
    )
    lst.add_argument(
        "--vectors", default=None, metavar="DIR", help="golden vectors directory (default: bundled)"
    )

    val = sub.add_parser("validate", help="check message files against the schema and the reference decoder")
    val.add_argument("files", nargs="+", metavar="FILE")
    val.add_argument(
        "--codec", choices=("json", "msgpack"), default=None, help="default: by extension, or sniffed"
    )

    rep = sub.add_parser("report", help="render a saved JSON report (run --report-json) again")
    rep.add_argument("file", metavar="FILE.json")
    rep.add_argument("--format", choices=("text", "markdown"), default="text", help="default: text")

    dif = sub.add_parser(
        "diff", help="compare two JSON reports: what regressed, improved, changed (exit 1 on a regression)"
    )
    dif.add_argument("old", metavar="OLD.json")
    dif.add_argument("new", metavar="NEW.json")

    from ._coverage import add_coverage_options
    from ._selftest import add_selftest_options

    add_coverage_options(
        sub.add_parser("coverage", help="requirements with tests and vectors (exit 1 on a gap)")
    )
    add_selftest_options(
        sub.add_parser("selftest", help="run the suite against every mutant: each must be caught")
    )
    from ._latency import add_latency_options

    add_latency_options(
        sub.add_parser("latency", help="time message round trips against an implementation's endpoint")
    )
    return parser


def _report(args: argparse.Namespace, out: TextIO) -> int:
    from ._gate import report_command

    return report_command(args, out)


def _diff(args: argparse.Namespace, out: TextIO) -> int:
    from ._gate import diff_command

    return diff_command(args, out)


def _coverage(args: argparse.Namespace, out: TextIO) -> int:
    from ._coverage import coverage_command

    return coverage_command(args, out)


def _selftest(args: argparse.Namespace, out: TextIO) -> int:
    from ._selftest import selftest_command

    return selftest_command(args, out)


def _latency(args: argparse.Namespace, out: TextIO) -> int:
    from ._latency import latency_command

    return latency_command(args, out)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code) if isinstance(e.code, int) else EXIT_HARNESS
    handlers = {
        "run": _run,
        "list": _list,
        "validate": _validate,
        "report": _report,
        "diff": _diff,
        "coverage": _coverage,
        "selftest": _selftest,
        "latency": _latency,
    }
    try:
        return handlers[args.command](args, stream)
    except HarnessError as e:
        print(f"symphony-conformance: error: {e}", file=sys.stderr)
        return EXIT_HARNESS


if __name__ == "__main__":
    sys.exit(main())
