"""The code sandbox: model-written code runs in separate, contained processes, and its verdict
comes from a judge process it cannot touch (docs/sandbox.md)."""

from evalkit.sandbox.host import (
    Job,
    Limits,
    ProgramResult,
    Sandbox,
    SandboxError,
    Status,
    sandbox_capabilities,
)

__all__ = ["Job", "Limits", "ProgramResult", "Sandbox", "SandboxError", "Status", "sandbox_capabilities"]
