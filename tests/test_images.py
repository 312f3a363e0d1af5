"""Images in requests: formats, MIME types, limits, errors naming the sample, the cache."""

from __future__ import annotations

import base64
import http.server
import io
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from evalkit.common.errors import ImageError
from evalkit.task.images import ImageCache, PreparedImage, prepare_image
from evalkit.task.spec import ImageOptions, Sample, Task

WHERE = "tasks/demo.yaml: sample 'q7'"


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", (width, height))
    image.putdata(
        [((x * 7) % 256, (y * 5) % 256, (x + y) % 256) for y in range(height) for x in range(width)]
    )
    return image.convert(mode)


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def payload(prepared: PreparedImage) -> bytes:
    header, _, data = prepared.data_url.partition(",")
    assert header == f"data:{prepared.mime};base64"
    return base64.b64decode(data)


def prep(ref: object, **options: object) -> PreparedImage:
    return prepare_image(ref, ImageOptions(**options), where=WHERE, cache=ImageCache())


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_sendable_formats_keep_their_bytes_and_mime(fmt: str, mime: str) -> None:
    raw = encode(gradient(), fmt)
    prepared = prep(raw)
    assert prepared.mime == mime
    assert payload(prepared) == raw
    assert (prepared.width, prepared.height) == (64, 48)
    assert prepared.nbytes == len(raw)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_other_raster_formats_are_converted_to_png(fmt: str) -> None:
    prepared = prep(encode(gradient(), fmt))
    assert prepared.mime == "image/png"
    assert Image.open(io.BytesIO(payload(prepared))).tobytes() == gradient().tobytes()


def test_path_pil_dataset_dict_and_data_url_refs(tmp_path: Path) -> None:
    raw = encode(gradient(), "PNG")
    file = tmp_path / "chart.png"
    file.write_bytes(raw)
    data_url = "data:image/png;base64," + base64.b64encode(raw).decode()
    refs = [
        str(file),
        file,
        {"bytes": raw, "path": "chart.png"},
        {"bytes": None, "path": str(file)},
        data_url,
    ]
    for ref in refs:
        assert payload(prep(ref)) == raw, ref
    assert prep(file).ref == str(file)
    assert prep({"bytes": raw, "path": "chart.png"}).ref == "chart.png"
    from_pil = prep(gradient())
    assert from_pil.mime == "image/png" and from_pil.ref.startswith("<PIL image 64x48")


def test_record_keeps_a_reference_never_the_bytes(tmp_path: Path) -> None:
    file = tmp_path / "a.png"
    file.write_bytes(encode(gradient(), "PNG"))
    record = prep(file).record()
    assert set(record) == {"ref", "sha256", "width", "height"}
    assert record["ref"] == str(file) and len(record["sha256"]) == 64
    assert "base64" not in repr(prep(file))


def test_downscale_obeys_max_side_and_keeps_aspect() -> None:
    prepared = prep(encode(gradient(2000, 1000), "PNG"), max_side=500)
    assert (prepared.width, prepared.height) == (500, 250)
    assert (prepared.source_width, prepared.source_height) == (2000, 1000)
    assert Image.open(io.BytesIO(payload(prepared))).size == (500, 250)


def test_downscale_keeps_png_with_alpha_lossless() -> None:
    image = gradient(400, 200, "RGBA")
    prepared = prep(encode(image, "PNG"), max_side=100)
    assert prepared.mime == "image/png"
    assert Image.open(io.BytesIO(payload(prepared))).mode == "RGBA"


def test_max_bytes_reencodes_until_it_fits() -> None:
    raw = encode(noise(600, 600), "PNG")
    assert len(raw) > 1_000_000
    prepared = prep(raw, max_side=None, max_bytes=60_000)
    assert prepared.mime == "image/jpeg"
    assert prepared.nbytes == len(payload(prepared)) <= 60_000


def test_max_bytes_that_cannot_be_met_is_an_error() -> None:
    with pytest.raises(ImageError, match="cannot be made smaller than 50 bytes") as info:
        prep(encode(noise(200, 200), "PNG"), max_bytes=50)
    assert info.value.where == WHERE


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise: the viewer shows it portrait
    prepared = prep(encode(gradient(80, 40), "JPEG", exif=exif.tobytes()))
    assert (prepared.width, prepared.height) == (40, 80)


def test_animated_gif_sends_its_first_frame_as_png() -> None:
    frames = [Image.new("RGB", (20, 20), color) for color in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    prepared = prep(buffer.getvalue())
    assert prepared.mime == "image/png"
    assert Image.open(io.BytesIO(payload(prepared))).convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_missing_file_names_the_file_and_sample(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageError, match="image file not found") as info:
        prep(str(missing))
    assert str(missing) in str(info.value) and "sample 'q7'" in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not an image at all", "not a recognised image file"),
        (b"%PDF-1.7\n%...", "unsupported image format PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "unsupported image format SVG"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "unsupported image format HEIC"),
    ],
)
def test_bad_or_unsupported_files(tmp_path: Path, content: bytes, message: str) -> None:
    file = tmp_path / "picture.png"
    file.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        prep(file)
    assert str(file) in str(info.value) and info.value.where == WHERE


def test_truncated_image_is_unreadable() -> None:
    raw = encode(noise(100, 100), "PNG")
    with pytest.raises(ImageError, match="unreadable image"):
        prep(raw[: len(raw) // 2])


def test_input_over_max_input_bytes(tmp_path: Path) -> None:
    file = tmp_path / "big.png"
    file.write_bytes(encode(gradient(), "PNG"))
    with pytest.raises(ImageError, match="over the limit of 100 .*max_input_bytes"):
        prep(file, max_input_bytes=100)


def test_pixel_count_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = encode(Image.new("1", (2000, 2000)), "PNG")  # a few KB on disk, 4M pixels
    with pytest.raises(ImageError, match="2000x2000 = 4000000 pixels, over the limit of 3000000"):
        prep(raw, max_pixels=3_000_000)  # the task's limit, checked before decoding
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # over twice the limit: Pillow refuses
    with pytest.raises(ImageError, match="too many pixels, a decompression bomb guard") as info:
        prep(raw)
    assert info.value.where == WHERE


def test_not_an_image_reference() -> None:
    with pytest.raises(ImageError, match="cannot use a int as an image"):
        prep(42)
    with pytest.raises(ImageError, match="neither bytes nor a path"):
        prep({"bytes": None, "path": None})


def test_cache_reuses_an_encoding_per_image_and_options(tmp_path: Path) -> None:
    cache = ImageCache()
    file = tmp_path / "a.png"
    file.write_bytes(encode(gradient(300, 300), "PNG"))
    options = ImageOptions(max_side=100)
    first = prepare_image(file, options, where=WHERE, cache=cache)
    second = prepare_image(str(file), options, where="other sample", cache=cache)
    assert second is first and (cache.hits, cache.misses) == (1, 1)
    prepare_image(file, ImageOptions(max_side=50), where=WHERE, cache=cache)
    assert cache.misses == 2
    file.write_bytes(encode(gradient(200, 200), "PNG"))
    os.utime(file, ns=(1, 1))  # a rewritten file is a new image even within the same mtime tick
    changed = prepare_image(file, options, where=WHERE, cache=cache)
    assert changed.source_width == 200 and cache.misses == 3


def test_cache_is_keyed_by_content_for_bytes_and_relabels() -> None:
    cache = ImageCache()
    raw = encode(gradient(), "PNG")
    first = prepare_image({"bytes": raw, "path": "x.png"}, ImageOptions(), where=WHERE, cache=cache)
    second = prepare_image({"bytes": raw, "path": "y.png"}, ImageOptions(), where=WHERE, cache=cache)
    assert cache.hits == 1 and second.ref == "y.png" and second.data_url is first.data_url


def test_cache_is_bounded_in_bytes() -> None:
    cache = ImageCache(max_bytes=5_000)
    for seed in range(6):
        prepare_image(encode(noise(30, 30, seed), "BMP"), ImageOptions(), where=WHERE, cache=cache)
    assert 0 < cache.size_bytes <= 5_000
    assert len(cache) < 6


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "pic.jpg").write_bytes(encode(gradient(), "JPEG"))
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_is_downloaded_and_errors_name_it(image_server: str) -> None:
    prepared = prep(f"{image_server}/pic.jpg")
    assert prepared.mime == "image/jpeg" and prepared.ref == f"{image_server}/pic.jpg"
    with pytest.raises(ImageError, match="cannot download image .*/missing.jpg"):
        prep(f"{image_server}/missing.jpg")
    with pytest.raises(ImageError, match="over the limit of 100 bytes"):
        prep(f"{image_server}/pic.jpg", max_input_bytes=100)


def test_rendered_message_has_text_first_then_the_image(tmp_path: Path) -> None:
    from evalkit.task.render import render

    file = tmp_path / "a.png"
    file.write_bytes(encode(gradient(), "PNG"))
    task = Task(name="t", samples=[Sample(id="1", input="What colour?", images=[str(file)])])
    rendered = render(task, task.samples[0])
    parts = rendered.messages[-1]["content"]
    assert parts[0] == {"type": "text", "text": "What colour?"}
    assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )
    assert [image.ref for image in rendered.images] == [str(file)]


def test_rendering_a_missing_image_names_the_task_and_sample(tmp_path: Path) -> None:
    from evalkit.task.render import render

    task = Task(name="t", samples=[Sample(id="s9", input="?", images=[str(tmp_path / "gone.png")])])
    with pytest.raises(ImageError, match="gone.png") as info:
        render(task, task.samples[0])
    assert info.value.where == "task 't': sample 's9'"
