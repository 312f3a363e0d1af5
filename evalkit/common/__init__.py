"""Small pieces every layer uses: errors, clock, text safety, lazy names, identity, redaction."""
