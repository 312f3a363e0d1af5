"""Images: a reference (path, URL, bytes, PIL image, dataset image) -> a base64 data URL to send.

`prepare_image` reads the reference, checks it against the task's limits (input bytes, pixel count),
downscales it to `max_side` and re-encodes it until it fits `max_bytes`. Results keep only what
`PreparedImage.record()` returns (a reference, a hash, the size sent), never the bytes.

Preparing the same image again (many samples, models, epochs) is a cache hit: `ImageCache` is an LRU
bounded by the bytes of the data URLs it holds, keyed by the image's identity and the options.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.common.errors import ImageError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from evalkit.task.spec import ImageOptions

SENDABLE = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
# Formats we decode (and convert to PNG/JPEG when they are not sendable). Restricting Pillow to these
# keeps exotic plugins (EPS via Ghostscript, ...) away from untrusted dataset files.
DECODABLE = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO", "AVIF")
_SIGNATURES = {b"%PDF": "PDF", b"<svg": "SVG", b"<?xm": "SVG (XML)", b"\x00\x00\x00\x0cjP": "JPEG 2000"}
_HEIF_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"hevc")
_JPEG_QUALITIES = (90, 80, 70, 60, 50)
_MIN_SIDE = 64


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to send: its data URL and what results record about it.

    width, height: the size sent (after downscaling); source_width, source_height: the original size.
    sha256: the hash of the original bytes (identifies the source image, whatever the encoding).
    """

    data_url: str
    mime: str
    width: int
    height: int
    sha256: str
    ref: str
    source_width: int = 0
    source_height: int = 0

    @property
    def nbytes(self) -> int:
        """Size of the encoded image (not of the base64 text)."""
        payload = len(self.data_url) - self.data_url.index(",") - 1
        return payload * 3 // 4 - self.data_url[-2:].count("=")

    def record(self) -> dict[str, Any]:
        """What results keep about the image: a reference, never the bytes."""
        return {"ref": self.ref, "sha256": self.sha256, "width": self.width, "height": self.height}

    def __repr__(self) -> str:
        return (
            f"PreparedImage(ref={self.ref!r}, {self.mime}, {self.width}x{self.height}, {self.nbytes} bytes)"
        )


class ImageCache:
    """A thread-safe LRU of prepared images, bounded by the total length of their data URLs."""

    def __init__(self, max_bytes: int = 256_000_000) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, PreparedImage] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._in_flight: dict[Hashable, threading.Event] = {}
        self.hits = 0
        self.misses = 0
        self.waits = 0  # times a thread waited for another's preparation of the same image

    def prepared(self, key: Hashable, make: Callable[[], PreparedImage]) -> PreparedImage:
        """The image under `key`, made once however many threads ask for it at the same moment.

        A thread that finds the image in flight waits for it. A failure is neither cached nor handed
        to the waiters: each then makes the image itself, so its error names its own sample.
        """
        while True:
            with self._lock:
                item = self._items.get(key)
                if item is not None:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return item
                done = self._in_flight.get(key)
                if done is None:
                    done = self._in_flight[key] = threading.Event()
                    self.misses += 1
                    break
                self.waits += 1
            done.wait()
        try:
            item = make()
            self.put(key, item)
            return item
        finally:
            with self._lock:
                del self._in_flight[key]
            done.set()

    def get(self, key: Hashable) -> PreparedImage | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: Hashable, item: PreparedImage) -> None:
        size = len(item.data_url)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._size -= len(old.data_url) if old else 0
            self._items[key] = item
            self._size += size
            while self._size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted.data_url)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._size


def prepare_image(
    ref: Any, options: ImageOptions, *, where: str, cache: ImageCache | None = None
) -> PreparedImage:
    """Read, check, downscale and encode one image; errors are `ImageError`s naming `where` and the image.

    ref: a path (str or Path), an http(s) or data URL, bytes, a PIL image, or a `datasets` image
    dict ({"bytes": ..., "path": ...}).
    """
    source = _source(ref, options, where=where)
    key = (source.key, _options_key(options))
    if cache is None:
        return _prepare(source.load(), source.label, options, where=where)
    # a run's cache: the same image serves every sample, model and epoch, and the prefetcher
    cached = cache.prepared(key, lambda: _prepare(source.load(), source.label, options, where=where))
    return cached if cached.ref == source.label else replace(cached, ref=source.label)


@dataclass(frozen=True)
class _Source:
    label: str
    key: Hashable
    load: Callable[[], bytes]


def _options_key(options: ImageOptions) -> tuple[Any, ...]:
    return (options.max_side, options.max_bytes, options.max_input_bytes, _max_pixels(options))


def _max_pixels(options: ImageOptions) -> int | None:
    from PIL import Image

    return getattr(options, "max_pixels", None) or Image.MAX_IMAGE_PIXELS


def _source(ref: Any, options: ImageOptions, *, where: str) -> _Source:
    if isinstance(ref, dict) and ("bytes" in ref or "path" in ref):  # a `datasets` Image column
        if ref.get("bytes"):
            data = bytes(ref["bytes"])
            return _bytes_source(data, ref.get("path") or None, options, where=where)
        if not ref.get("path"):
            raise ImageError("the image column holds neither bytes nor a path", where=where)
        ref = ref["path"]
    if isinstance(ref, (bytes, bytearray, memoryview)):
        return _bytes_source(bytes(ref), None, options, where=where)
    if hasattr(ref, "save") and hasattr(ref, "size") and hasattr(ref, "tobytes"):
        return _pil_source(ref)
    if isinstance(ref, Path):
        return _path_source(ref, options, where=where)
    if not isinstance(ref, str):
        raise ImageError(
            f"cannot use a {type(ref).__name__} as an image (give a path, URL, bytes or PIL image)",
            where=where,
        )
    if ref.startswith(("http://", "https://")):
        return _Source(ref, ("url", ref), lambda: _download(ref, options, where=where))
    if ref.startswith("data:"):
        return _bytes_source(_decode_data_url(ref, where=where), None, options, where=where)
    return _path_source(Path(ref).expanduser(), options, where=where)


def _bytes_source(data: bytes, label: str | None, options: ImageOptions, *, where: str) -> _Source:
    digest = hashlib.sha256(data).hexdigest()
    label = label or f"<{len(data)} bytes sha256:{digest[:12]}>"
    _check_input_size(len(data), label, options, where=where)
    return _Source(label, ("sha256", digest), lambda: data)


def _pil_source(image: Any) -> _Source:
    digest = hashlib.sha256(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()

    def load() -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    return _Source(f"<PIL image {image.size[0]}x{image.size[1]} {image.mode}>", ("pil", digest), load)


def _path_source(path: Path, options: ImageOptions, *, where: str) -> _Source:
    try:
        stat = path.stat()
    except OSError:
        raise ImageError(f"image file not found: {path}", where=where) from None
    if not path.is_file():
        raise ImageError(f"not a file: {path}", where=where)
    _check_input_size(stat.st_size, str(path), options, where=where)

    def load() -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot read image {path}: {exc.strerror or exc}", where=where) from None

    return _Source(str(path), ("path", str(path.resolve()), stat.st_mtime_ns, stat.st_size), load)


def _check_input_size(size: int, label: str, options: ImageOptions, *, where: str) -> None:
    if size > options.max_input_bytes:
        raise ImageError(
            f"image {label} is {size} bytes, over the limit of {options.max_input_bytes} "
            "(images.max_input_bytes)",
            where=where,
        )


def _decode_data_url(url: str, *, where: str) -> bytes:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise ImageError("a data URL image must be base64-encoded", where=where)
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError:
        raise ImageError("the data URL holds invalid base64", where=where) from None


def _download(url: str, options: ImageOptions, *, where: str) -> bytes:
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "evalkit"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read(options.max_input_bytes + 1)
    except OSError as exc:
        raise ImageError(f"cannot download image {url}: {exc}", where=where) from None
    if len(data) > options.max_input_bytes:
        raise ImageError(
            f"image {url} is over the limit of {options.max_input_bytes} bytes (images.max_input_bytes)",
            where=where,
        )
    return data


def _prepare(raw: bytes, label: str, options: ImageOptions, *, where: str) -> PreparedImage:
    image = _open(raw, label, options, where=where)
    source_size = image.size
    data, fmt, size = _fit(image, raw, options, label, where=where)
    return PreparedImage(
        data_url=f"data:{SENDABLE[fmt]};base64,{base64.b64encode(data).decode()}",
        mime=SENDABLE[fmt],
        width=size[0],
        height=size[1],
        sha256=hashlib.sha256(raw).hexdigest(),
        ref=label,
        source_width=source_size[0],
        source_height=source_size[1],
    )


def _open(raw: bytes, label: str, options: ImageOptions, *, where: str) -> PILImage.Image:
    """Decode, refusing unknown formats and images over the pixel limit before decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    Image.init()
    formats = [f for f in DECODABLE if f in Image.OPEN]
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice it; _check_pixels refuses those with a clear message.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(raw), formats=formats)
            _check_pixels(image.size, label, options, where=where)
            image.load()
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(
                f"image {label} has too many pixels, a decompression bomb guard: {exc}", where=where
            ) from None
        except UnidentifiedImageError:
            raise ImageError(_unidentified(raw, label), where=where) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"unreadable image {label}: {exc}", where=where) from None
    return image


def _check_pixels(size: tuple[int, int], label: str, options: ImageOptions, *, where: str) -> None:
    limit = _max_pixels(options)
    if limit is not None and size[0] * size[1] > limit:
        raise ImageError(
            f"image {label} is {size[0]}x{size[1]} = {size[0] * size[1]} pixels, over the limit of {limit} "
            "(a decompression bomb guard)",
            where=where,
        )


def _unidentified(raw: bytes, label: str) -> str:
    kind = next((name for magic, name in _SIGNATURES.items() if raw.lstrip()[: len(magic)] == magic), None)
    if kind is None and raw[4:8] == b"ftyp" and raw[8:12] in _HEIF_BRANDS:
        kind = "HEIC/HEIF"
    allowed = "JPEG, PNG, GIF, WEBP (BMP and TIFF are converted)"
    if kind:
        return f"unsupported image format {kind} for {label}; use {allowed}"
    return f"unreadable image {label}: not a recognised image file ({allowed})"


def _fit(
    image: PILImage.Image, raw: bytes, options: ImageOptions, label: str, *, where: str
) -> tuple[bytes, str, tuple[int, int]]:
    """The original bytes when they can be sent as they are; else a downscaled re-encoding."""
    fmt = "JPEG" if image.format == "MPO" else image.format or "PNG"
    fits_side = options.max_side is None or max(image.size) <= options.max_side
    fits_bytes = options.max_bytes is None or len(raw) <= options.max_bytes
    animated = getattr(image, "n_frames", 1) > 1
    if fmt in SENDABLE and fits_side and fits_bytes and not animated and not _rotated(image):
        return raw, fmt, image.size
    work = _normalised(image)
    if not fits_side:
        work.thumbnail((options.max_side, options.max_side), resample=_lanczos())
    lossless = fmt != "JPEG" or "A" in work.getbands()
    return _encode(work, lossless, options, label, where=where)


def _rotated(image: PILImage.Image) -> bool:
    try:
        return image.getexif().get(0x0112, 1) != 1
    except Exception:  # a broken EXIF block is not worth failing the image over
        return False


def _normalised(image: PILImage.Image) -> PILImage.Image:
    """A copy of the first frame with the EXIF orientation applied, in RGB, RGBA or L."""
    from PIL import ImageOps

    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    work = ImageOps.exif_transpose(image)
    if work.mode in ("RGB", "L", "RGBA"):
        return work
    has_alpha = "A" in work.getbands() or "transparency" in work.info
    return work.convert("RGBA" if has_alpha else "RGB")


def _lanczos() -> Any:
    from PIL import Image

    return Image.Resampling.LANCZOS


def _encode(
    work: PILImage.Image, lossless: bool, options: ImageOptions, label: str, *, where: str
) -> tuple[bytes, str, tuple[int, int]]:
    """PNG when lossless fits; else JPEG down a quality ladder, then smaller, until under max_bytes."""
    limit = options.max_bytes
    if lossless:
        data = _save(work, "PNG")
        if limit is None or len(data) <= limit:
            return data, "PNG", work.size
    rgb = _flatten(work)
    while True:
        for quality in _JPEG_QUALITIES:
            data = _save(rgb, "JPEG", quality=quality)
            if limit is None or len(data) <= limit:
                return data, "JPEG", rgb.size
        if min(rgb.size) * 3 // 4 < _MIN_SIDE:
            raise ImageError(
                f"image {label} cannot be made smaller than {limit} bytes (images.max_bytes)", where=where
            )
        rgb = rgb.resize((rgb.width * 3 // 4, rgb.height * 3 // 4), resample=_lanczos())


def _flatten(work: PILImage.Image) -> PILImage.Image:
    from PIL import Image

    if "A" not in work.getbands():
        return work if work.mode in ("RGB", "L") else work.convert("RGB")
    background = Image.new("RGB", work.size, "white")
    background.paste(work, mask=work.getchannel("A"))
    return background


def _save(image: PILImage.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()
