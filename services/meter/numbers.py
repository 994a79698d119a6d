"""Country of a phone number, for the countries the platform can launch.

E.164 country calling codes from ITU-T E.164 "List of ITU-T Recommendation E.164 assigned country codes"
(the ITU's Operational Bulletin annex, complement to E.164, 2016 edition with amendments), checked 2026-11.
+1 is shared by the NANP countries (US, CA and others): Twilio's `ToCountry` parameter, when sent, decides;
without it a +1 number cannot be attributed and the callback is refused rather than guessed.
"""

from __future__ import annotations

CALLING_CODES: dict[str, str] = {
    "52": "MX",
    "55": "BR",
    "54": "AR",
    "56": "CL",
    "57": "CO",
    "49": "DE",
    "43": "AT",
    "41": "CH",
    "33": "FR",
    "44": "GB",
    "39": "IT",
    "34": "ES",
    "351": "PT",
    "31": "NL",
    "32": "BE",
    "353": "IE",
    "46": "SE",
    "47": "NO",
    "45": "DK",
    "358": "FI",
    "81": "JP",
    "65": "SG",
    "61": "AU",
    "64": "NZ",
    "91": "IN",
}
NANP = ("US", "CA")


def country_of(number: str, stated: str | None) -> str | None:
    """ISO country of an E.164 number; `stated` is Twilio's ToCountry and must agree with the number."""
    if not number.startswith("+") or not number[1:].isdigit() or not 8 <= len(number) <= 16:
        return None
    digits = number[1:]
    if digits.startswith("1"):
        return stated if stated in NANP else None
    for length in (3, 2):
        country = CALLING_CODES.get(digits[:length])
        if country is not None:
            return country if stated in (None, "", country) else None
    return None
