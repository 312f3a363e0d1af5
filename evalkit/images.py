"""Images: a reference (path, URL, bytes, PIL image, dataset image) -> a base64 data URL to send.

Results keep only `ref` and `sha256`, never the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import ImageError

if TYPE_CHECKING:
    from evalkit.task import ImageOptions

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


@dataclass(frozen=True)
class PreparedImage:
    data_url: str
    mime: str
    width: int
    height: int
    sha256: str
    ref: str

    def record(self) -> dict[str, Any]:
        """What results keep about the image: a reference, never the bytes."""
        return {"ref": self.ref, "sha256": self.sha256, "width": self.width, "height": self.height}


def prepare_image(ref: Any, options: ImageOptions, *, where: str) -> PreparedImage:
    from PIL import Image, UnidentifiedImageError

    raw, label = _read(ref, options, where=where)
    try:
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"unreadable image {label}: {exc}", where=where) from None
    fmt = image.format or "PNG"
    if fmt not in _MIME:
        raise ImageError(f"unsupported image format {fmt} for {label} (use JPEG, PNG, GIF or WEBP)", where=where)
    data, fmt = _fit(image, raw, fmt, options, label, where)
    return PreparedImage(
        data_url=f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode()}",
        mime=_MIME[fmt],
        width=image.width if data is raw else Image.open(io.BytesIO(data)).width,
        height=image.height if data is raw else Image.open(io.BytesIO(data)).height,
        sha256=hashlib.sha256(raw).hexdigest(),
        ref=label,
    )


def _read(ref: Any, options: ImageOptions, *, where: str) -> tuple[bytes, str]:
    if isinstance(ref, (bytes, bytearray)):
        return bytes(ref), f"<{len(ref)} bytes>"
    if isinstance(ref, dict) and ("bytes" in ref or "path" in ref):  # a `datasets` Image column
        if ref.get("bytes"):
            return bytes(ref["bytes"]), ref.get("path") or f"<{len(ref['bytes'])} bytes>"
        ref = ref["path"]
    if hasattr(ref, "save") and hasattr(ref, "size"):  # a PIL image
        buffer = io.BytesIO()
        ref.save(buffer, format="PNG")
        return buffer.getvalue(), f"<PIL image {ref.size[0]}x{ref.size[1]}>"
    text = str(ref)
    if text.startswith(("http://", "https://")):
        return _download(text, options, where=where), text
    path = Path(text)
    try:
        size = path.stat().st_size
    except OSError:
        raise ImageError(f"image file not found: {path}", where=where) from None
    if size > options.max_input_bytes:
        raise ImageError(
            f"image {path} is {size} bytes, over the limit of {options.max_input_bytes}", where=where
        )
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc}", where=where) from None


def _download(url: str, options: ImageOptions, *, where: str) -> bytes:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read(options.max_input_bytes + 1)
    except OSError as exc:
        raise ImageError(f"cannot download image {url}: {exc}", where=where) from None
    if len(data) > options.max_input_bytes:
        raise ImageError(f"image {url} is over the limit of {options.max_input_bytes} bytes", where=where)
    return data


def _fit(image: Any, raw: bytes, fmt: str, options: ImageOptions, label: str, where: str) -> tuple[bytes, str]:
    """Downscale to max_side and re-encode until under max_bytes; the original when it already fits."""
    fits_side = options.max_side is None or max(image.size) <= options.max_side
    fits_bytes = options.max_bytes is None or len(raw) <= options.max_bytes
    if fits_side and fits_bytes:
        return raw, fmt
    work = image.convert("RGB") if image.mode not in ("RGB", "L") else image
    if not fits_side:
        work = work.copy()
        work.thumbnail((options.max_side, options.max_side))
    for quality in (90, 80, 65, 50):
        buffer = io.BytesIO()
        work.save(buffer, format="JPEG", quality=quality)
        if options.max_bytes is None or buffer.tell() <= options.max_bytes:
            return buffer.getvalue(), "JPEG"
    raise ImageError(f"image {label} cannot be made smaller than {options.max_bytes} bytes", where=where)
