"""Rubles as people read them: the terminal tables and the HTML report show money the same way."""

from __future__ import annotations

import math


def format_rub(value: float) -> str:
    """₽ for display: more decimals for small amounts (money is never rounded before this point)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞"
    if abs(value) >= 100:
        return f"{value:,.0f}".replace(",", " ")
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}" if value else "0"
