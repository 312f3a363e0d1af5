"""The HTML report: self-contained, escaped, complete; and it renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_stats import make_results

from evalkit import report

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def results():
    df = make_results(tasks=("qa", "vision"), n=24, languages=("en", "ru"), error_rate=0.1, seed=3)
    df.loc[df.index[df["score"] == 0][0], "output"] = HOSTILE
    failed = df.index[df["error"].notna()][0]
    df.loc[failed, "error_message"] = "upstream said <b>no</b> & gave up"
    return df


@pytest.fixture(scope="module")
def written(results, tmp_path_factory) -> Path:
    """The report written once (rendering draws every plot) with a manifest holding secrets."""
    manifest = {"run_id": "run1", "endpoint": {"base_url": "https://routerai.ru/api/v1", "api_key": "sk-a"},
                "note": "key was sk-secret-value-123"}  # fmt: skip
    out = tmp_path_factory.mktemp("report") / "sub" / "r.html"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTERAI_API_KEY", "sk-secret-value-123")
        return report.write_report(results, out, manifests=[manifest], title="T <1>")


def test_report_is_self_contained_and_escapes_everything(written: Path) -> None:
    text = written.read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "upstream said &lt;b&gt;no&lt;/b&gt; &amp; gave up" in text
    assert "<title>T &lt;1&gt;</title>" in text
    assert "sk-secret-value-123" not in text and "sk-a" not in text
    assert "https://routerai.ru/api/v1" in text  # shown as text in the manifest, not loaded


def test_report_has_tables_plots_and_sections(results, written: Path) -> None:
    text = written.read_text(encoding="utf-8")
    for heading in ("Summary", "Paired comparisons", "Plots", "Latency", "Accuracy by language",
                    "Failed calls", "Wrong answers"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in text
    for model in results["model"].unique():
        assert model in text
    assert text.count('src="data:image/png;base64,') == len(report.report_plots(results))
    assert "SIMULATED" not in text and "run1" in text
    assert "pass@k" not in text  # one epoch only
    errors = results.groupby(["task", "model"])["error"].count()
    first = errors.index[0]
    assert f"<td>{errors[first]} (" in text


def test_simulated_banner_and_pass_at_k_section() -> None:
    df = make_results(n=8, epochs=3, simulated=True)
    text = report.render_report(df)
    assert 'class="banner">SIMULATED' in text
    assert "<h2>pass@k</h2>" in text and "pass@1, %" in text


def test_format_rub_keeps_small_amounts_readable() -> None:
    assert report.format_rub(0.000123456) == "0.000123"
    assert report.format_rub(12.345) == "12.35"
    assert report.format_rub(12345.6) == "12 346"
    assert report.format_rub(float("nan")) == "–"


def test_save_plots_writes_png_and_svg(tmp_path: Path) -> None:
    small = make_results(n=6, languages=("en", "ru"))
    paths = report.save_plots(small, tmp_path / "plots")
    names = {p.name for p in paths}
    assert {"accuracy_vs_cost.png", "accuracy_vs_cost.svg", "language_heatmap.png"} <= names
    assert len(paths) == 2 * len(report.report_plots(small))
    for path in paths:
        head = path.read_bytes()[:200]
        assert head.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in head


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PROBE = (
    '<script>window.addEventListener("load", () => { const imgs = Array.from(document.images); '
    'document.title = "decoded:" + imgs.filter(i => i.complete && i.naturalWidth > 0).length + "/" + '
    'imgs.length + " tables:" + document.querySelectorAll("table").length; });</script></body>'
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium); CI installs it")


def test_report_renders_in_headless_chromium(written: Path, tmp_path: Path) -> None:
    browser = _chromium()
    text = written.read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE), encoding="utf-8")
    common = [
        browser,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run([*common, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    images = text.count("<img ")
    tables = text.count("<table")
    assert images >= 5 and tables >= 4
    assert f"<title>decoded:{images}/{images} tables:{tables}</title>" in dom.stdout, dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    subprocess.run([*common, "--hide-scrollbars", "--window-size=1400,2000", f"--screenshot={shot}",
                    probe.as_uri()], capture_output=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000


def test_comparisons_are_holm_adjusted_and_languages_marked() -> None:
    models = {"a/best": {"accuracy": 0.95, "cost": 0.1, "latency": 1},
              "b/worse": {"accuracy": 0.4, "cost": 0.1, "latency": 1},
              "c/close": {"accuracy": 0.93, "cost": 0.1, "latency": 1}}  # fmt: skip
    df = make_results(models, tasks=("qa", "mgsm"), n=60, languages=("en", "ru"), seed=5)
    text = report.render_report(df)
    section = text[text.index('<section id="paired-comparisons">') :].split("</section>")[0]
    assert section.count("<li>") == 4 and section.count("Holm-adjusted over 4 comparisons: p_adj") == 4
    languages = text[text.index('<section id="accuracy-by-language">') :].split("</section>")[0]
    assert "*</td>" in languages and "after Holm" in languages
    long = report.stats.by_language(df, long=True)
    worse = long[long["model"] == "b/worse"]
    assert (worse["p_vs_best_holm"] < 0.05).all() and (worse["p_vs_best_holm"] >= worse["p_vs_best"]).all()


def test_manifest_nulls_and_variable_names_are_shown_as_they_are() -> None:
    manifest = {"run_id": "r", "api_key_env": None, "endpoint": {"api_key_env": "ROUTERAI_API_KEY",
                "api_key": "sk-live-xyz"}, "routes": {"m": {"api_key_env": "sk-live-xyz"}}}  # fmt: skip
    text = report.render_report(make_results(n=4), manifests=[manifest])
    assert "&quot;api_key_env&quot;: null" in text
    assert "&quot;api_key_env&quot;: &quot;ROUTERAI_API_KEY&quot;" in text
    assert "sk-live-xyz" not in text and text.count("[redacted]") == 2
