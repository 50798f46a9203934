"""A workflow's sandbox re-runs only the workflow's own module, not its helpers.

Temporal's sandbox imports the workflow's module afresh for every run it starts (and every replay
after the run left the worker's cache); every module that module imports and does not pass through
is executed again too, and held by that run. `from postmortem.workflows import drafting` is one
such import: the package is already in the sandbox (it holds the workflow's module), so Python
loads the submodule through the package and the sandbox's pass-through is never asked. Here that
cost a per-run compile of four helpers: 24 ms of CPU per workflow started on a machine with
`PYTHONDONTWRITEBYTECODE`, about a fifth of a drafted report, and memory per cached run.

The sandbox's own instance is built as the worker builds it (`SandboxedWorkflowRunner`); which
modules it executed itself is read from its importer (a private attribute of the pinned SDK).
"""

from __future__ import annotations

import asyncio
import sys

import pytest
import temporalio.converter
import temporalio.workflow
from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.worker import WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _fake_info

from postmortem.app.worker import WORKFLOWS


def _reexecuted(cls: type) -> set[str]:
    """Our modules the sandbox executed itself (not the host's, passed through) for one run of `cls`."""

    async def build() -> set[str]:
        converter = temporalio.converter.DataConverter.default
        details = WorkflowInstanceDetails(
            payload_converter_factory=converter._new_payload_converter,
            failure_converter_class=converter.failure_converter_class,
            interceptor_classes=[],
            defn=temporalio.workflow._Definition.must_from_class(cls),
            info=_fake_info,
            randomness_seed=-1,
            extern_functions={},
            disable_eager_activity_execution=False,
            worker_level_failure_exception_types=[],
            patch_activation_callback=None,
            last_completion_result=Payloads(),
            last_failure=Failure(),
        )
        instance = SandboxedWorkflowRunner().create_instance(details)
        modules = instance.importer.new_modules  # type: ignore[attr-defined]
        return {
            name
            for name, module in modules.items()
            if name.split(".")[0] == "postmortem" and module is not sys.modules.get(name)
        }

    return asyncio.run(build())


@pytest.mark.parametrize("cls", WORKFLOWS, ids=lambda cls: cls.__name__)
def test_a_run_executes_only_its_workflow_module_and_its_packages(cls: type) -> None:
    module = cls.__module__
    packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    assert _reexecuted(cls) == {module, *packages}
