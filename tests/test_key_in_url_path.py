"""A key put in a URL's path (some gateways take it there) is masked like one in its userinfo or query:
no manifest, log line or output of a run holds it."""

from __future__ import annotations

from pathlib import Path

import pytest

import evalkit
from evalkit.client import Endpoint
from evalkit.runner.config import RunConfig

KEY = "sk-or-v1-pathkey0123456789abcdef"
OWN = "plainpathsecret42"  # a key of no known shape, in a variable named by --api-key-env


def test_an_endpoints_safe_url_masks_its_key_in_the_path() -> None:
    endpoint = Endpoint(base_url=f"http://127.0.0.1:9/{OWN}/v1/", api_key=OWN)
    assert endpoint.safe_url() == "http://127.0.0.1:9/***/v1"
    assert OWN not in repr(endpoint)


def test_the_recorded_options_mask_a_key_in_any_url_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_ROUTER_KEY", OWN)
    config = RunConfig.build(
        tasks=["builtin_qa"], models=["m/a", "m/b"], api_key_env="MY_ROUTER_KEY",
        base_url=f"https://gw.example/{OWN}/v1", model_routes=[f"m/b=https://other.example/v1/{KEY}"],
    )  # fmt: skip
    recorded = str(config.recorded())
    assert OWN not in recorded and KEY not in recorded
    assert "https://gw.example/***/v1" in recorded and "https://other.example/v1/***" in recorded


@pytest.mark.parametrize("where", ["base_url", "route"])
def test_a_run_with_the_key_in_a_url_path_writes_and_prints_no_trace_of_it(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTERAI_API_KEY", KEY)
    url = f"http://127.0.0.1:9/{KEY}/v1"  # nothing listens: every call fails
    result = evalkit.run(
        ["builtin_qa"], ["sim/small-fast"], limit=2, out=str(tmp_path), run_id="keyed", progress=False,
        base_url=url if where == "base_url" else "http://127.0.0.1:9/v1",
        model_routes=[f"sim/small-fast={url}"] if where == "route" else None,
        max_attempts=1,
    )  # fmt: skip
    captured = capsys.readouterr()
    assert result.status == "failed"  # the router is unreachable: the run failed, and said so
    assert "pathkey0123456789" not in captured.out + captured.err + result.message + repr(result)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"pathkey0123456789" not in path.read_bytes(), path
