"""The typed rendered request: its text, cache key, token bound and estimate, from one value."""

from __future__ import annotations

from evalkit import Sample, Task
from evalkit.client.tokens import estimate_message_tokens
from evalkit.task.render import Rendered, render, request_key

IMAGE_URL = "data:image/png;base64,iVBORw0KGgo="
MESSAGES = [
    {"role": "system", "content": "Отвечай кратко."},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Что на картинке? 🙂"},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
            {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}},
        ],
    },
]
PARAMS = {"max_tokens": 64, "temperature": 0.0, "seed": 7, "reasoning": {"effort": "low"}}


def test_the_cache_key_is_the_one_existing_caches_hold() -> None:
    # computed by the key function before it moved into the request; a change here would make every
    # existing cache miss and pay again, so it needs a cache schema bump, not a new pin
    rendered = Rendered(messages=MESSAGES)
    assert rendered.cache_key("evalkit-sim/seed=0", "openai/gpt-4o-mini", PARAMS, 1) == (
        "44b901b414a2a00d72ba7c7a5bcae427757b0e56a683e34e701d96bf9fc31b85"
    )
    assert request_key("https://routerai.ru/api/v1", "m", [{"role": "user", "content": "q"}], {}, 0) == (
        "74db8687656a80324af428c347461c188f28e4cb22b9bcbde608e5085f9c5192"
    )


def test_the_cache_key_changes_with_every_part_of_the_request_but_not_with_dict_order() -> None:
    base = Rendered(messages=MESSAGES).cache_key("e", "m", PARAMS, 0)
    other_image = [*MESSAGES[:-1], {**MESSAGES[-1], "content": [MESSAGES[-1]["content"][0], {
        "type": "image_url", "image_url": {"url": IMAGE_URL + "A"}}]}]  # fmt: skip
    variants = [
        Rendered(messages=MESSAGES).cache_key("e2", "m", PARAMS, 0),
        Rendered(messages=MESSAGES).cache_key("e", "m2", PARAMS, 0),
        Rendered(messages=MESSAGES).cache_key("e", "m", {**PARAMS, "seed": 8}, 0),
        Rendered(messages=MESSAGES).cache_key("e", "m", PARAMS, 1),
        Rendered(messages=MESSAGES[1:]).cache_key("e", "m", PARAMS, 0),
        Rendered(messages=other_image).cache_key("e", "m", PARAMS, 0),
    ]
    assert base not in variants and len(set(variants)) == len(variants)
    reordered = dict(reversed(list(PARAMS.items())))
    assert Rendered(messages=MESSAGES).cache_key("e", "m", reordered, 0) == base


def test_text_is_the_last_messages_text_without_images() -> None:
    assert Rendered(messages=MESSAGES).text == "Что на картинке? 🙂"
    assert Rendered(messages=[]).text == ""


def test_the_prompt_token_bound_covers_every_byte_and_the_estimate() -> None:
    text = "Сколько будет 2+2? ответ: 四 🙂 " * 50
    rendered = Rendered(messages=[{"role": "system", "content": "Σ"}, {"role": "user", "content": text}])
    assert rendered.prompt_token_bound >= len(text.encode()) + len("Σ".encode())
    assert rendered.prompt_token_bound >= rendered.estimated_tokens
    assert rendered.estimated_tokens == estimate_message_tokens(rendered.messages)
    # images are priced per image, so their bytes are not prompt text
    assert (
        Rendered(messages=MESSAGES).prompt_token_bound
        == Rendered(
            messages=[*MESSAGES[:-1], {"role": "user", "content": "Что на картинке? 🙂"}]
        ).prompt_token_bound
    )


def test_a_rendered_sample_owns_its_images_and_its_text_key(tmp_path) -> None:
    from PIL import Image

    path = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)
    task = Task(
        name="colours",
        family="vision",
        samples=[Sample(id="1", input="What colour?", target="red", images=[str(path)])],
        scorer="exact",
    )
    rendered = render(task, task.samples[0])
    assert len(rendered.images) == 1 and rendered.text.endswith("What colour?")
    plain = render(task, task.samples[0].model_copy(update={"images": []}))
    assert rendered.text_key == plain.text_key  # how the simulator finds the sample, whatever the image
    assert rendered.cache_key("e", "m", {}, 0) != plain.cache_key("e", "m", {}, 0)
