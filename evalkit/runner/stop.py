"""What stops a whole run: `StopRun`, and the call errors that must (a bad key, no credit), with the
status and the hint each gives. Shared by the scheduler and the judge calls it makes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit.client.errors import is_run_fatal

if TYPE_CHECKING:
    from evalkit.client import CallRecord

RUN_FATAL_STATUS = {"out_of_credit": "out_of_credit", "auth": "auth_failed", "forbidden": "auth_failed"}
RUN_FATAL_HINT = {
    "auth": " (the router rejected the API key: check ROUTERAI_API_KEY, or the variable named by --api-key-env)",
    "out_of_credit": " (top up the account, then finish with: evalkit run --resume {run_id})",
}


class StopRun(Exception):
    """Ends dispatching for the whole run (out of credit, bad key, budget)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def run_fatal(record: CallRecord, run_id: str, who: str = "") -> StopRun | None:
    """The stop a call's run-fatal error calls for (None when it has none); `who` names the caller
    in the message when it is not the tested model (e.g. "judge sim/judge: ")."""
    if not record.error or not is_run_fatal(record.error):
        return None
    hint = RUN_FATAL_HINT.get(record.error, "").format(run_id=run_id)
    status = RUN_FATAL_STATUS.get(record.error, "failed")
    return StopRun(status, f"{who}{record.error}: {record.error_message}{hint}")
