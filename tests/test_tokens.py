"""The script-aware token estimate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from evalkit.client.tokens import estimate_message_tokens, estimate_tokens, truncate_to_tokens


def test_empty_and_short() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("x" * 400) == 100


def test_scripts_cost_more_tokens_per_character_than_english() -> None:
    n = 600
    latin = estimate_tokens("abcdefghij" * (n // 10)) / n
    cyrillic = estimate_tokens("абвгдежзий" * (n // 10)) / n
    thai = estimate_tokens("กขคงจฉชซฌญ" * (n // 10)) / n
    hindi = estimate_tokens("कखगघङचछजझञ" * (n // 11)) / (n // 11 * 11)
    arabic = estimate_tokens("ابتثجحخدذر" * (n // 10)) / n
    cjk = estimate_tokens("你好世界中文字符测试" * (n // 10)) / n
    assert latin == 0.25
    assert 1 / 3 <= cyrillic <= 1 / 2.5
    for rate in (thai, hindi, arabic):
        assert 1 / 2.5 <= rate <= 1 / 1.5
    assert cjk == 1.0


def test_mixed_text_adds_up() -> None:
    english, russian, chinese = (
        "The answer is 42. " * 10,
        "Ответ равен сорока двум. " * 10,
        "答案是四十二。" * 10,
    )
    parts = estimate_tokens(english) + estimate_tokens(russian) + estimate_tokens(chinese)
    assert abs(estimate_tokens(english + russian + chinese) - parts) <= 2


def test_emoji_count_as_several_tokens() -> None:
    assert estimate_tokens("😀" * 10) == 20


def test_message_tokens_count_text_parts_and_overhead_not_images() -> None:
    text = "Describe the picture in detail, please."
    plain = [{"role": "user", "content": text}]
    with_image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10_000}},
            ],
        }
    ]
    assert estimate_message_tokens(plain) == estimate_message_tokens(with_image)
    assert estimate_message_tokens(plain) > estimate_tokens(text)
    two = [{"role": "system", "content": "Be brief."}, *plain]
    assert estimate_message_tokens(two) > estimate_message_tokens(plain) + estimate_tokens("Be brief.")


@given(st.text(max_size=300), st.integers(min_value=0, max_value=60))
def test_truncation_is_the_longest_prefix_within_the_limit(text: str, limit: int) -> None:
    cut = truncate_to_tokens(text, limit)
    assert text.startswith(cut)
    assert estimate_tokens(cut) <= limit
    if cut != text:
        assert estimate_tokens(text[: len(cut) + 1]) > limit


@given(st.text(max_size=200), st.text(max_size=200))
def test_estimate_grows_with_text(a: str, b: str) -> None:
    assert estimate_tokens(a + b) >= estimate_tokens(a)


def test_real_mgsm_questions_cost_more_in_thai_and_russian(shared_data) -> None:
    def question_tokens(lang: str) -> float:
        lines = (shared_data / "mgsm" / f"mgsm_{lang}.tsv").read_text(encoding="utf-8").splitlines()[:50]
        questions = [line.split("\t")[0] for line in lines]
        return sum(map(estimate_tokens, questions)) / len(questions)

    english, russian, thai, chinese = (question_tokens(lang) for lang in ("en", "ru", "th", "zh"))
    assert 35 < english < 80  # MGSM questions are about 200-250 characters
    assert 1.3 * english < russian < 3 * english
    assert 1.3 * english < thai < 4 * english
    assert chinese > english
