"""Per-language facts shared by prompts, scorers and the simulator.

`ANSWER_WORDS[lang]` is the word a model is asked to put before its final answer ("Answer: 42").
Codes are ISO 639-1. The Llama 4 languages are ar en fr de hi id it pt es tl th vi; our users add ru.
"""

from __future__ import annotations

LLAMA4_LANGUAGES: tuple[str, ...] = ("ar", "en", "fr", "de", "hi", "id", "it", "pt", "es", "tl", "th", "vi")
CORE_LANGUAGES: tuple[str, ...] = (*LLAMA4_LANGUAGES, "ru")

NAMES: dict[str, str] = {
    "ar": "Arabic", "bn": "Bengali", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "fr": "French", "hi": "Hindi", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sw": "Swahili", "te": "Telugu", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "vi": "Vietnamese", "zh": "Chinese",
}

ANSWER_WORDS: dict[str, str] = {
    "ar": "الإجابة", "bn": "উত্তর", "de": "Antwort", "el": "Απάντηση", "en": "Answer", "es": "Respuesta",
    "fr": "Réponse", "hi": "उत्तर", "id": "Jawaban", "it": "Risposta", "ja": "答え", "pt": "Resposta",
    "ro": "Răspuns", "ru": "Ответ", "sw": "Jibu", "te": "సమాధానం", "th": "คำตอบ", "tl": "Sagot",
    "tr": "Cevap", "vi": "Câu trả lời", "zh": "答案",
}


def answer_word(language: str | None) -> str:
    return ANSWER_WORDS.get(language or "en", "Answer")
