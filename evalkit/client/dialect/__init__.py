"""The router dialect: what RouterAI does that plain OpenAI does not.

`recognise`: the code that reads each quirk; the call (`call.py`, `sse.py`) and the catalog (`catalog.py`)
read router answers with it. `quirks`: `QUIRKS`, each quirk once, with a name, a plain-words
description and a check that judges what a live router answered (`evidence`: gathered by
`evalkit doctor --live`). The simulator (`evalkit/sim/`) speaks this dialect, and
`tests/test_conformance.py` proves it conforms to every entry. `pricing`: a `/models` entry and its
price card, in the router's units (the catalog holds them; the quirk checks read them too).
`reasoning`: where thinking hides in requests, replies and usage.
"""

from evalkit.client.dialect.evidence import PROBES, Evidence, Finding, Reply, Status
from evalkit.client.dialect.quirks import QUIRKS, Quirk, check_all
from evalkit.client.dialect.recognise import (
    ERROR_FINISH_REASON,
    PROCESSING_COMMENT,
    STREAM_OPTIONS,
    RouterError,
    as_int,
    classify_http_error,
    classify_payload,
    classify_status,
    classify_stream_payload,
    error_in_body,
    error_in_choice,
    error_in_chunk,
    parse_error_payload,
    parse_price,
    sse_event,
    unwrap_data,
    usage_cost,
    usage_tokens,
)

__all__ = [
    "ERROR_FINISH_REASON",
    "PROBES",
    "PROCESSING_COMMENT",
    "QUIRKS",
    "STREAM_OPTIONS",
    "Evidence",
    "Finding",
    "Quirk",
    "Reply",
    "RouterError",
    "Status",
    "as_int",
    "check_all",
    "classify_http_error",
    "classify_payload",
    "classify_status",
    "classify_stream_payload",
    "error_in_body",
    "error_in_choice",
    "error_in_chunk",
    "parse_error_payload",
    "parse_price",
    "sse_event",
    "unwrap_data",
    "usage_cost",
    "usage_tokens",
]
