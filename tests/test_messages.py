"""The one reader of chat-message parts: string content, parts lists, images, and odd shapes."""

from __future__ import annotations

from evalkit.client.messages import image_urls, message_text, text_parts
from evalkit.task.render import text_key

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def test_text_and_images_are_read_from_every_shape_a_message_takes() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "Что на рисунке?"}, IMAGE, "stray", 7]}
    assert text_parts(parts) == ["Что на рисунке?"] and image_urls(parts) == ["data:image/png;base64,AAAA"]
    assert message_text({"role": "user", "content": "plain"}) == "plain"
    assert (
        message_text({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text"}]}) == "a\n"
    )
    assert text_parts({"role": "assistant", "content": None}) == [] == image_urls({"content": "x"})
    assert image_urls({"content": [{"type": "image_url", "image_url": None}]}) == [""]


def test_the_simulators_key_ignores_images_but_not_roles_or_text() -> None:
    with_image = [{"role": "user", "content": [{"type": "text", "text": "q"}, IMAGE]}]
    plain = [{"role": "user", "content": "q"}]
    assert text_key(with_image) == text_key(plain)
    assert text_key(plain) != text_key([{"role": "system", "content": "q"}])
    assert text_key(plain) != text_key([{"role": "user", "content": "q2"}])
    assert text_key([{"role": "user", "content": None}]) == text_key([{"role": "user", "content": ""}])
