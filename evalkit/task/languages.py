"""Per-language facts shared by prompts, scorers and the simulator.

`ANSWER_WORDS[lang]` is the word a model is asked to put before its final answer ("Answer: 42").
Codes are ISO 639-1. The Llama 4 languages are ar en fr de hi id it pt es tl th vi; our users add ru.
"""

from __future__ import annotations

LLAMA4_LANGUAGES: tuple[str, ...] = ("ar", "en", "fr", "de", "hi", "id", "it", "pt", "es", "tl", "th", "vi")
CORE_LANGUAGES: tuple[str, ...] = (*LLAMA4_LANGUAGES, "ru")

NAMES: dict[str, str] = {
    "ar": "Arabic",
    "bn": "Bengali",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "hi": "Hindi",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sw": "Swahili",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "zh": "Chinese",
    "az": "Azerbaijani",
    "be": "Belarusian",
    "fa": "Persian",
    "he": "Hebrew",
    "hy": "Armenian",
    "ka": "Georgian",
    "kk": "Kazakh",
    "ko": "Korean",
    "ky": "Kyrgyz",
    "pl": "Polish",
    "tg": "Tajik",
    "uk": "Ukrainian",
    "uz": "Uzbek",
}

ANSWER_WORDS: dict[str, str] = {
    "ar": "الإجابة",
    "bn": "উত্তর",
    "de": "Antwort",
    "el": "Απάντηση",
    "en": "Answer",
    "es": "Respuesta",
    "fr": "Réponse",
    "hi": "उत्तर",
    "id": "Jawaban",
    "it": "Risposta",
    "ja": "答え",
    "pt": "Resposta",
    "ro": "Răspuns",
    "ru": "Ответ",
    "sw": "Jibu",
    "te": "సమాధానం",
    "th": "คำตอบ",
    "tl": "Sagot",
    "tr": "Cevap",
    "vi": "Câu trả lời",
    "zh": "答案",
    "az": "Cavab",
    "be": "Адказ",
    "fa": "پاسخ",
    "he": "תשובה",
    "hy": "Պատասխան",
    "ka": "პასუხი",
    "kk": "Жауабы",
    "ko": "답",
    "ky": "Жооп",
    "pl": "Odpowiedź",
    "tg": "Ҷавоб",
    "uk": "Відповідь",
    "uz": "Javob",
}


def answer_word(language: str | None) -> str:
    return ANSWER_WORDS.get(language or "en", "Answer")


# --- Answer scoring facts (used by evalkit.scorers). Phrases are lower case; scorers match them
# case-insensitively. A *label* must be followed by a colon ("Ответ: 42"); a *statement* needs none
# ("The answer is 42"). English is always tried as well as the sample's language.

ANSWER_LABELS: dict[str, tuple[str, ...]] = {
    "ar": ("الإجابة النهائية", "الإجابة الصحيحة", "الإجابة", "الاجابة", "الجواب"),
    "bn": ("চূড়ান্ত উত্তর", "উত্তর"),
    "de": ("endgültige antwort", "richtige antwort", "antwort", "lösung", "ergebnis"),
    "el": ("τελική απάντηση", "απάντηση"),
    "en": ("final answer", "correct answer", "answer"),
    "es": ("respuesta final", "respuesta correcta", "respuesta"),
    "fa": ("پاسخ نهایی", "پاسخ", "جواب"),
    "fr": ("réponse finale", "bonne réponse", "réponse", "reponse"),
    "hi": ("अंतिम उत्तर", "सही उत्तर", "उत्तर", "जवाब"),
    "id": ("jawaban akhir", "jawaban yang benar", "jawaban"),
    "it": ("risposta finale", "risposta corretta", "risposta"),
    "ja": ("最終的な答え", "最終回答", "答え", "解答", "回答", "答"),
    "pt": ("resposta final", "resposta correta", "resposta"),
    "ro": ("răspuns final", "răspunsul corect", "răspuns", "raspuns"),
    "ru": ("окончательный ответ", "итоговый ответ", "правильный ответ", "ответ"),
    "sw": ("jibu la mwisho", "jibu"),
    "te": ("చివరి సమాధానం", "సమాధానం", "జవాబు"),
    "th": ("คำตอบสุดท้าย", "คำตอบที่ถูกต้อง", "คำตอบ"),
    "tl": ("huling sagot", "tamang sagot", "sagot"),
    "tr": ("nihai cevap", "doğru cevap", "cevap", "yanıt"),
    "vi": ("đáp án cuối cùng", "câu trả lời cuối cùng", "câu trả lời", "đáp án", "trả lời"),
    "zh": ("最终答案", "正确答案", "答案", "答"),
    "az": ("son cavab", "yekun cavab", "düzgün cavab", "cavab"),
    "be": ("канчатковы адказ", "правільны адказ", "адказ"),
    "he": ("התשובה הסופית", "תשובה סופית", "התשובה הנכונה", "התשובה", "תשובה"),
    "hy": ("վերջնական պատասխան", "ճիշտ պատասխան", "պատասխանը", "պատասխան"),
    "ka": ("საბოლოო პასუხი", "სწორი პასუხი", "პასუხი"),
    "kk": ("соңғы жауап", "дұрыс жауап", "жауабы", "жауап"),
    "ko": ("최종 답변", "최종 답", "정답", "답변", "답"),
    "ky": ("акыркы жооп", "туура жооп", "жообу", "жооп"),
    "pl": ("ostateczna odpowiedź", "prawidłowa odpowiedź", "poprawna odpowiedź", "odpowiedź", "odpowiedz"),
    "tg": ("ҷавоби ниҳоӣ", "ҷавоби дуруст", "ҷавоб", "посух"),
    "uk": ("остаточна відповідь", "правильна відповідь", "відповідь"),
    # Uzbek is written in Latin and in Cyrillic script.
    "uz": (
        "yakuniy javob",
        "to‘g‘ri javob",
        "to'g'ri javob",
        "javob",
        "якуний жавоб",
        "тўғри жавоб",
        "жавоб",
    ),
}

ANSWER_STATEMENTS: dict[str, tuple[str, ...]] = {
    "ar": ("الإجابة هي", "الجواب هو", "الإجابة الصحيحة هي"),
    "bn": ("উত্তর হল", "উত্তর হলো"),
    "de": ("die antwort ist", "die antwort lautet", "die richtige antwort ist", "die lösung ist"),
    "el": ("η απάντηση είναι",),
    "en": ("the final answer is", "the correct answer is", "the answer is", "final answer is"),
    "es": ("la respuesta final es", "la respuesta correcta es", "la respuesta es"),
    "fr": ("la réponse finale est", "la bonne réponse est", "la réponse est"),
    "id": ("jawaban yang benar adalah", "jawabannya adalah", "jawaban akhirnya adalah"),
    "it": ("la risposta corretta è", "la risposta finale è", "la risposta è"),
    "ja": ("答えは",),
    "pt": ("a resposta correta é", "a resposta final é", "a resposta é"),
    "ro": ("răspunsul este", "răspunsul corect este"),
    "ru": ("ответ равен", "ответ будет", "ответом является"),
    "sw": ("jibu ni",),
    "th": ("คำตอบคือ",),
    "tl": ("ang tamang sagot ay", "ang sagot ay"),
    "tr": ("cevap şudur",),
    "vi": ("đáp án là", "câu trả lời là"),
    "zh": ("最终答案是", "正确答案是", "答案是", "答案为"),
}

# Articles removed by extractive QA normalisation, only in the sample's own language. Elided forms
# ("l'") are removed before punctuation; Arabic "ال" is a clitic prefix and handled separately.
ARTICLES: dict[str, tuple[str, ...]] = {
    "en": ("a", "an", "the"),
    "es": ("el", "la", "los", "las", "un", "una", "unos", "unas"),
    "fr": ("le", "la", "les", "un", "une", "des"),
    "de": ("der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines"),
    "it": ("il", "lo", "la", "i", "gli", "le", "un", "uno", "una"),
    "pt": ("o", "a", "os", "as", "um", "uma", "uns", "umas"),
}
ELIDED_ARTICLES: dict[str, tuple[str, ...]] = {"fr": ("l",), "it": ("l", "un")}

# Yes/no words (lower case) mapped to canonical "yes"/"no" for yes/no questions.
YES_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("yes", "true", "correct"),
    "ru": ("да", "верно"),
    "es": ("sí", "si"),
    "fr": ("oui",),
    "de": ("ja", "stimmt"),
    "hi": ("हाँ", "हां", "जी हाँ"),
    "th": ("ใช่", "ถูกต้อง"),
    "vi": ("có", "đúng"),
    "ar": ("نعم",),
    "id": ("ya", "benar"),
    "it": ("sì", "si"),
    "pt": ("sim",),
    "tl": ("oo", "opo"),
    "zh": ("是", "是的", "对"),
    "ja": ("はい",),
    "bn": ("হ্যাঁ",),
    "tr": ("evet",),
    "el": ("ναι",),
}
NO_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("no", "false", "incorrect"),
    "ru": ("нет", "неверно"),
    "es": ("no",),
    "fr": ("non",),
    "de": ("nein",),
    "hi": ("नहीं", "ना"),
    "th": ("ไม่", "ไม่ใช่", "ไม่ถูกต้อง"),
    "vi": ("không", "sai"),
    "ar": ("لا",),
    "id": ("tidak", "bukan"),
    "it": ("no",),
    "pt": ("não", "nao"),
    "tl": ("hindi",),
    "zh": ("不", "不是", "否"),
    "ja": ("いいえ",),
    "bn": ("না",),
    "tr": ("hayır",),
    "el": ("όχι",),
}

# Predictions that mean "there is no answer" (compared after normalisation; English always counts).
NO_ANSWER_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("no answer", "unanswerable", "n/a", "none", "unknown", "cannot be answered", "not answerable"),
    "ru": ("нет ответа", "ответа нет", "неизвестно", "невозможно ответить"),
    "es": ("sin respuesta", "no hay respuesta", "desconocido"),
    "fr": ("pas de réponse", "aucune réponse", "inconnu"),
    "de": ("keine antwort", "unbekannt"),
    "it": ("nessuna risposta", "sconosciuto"),
    "pt": ("sem resposta", "desconhecido"),
    "zh": ("无答案", "没有答案", "未知"),
    "ja": ("回答なし", "不明"),
    "ar": ("لا توجد إجابة", "لا إجابة"),
}

# Number formats. Decimal comma languages read "1,5" as 1.5; some of them also group thousands with
# a dot ("2.125" = 2125) and some with a plain space ("2 125"). No-break and narrow no-break spaces
# group thousands in every language.
DECIMAL_COMMA: frozenset[str] = frozenset(
    {
        "de",
        "es",
        "pt",
        "it",
        "id",
        "fr",
        "ru",
        "tr",
        "vi",
        "nl",
        "da",
        "ro",
        "el",
        "uk",
        "pl",
        "cs",
        "sk",
        "sv",
        "no",
        "nb",
        "fi",
        "et",
        "lv",
        "lt",
        "bg",
        "hu",
        "kk",
        "be",
        "hr",
        "sl",
        "sr",
        "az",
        "hy",
        "ka",
        "ky",
        "tg",
        "uz",
    }
)
DOT_GROUPING: frozenset[str] = frozenset(
    {"de", "es", "pt", "it", "id", "tr", "vi", "nl", "da", "ro", "el", "hr", "sl", "sr"}
)
SPACE_GROUPING: frozenset[str] = frozenset(
    {
        "fr",
        "ru",
        "es",
        "pt",
        "uk",
        "pl",
        "cs",
        "sk",
        "sv",
        "no",
        "nb",
        "fi",
        "et",
        "lv",
        "lt",
        "bg",
        "hu",
        "kk",
        "be",
        "az",
        "hy",
        "ka",
        "ky",
        "tg",
        "uz",
    }
)
