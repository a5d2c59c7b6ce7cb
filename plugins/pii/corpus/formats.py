"""What both corpus generators share (`generate.py`, `locales.py`): a line of the corpus and
the check digits of the formats they write."""


def luhn_check_digit(digits):
    """The digit that makes `digits` + it pass the Luhn check (ISO/IEC 7812, card numbers)."""
    for check in range(10):
        total = 0
        for i, d in enumerate(reversed(digits + [check])):
            if i % 2 == 1:
                d *= 2
                if d > 9:
                    d -= 9
            total += d
        if total % 10 == 0:
            return check
    raise AssertionError


def iban_check(country, bban):
    """The two check digits of an IBAN (ISO 7064 mod 97-10)."""
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return "%02d" % (98 - int(numeric) % 97)


def line(text, *entities):
    """A corpus line: the text and its labelled entities, (type, value) pairs found in it."""
    for kind, value in entities:
        assert value in text, (value, text)
    return {"text": text, "entities": [{"type": k, "value": v} for k, v in entities]}
