"""Connecting to Temporal with our data converter, and registering what the server must know.

Where Temporal is and how to reach it is the SDK's own environment configuration
(`temporalio.envconfig`): `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`,
and profiles in the TOML file `TEMPORAL_CONFIG_FILE` (picked by `TEMPORAL_PROFILE`), the same names
the `temporal` CLI and every other SDK read, so one set of variables serves the service and the
operator's shell. `POSTMORTEM_TEMPORAL_ADDRESS` / `_NAMESPACE`, when set, win over them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from postmortem.config import TemporalSettings
from postmortem.workflows.identity import STATUS_ATTRIBUTE

DEFAULT_ADDRESS = "127.0.0.1:7233"


class TemporalConfigError(ValueError):
    """The Temporal connection settings do not make a connection (a missing file, an unknown profile …)."""


@dataclass(frozen=True)
class TemporalConnection:
    """Everything `Client.connect` needs besides our converter: where, which namespace, and the credentials."""

    address: str
    namespace: str = "default"
    api_key: str | None = field(default=None, repr=False)
    tls: bool | TLSConfig = field(default=False, repr=False)
    rpc_metadata: Mapping[str, str] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """For logs and errors: where and how, never a secret."""
        how = []
        if self.tls is not False:
            how.append("mTLS" if isinstance(self.tls, TLSConfig) and self.tls.client_cert else "TLS")
        if self.api_key:
            how.append("API key")
        return f"{self.address} (namespace {self.namespace}{''.join(', ' + part for part in how)})"


def resolve_connection(
    settings: TemporalSettings,
    environ: Mapping[str, str] | None = None,
    *,
    default_address: str | None = DEFAULT_ADDRESS,
) -> TemporalConnection | None:
    """The connection the settings and the environment describe; None when they name no address and
    `default_address` is None (`postmortem dev` then starts its embedded server).

    The SDK reads the environment and the profile file (`TEMPORAL_*`); our own address and namespace,
    when set, override what it found.
    """
    env = dict(os.environ if environ is None else environ)
    config_file = env.get("TEMPORAL_CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        raise TemporalConfigError(f"TEMPORAL_CONFIG_FILE={config_file}: no such file")
    try:
        profile = ClientConfigProfile.load(override_env_vars=env)
        options = profile.to_client_connect_config()
    except Exception as exc:  # the bridge's ConfigError, an unreadable certificate file …
        raise TemporalConfigError(f"the Temporal client configuration (TEMPORAL_*) is invalid: {exc}") from exc
    address = settings.address or options.get("target_host") or default_address
    if address is None:
        return None
    namespace = (
        settings.namespace if "namespace" in settings.model_fields_set else options.get("namespace") or "default"
    )
    return TemporalConnection(
        address=address,
        namespace=namespace,
        api_key=options.get("api_key"),
        tls=options.get("tls", False),
        rpc_metadata=dict(options.get("rpc_metadata", {})),
    )


def without_temporal_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment less the SDK's `TEMPORAL_*` connection variables: for a process that talks to the
    embedded dev server, which speaks plain gRPC whatever the operator's shell says about another server."""
    return {name: value for name, value in environ.items() if not name.upper().startswith("TEMPORAL_")}


async def connect(
    target: str | TemporalConnection,
    namespace: str = "default",
    *,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """A client with our data converter; a bare address means plain gRPC (the dev server, a test's server).
    `runtime`: the worker's, when it serves metrics (postmortem.app.worker_telemetry)."""
    connection = target if isinstance(target, TemporalConnection) else TemporalConnection(target, namespace)
    return await Client.connect(
        connection.address,
        namespace=connection.namespace,
        api_key=connection.api_key,
        tls=connection.tls,
        rpc_metadata=connection.rpc_metadata,
        data_converter=pydantic_data_converter,
        interceptors=list(interceptors),
        runtime=runtime,
    )


class SearchAttributeMissing(RuntimeError):
    """The namespace lacks our search attribute and our credentials may not add it: an operator must."""


def search_attribute_instructions(namespace: str) -> str:
    name = STATUS_ATTRIBUTE.name
    return (
        f"register the search attribute {name} (type Keyword) in namespace {namespace!r} once, then start again: "
        f"on Temporal Cloud `tcld namespace search-attributes add --namespace {namespace} "
        f'--search-attribute "{name}=Keyword"` (or the Cloud UI: Namespaces › {namespace} › Custom Search '
        f"Attributes › add {name}, Keyword); on a self-hosted server `temporal operator search-attribute "
        f"create --namespace {namespace} --name {name} --type Keyword`"
    )


async def ensure_search_attributes(client: Client) -> None:
    """A server that does not know our search attribute fails every workflow task: register it first.

    Where our credentials may not register it (Temporal Cloud's API keys and certificates cannot call
    the operator service's add; a self-hosted authorizer may refuse it) it may still be there, added by
    an operator: then all is well. If it is not, SearchAttributeMissing says what to run, and where.
    """
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={STATUS_ATTRIBUTE.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
            )
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS or "already" in exc.message.lower():
            return
        if exc.status not in (
            RPCStatusCode.PERMISSION_DENIED,
            RPCStatusCode.UNAUTHENTICATED,
            RPCStatusCode.UNIMPLEMENTED,
        ):
            raise
        if await _registered(client):
            return
        raise SearchAttributeMissing(
            f"Temporal refused to register our search attribute ({exc.status.name}: {exc.message}); "
            + search_attribute_instructions(client.namespace)
        ) from exc


async def _registered(client: Client) -> bool:
    """Whether the namespace has our attribute as a Keyword (False when even the listing is refused)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError:
        return False
    return listed.custom_attributes.get(STATUS_ATTRIBUTE.name) == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
