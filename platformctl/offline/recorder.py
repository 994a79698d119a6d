"""Run the Pulumi program for one stack in-process under the SDK's mocks and record what it registers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from foundation.errors import EngineError, InputError
from foundation.stacks import PROJECT
from platformctl.offline.store import REFERENCE_UNKNOWN as _REFERENCE_UNKNOWN

SECRET = "[secret]"
UNKNOWN = "[unknown]"
PROVIDER_BLOB = "[provider]"
"""Shown for a dynamic resource's `__provider` input: a pickled provider is code, not something to review."""
_DYNAMIC_PROVIDER_KEY = "__provider"
_SIG_KEY = rpc._special_sig_key
_SECRET_SIG = rpc._special_secret_sig
_RESOURCE_SIG = rpc._special_resource_sig


@dataclass
class RecordedResource:
    urn: str
    """The resource's URN."""
    type: str
    """Type token."""
    name: str
    """Logical name."""
    custom: bool
    """Managed by a provider (False for components)."""
    parent: str
    """Parent URN."""
    provider: str
    """Provider reference (URN::id), empty for the default provider."""
    inputs: dict[str, Any]
    """Inputs as registered: secrets as "[secret]", values not known before apply as "[unknown]"."""
    protect: bool = False
    """The resource is protected from deletion."""
    retain_on_delete: bool = False
    """Deleting it from the stack leaves the cloud resource in place."""
    dependencies: list[str] = field(default_factory=list)
    """URNs this resource depends on."""
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Per input, the URNs its value came from."""
    read_id: str = ""
    """A `get` of an existing object (a read step, `external` in its state): the id read; empty for registrations."""

    def new_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"type": self.type, "urn": self.urn, "custom": self.custom, "parent": self.parent}
        if self.provider:
            state["provider"] = self.provider
        state["inputs"] = self.inputs
        if self.protect:
            state["protect"] = True
        if self.retain_on_delete:
            state["retainOnDelete"] = True
        if self.dependencies:
            state["dependencies"] = self.dependencies
        if self.property_dependencies:
            state["propertyDependencies"] = self.property_dependencies
        if self.read_id:
            state["external"] = True
            state["id"] = self.read_id
        return state


@dataclass
class StackRecording:
    stack: str
    """Stack name."""
    resources: list[RecordedResource]
    """Every registered resource in registration order (the Stack resource first)."""
    outputs: dict[str, Any]
    """Stack outputs, redacted like inputs."""
    reference_outputs: dict[str, Any]
    """Stack outputs as another stack's StackReference sees them (secret values kept, unknowns marked)."""
    secret_outputs: list[str]
    """Names of outputs that are secret."""
    warnings: list[str]
    """Warnings the program logged."""


class ReferencedStack(Protocol):
    """What a StackReference reads of a planned stack."""

    @property
    def reference_outputs(self) -> dict[str, Any]: ...

    @property
    def secret_outputs(self) -> list[str]: ...


StackOutputsLookup = Callable[[str], "ReferencedStack | None"]


class _Recorder(mocks.MockMonitor):
    def __init__(self, mock: mocks.Mocks) -> None:
        super().__init__(mock)
        self.records: list[RecordedResource] = []
        self.registered: set[str] = set()
        self.duplicates: list[str] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine leaves the root Stack out of its children's qualified types; the SDK's mock does not.
        if parent and parent.split("::")[2] == "pulumi:pulumi:Stack":
            parent = ""
        return super().make_urn(parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        inputs = json_format.MessageToDict(request.object)
        if urn in self.resources or urn in self.registered:
            # The engine refuses a second registration of one URN ("Duplicate resource URN"); so does a plan.
            self.duplicates.append(urn)
        self.registered.add(urn)
        if request.type != "pulumi:pulumi:Stack":
            self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, "", inputs)
        # A preview knows a new resource's inputs and nothing else: echo them as its state, the id unknown. (The
        # SDK's mock does the same through a deserialize/serialize round trip on a worker thread.)
        response = resource_pb2.RegisterResourceResponse(urn=urn, id="", object=request.object)
        self.records.append(
            RecordedResource(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent=request.parent,
                provider=request.provider,
                inputs=_redact_inputs(inputs),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                dependencies=sorted(set(request.dependencies)),
                property_dependencies={
                    key: sorted(set(value.urns)) for key, value in request.propertyDependencies.items() if value.urns
                },
            )
        )
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if request.type != "pulumi:pulumi:StackReference":
            # A `get`: the engine reads the object at preview time (a read step); recorded so policies can see it.
            urn = self.make_urn(request.parent, request.type, request.name)
            self.records.append(
                RecordedResource(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    custom=True,
                    parent=request.parent,
                    provider=request.provider,
                    inputs=_redact_inputs(json_format.MessageToDict(request.properties)),
                    dependencies=sorted(set(request.dependencies)),
                    read_id=request.id,
                )
            )
            return super().ReadResource(request)
        urn = self.make_urn(request.parent, request.type, request.name)
        args = mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs={"name": request.id}, resource_id=request.id
        )
        id_, state = self.mocks.new_resource(args)
        properties = struct_pb2.Struct()
        properties.update(state)  # plain JSON: the referenced stack's planned outputs
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_ or "", state)
        return resource_pb2.ReadResourceResponse(urn=urn, properties=properties)


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs the SDK's monitor calls on the calling thread: the recorder answers at once, a thread hop buys nothing.
    (A ThreadPoolExecutor only because asyncio accepts nothing else as a loop's default executor; it starts none.)"""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine, as a thread pool would
            future.set_exception(exc)
        return future


_INLINE = _InlineExecutor()


class _PlanMocks(mocks.Mocks):
    """Answers like a preview: ids and computed outputs are unknown; stack references read planned outputs."""

    def __init__(self, lookup: StackOutputsLookup) -> None:
        self.lookup = lookup

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            referenced = (args.inputs.get("name") or args.name).split("/")[-1]
            recording = self.lookup(referenced)
            if recording is None:
                raise EngineError(f"stack reference {args.name!r}: stack {referenced!r} has no plan")
            return args.name, {
                "name": args.name,
                "outputs": recording.reference_outputs,
                "secretOutputNames": recording.secret_outputs,
            }
        return "", dict(args.inputs)

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        raise EngineError(f"the offline plan cannot run data source {args.token}; pass the value in as config")


def _redact_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    shown = redact(inputs)
    if _DYNAMIC_PROVIDER_KEY in shown:
        shown[_DYNAMIC_PROVIDER_KEY] = PROVIDER_BLOB
    return shown


def redact(value: Any) -> Any:
    """Registered property values → plan JSON: secrets hidden, unknowns marked, integral numbers as ints."""
    if isinstance(value, dict):
        sig = value.get(_SIG_KEY)
        if sig == _SECRET_SIG:
            return SECRET
        if sig == _RESOURCE_SIG:
            return value.get("urn", UNKNOWN)
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str) and (value == rpc.UNKNOWN or _REFERENCE_UNKNOWN in value):
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def configure(config: Mapping[str, Any], secret_keys: list[str]) -> None:
    """Install stack config the way the Pulumi CLI hands it to a program (structured values as JSON)."""
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}, secret_keys
    )


def record_stack(
    root: Path,
    stack: str,
    config: Mapping[str, Any],
    lookup: StackOutputsLookup,
    secret_keys: list[str] | None = None,
) -> StackRecording:
    """Run `root/__main__.py` as stack `stack`; the runtime is reset before and after, so calls can repeat."""
    _reset_runtime()
    _trim_sdk_for_planning()
    configure(config, secret_keys or [])
    recorder = _Recorder(_PlanMocks(lookup))
    warnings: list[str] = []
    pulumi.runtime.set_mocks(
        recorder.mocks, project=PROJECT, stack=stack, preview=True, monitor=recorder, logger=_warning_logger(warnings)
    )
    program = root / "__main__.py"
    root_str = str(root)
    added = root_str not in sys.path
    if added:
        sys.path.insert(0, root_str)
    try:

        def run_program() -> None:
            runpy.run_path(str(program), run_name="__main__")

        _sync_await(run_pulumi_func(run_program))
        reference, shown, secret = _sync_await(_resolve_outputs(stack))
        if recorder.duplicates:
            raise EngineError(
                f"stack {stack}: duplicate resource URN(s), which the engine refuses: {', '.join(recorder.duplicates)}"
            )
    except pulumi.RunError as exc:
        raise InputError.single(f"stack {stack}", "", str(exc)) from None
    except (InputError, EngineError):
        raise
    except Exception as exc:  # the program's own failure, reported with its type
        raise EngineError(f"stack {stack}: the program failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if added:
            sys.path.remove(root_str)
        _reset_runtime()
    return StackRecording(
        stack=stack,
        resources=recorder.records,
        outputs=shown,
        reference_outputs=reference,
        secret_outputs=secret,
        warnings=warnings,
    )


async def _resolve_outputs(stack: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    root_resource = settings.get_root_resource()
    raw = dict(getattr(root_resource, "outputs", {}) or {})
    reference: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    secret_names: list[str] = []
    for name, value in raw.items():
        ref_value, shown_value, is_secret = await _resolve(value, f"{stack}.{name}")
        reference[name], shown[name] = ref_value, shown_value
        if is_secret:
            secret_names.append(name)
    return reference, shown, secret_names


async def _resolve(value: Any, path: str) -> tuple[Any, Any, bool]:
    """Resolve one exported value, keeping the known parts of dicts and lists of Outputs known."""
    if isinstance(value, dict):
        parts = {key: await _resolve(item, f"{path}.{key}") for key, item in value.items()}
        secret = any(part[2] for part in parts.values())
        return (
            {key: part[0] for key, part in parts.items()},
            SECRET if secret else {key: part[1] for key, part in parts.items()},
            secret,
        )
    if isinstance(value, list | tuple):
        items = [await _resolve(item, f"{path}.{index}") for index, item in enumerate(value)]
        secret = any(item[2] for item in items)
        return [item[0] for item in items], SECRET if secret else [item[1] for item in items], secret
    output = pulumi.Output.from_input(value)
    known, secret = await output.is_known(), await output.is_secret()
    resolved = await output.future() if known else None
    if known and isinstance(resolved, dict | list):
        ref_value, shown_value, inner_secret = await _resolve(resolved, path)
        secret = secret or inner_secret
        return ref_value, SECRET if secret else shown_value, secret
    ref_value = resolved if known else f"{_REFERENCE_UNKNOWN}{path}"
    shown_value = SECRET if secret else (resolved if known else UNKNOWN)
    return ref_value, shown_value, secret


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


def _warning_logger(sink: list[str]) -> logging.Logger:
    """Logger for the mock engine: the program's warnings and errors go into the plan, not the terminal."""
    logger = logging.Logger(f"platformctl.plan.{id(sink)}", logging.WARNING)
    logger.addHandler(_Collect(sink))
    logger.propagate = False
    return logger


def _no_stack_trace() -> Any:
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


def _no_debug_log(*args: Any, **kwargs: Any) -> None:
    return None


def _trim_sdk_for_planning() -> None:
    """Switch off two SDK services a plan has no use for, which cost it a sixth of its time: at every registration
    the SDK walks the caller's stack (reading source lines) so the real engine can point diagnostics at program
    lines, and it builds a protobuf request for each of its debug messages, which only `pulumi -v` shows."""
    from pulumi.runtime import resource as runtime_resource

    runtime_resource._get_stack_trace = _no_stack_trace
    pulumi.log.debug = _no_debug_log


def _reset_runtime() -> None:
    settings.reset_options()
    pulumi.runtime.set_all_config({}, [])
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_INLINE)
    asyncio.set_event_loop(loop)
