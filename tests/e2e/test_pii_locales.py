"""The `pii` filter on text it was not written against, end to end: values glued to Japanese,
Chinese, Korean and Thai text, full-width forms, national phone formats, every card brand, the
token formats people paste, and the `regions` and `exempt` settings, through the real gateway
with the official openai SDK; the mock records what the upstream received.

Every value here is generated from a public format rule (libphonenumber's plans, the card
brands' IIN ranges and Luhn, the services' documented token formats), not taken from an
evaluation. Each gateway logs at `debug`, and after every test no gateway's stderr may contain a
raw value it was sent.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

import mock_openai as mo
from harness import BUNDLED, FILTERS, base_config, chat_body, error_body, keys_for, provider

PLUGINS = BUNDLED + FILTERS

# (prompt, the value in it, its placeholder): values right against unspaced scripts.
GLUED = {
    "ja-email": ("メニューはyuki.sato@docomo.ne.jp、よろしく。", "yuki.sato@docomo.ne.jp", "[EMAIL_1]"),
    "ja-ssn": ("番号はクール045-41-5136。", "045-41-5136", "[SSN_1]"),
    "ja-phone": ("電話番号は090-1234-5678です。", "090-1234-5678", "[PHONE_1]"),
    "zh-mobile": ("我的手机是13812345678，谢谢。", "13812345678", "[PHONE_1]"),
    "zh-ip": ("服务器IP是203.0.113.7，请检查。", "203.0.113.7", "[IP_1]"),
    "ko-email": ("minjun.kim@naver.com으로 연락 주세요.", "minjun.kim@naver.com", "[EMAIL_1]"),
    "th-iban": ("บัญชีDE89370400440532013000ค่ะ", "DE89370400440532013000", "[IBAN_1]"),
    # Full-width forms are matched as ASCII; what the user typed is what gets replaced.
    "ja-wide-phone": ("連絡先：０３－１２３４－５６７８まで。", "０３－１２３４－５６７８", "[PHONE_1]"),
    "ja-wide-email": ("メールはｈ．ｔａｎａｋａ＠ｅｘａｍｐｌｅ．ｊｐです。", "ｈ．ｔａｎａｋａ＠ｅｘａｍｐｌｅ．ｊｐ",
                      "[EMAIL_1]"),
}

# National formats, as libphonenumber writes them (and a US number with its extension).
PHONES = {
    "de-trunk": "030 12345678",
    "de-mobile-compact": "01701234567",
    "fr-pairs": "01 53 79 88 72",
    "it-mobile": "312 345 6789",
    "jp-fixed": "0465-47-7995",
    "br-mobile": "(11) 96123-4567",
    "in-mobile": "98765 43210",
    "ru-trunk": "8 (912) 345-67-89",
    "us-extension": "415-555-2671 x1833",
    "kr-mobile": "010-2000-0000",
}

# Luhn-valid numbers in each brand's IIN range, grouped as printed or not at all.
CARDS = {
    "visa-13-grouped": "4222 2222 22222",
    "maestro-12": "6759 6498 2648",
    "maestro-19": "6304 0000 0000 0000 018",
    "jcb-15": "2131 0000 0000 001",
    "uatp-15": "1234 5678 9012 347",
    "mir": "2200-1234-5678-9019",
    "unionpay-19": "6212345678901234569",
    "amex": "3782 822463 10005",
}

# Tokens in each service's documented format (the bodies are random, not real keys).
SECRETS = {
    "gitlab": "glpat-xK9mP2vQ7nR4tY8wZ1aB",
    "huggingface": "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",
    "slack": "xoxb-2048123456-4096123456789-AbCdEfGhIjKlMnOpQrStUvWx",
    "npm": "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "groq": "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",
    "sendgrid": "SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012",
    "url-password": "S3cr3t-Pa55w0rd",
}

# Numbers that are not personal data, the way prompts are full of them.
CLEAN = [
    "Выручка составила 6 852 828 117 рублей, на 12% больше.",
    "注文番号7760-1466は2024/06/16に発送しました。",
    "Timestamp 1733400000 in the logs, build 4521, version 2.14.3.",
    "Der Umsatz lag bei 960.600.089 Euro; Bestellung 4931-6390 folgt am 15.01.2025.",
    "Los números ganadores son 04 15 23 31 42 48.",
    "sk-learn and hf_hub_download are libraries; key-value stores are fast.",
]

EXEMPT = {"10.0.0.12": "[IP_1]", "4242 4242 4242 4242": "[CARD_1]",
          "ops@example.com": "[EMAIL_1]"}

ALL_VALUES = ([v for _, v, _ in GLUED.values()] + list(PHONES.values()) + list(CARDS.values())
              + list(SECRETS.values()) + list(EXEMPT) + ["4539 1488 0343 6467", "8.8.4.4"])

FLAVOURS: dict[str, dict[str, Any]] = {
    "default": {},
    "us-only": {"regions": ["US"]},
    "exempt": {"exempt": ["private-ip", "test-card", "documentation-email"]},
}


class Env:
    """One upstream and a gateway per `pii` settings flavour, started on first use."""

    def __init__(self, module_mocks, module_gateways) -> None:
        self.factory = module_gateways
        self.upstream: mo.MockOpenAI = module_mocks.add("public")
        self.gws: dict[str, Any] = {}

    def gw(self, flavour: str):
        if flavour not in self.gws:
            cfg = base_config(providers={"public": provider(self.upstream, ["gpt-pub"])},
                              models={"chat": {"targets": ["public/gpt-pub"]}})
            cfg["pipeline"]["filters"] = ["pii"]
            cfg["pipeline"]["settings"] = {"pii": FLAVOURS[flavour]}
            env = {**keys_for(self.upstream), "FREEWAY_LOG": "debug"}
            self.gws[flavour] = self.factory.start(cfg, env=env, plugins=PLUGINS)
        return self.gws[flavour]

    def send(self, flavour: str, prompt: str) -> str:
        """The prompt's text as the upstream received it."""
        c = self.gw(flavour).client().chat.completions.create(**chat_body("chat", prompt))
        assert c.choices[0].message.content == "hello from public"
        return self.upstream.last().json["messages"][0]["content"]


@pytest.fixture(scope="module")
def env(module_mocks, module_gateways):
    return Env(module_mocks, module_gateways)


@pytest.fixture
def e(env):
    """The module's environment with the upstream reset; afterwards, no gateway may have logged
    a raw value during the test."""
    env.upstream.reset()
    marks = {name: gw.log_mark() for name, gw in env.gws.items()}
    yield env
    for name, gw in env.gws.items():
        said = gw.stderr_since(marks.get(name, 0))
        leaked = [v for v in ALL_VALUES if v in said]
        assert not leaked, f"gateway '{name}' logged raw PII {leaked}:\n{said[-3000:]}"


@pytest.mark.parametrize("case", list(GLUED))
def test_values_glued_to_unspaced_scripts_are_redacted(e, case):
    prompt, value, placeholder = GLUED[case]
    assert e.send("default", prompt) == prompt.replace(value, placeholder)
    assert value.encode() not in e.upstream.last().raw


@pytest.mark.parametrize("case", list(PHONES))
def test_national_phone_formats_are_redacted_with_their_extension(e, case):
    number = PHONES[case]
    # No phone word before it: the numbering plan alone decides.
    prompt = f"Reach me at {number} after six."
    assert e.send("default", prompt) == "Reach me at [PHONE_1] after six."


@pytest.mark.parametrize("brand", list(CARDS))
def test_every_card_brand_in_any_grouping_is_redacted(e, brand):
    prompt = f"Charge {CARDS[brand]} for the order."
    assert e.send("default", prompt) == "Charge [CARD_1] for the order."


@pytest.mark.parametrize("service", list(SECRETS))
def test_service_tokens_block_the_request(e, service):
    value = SECRETS[service]
    prompt = (f"DATABASE_URL=postgres://app:{value}@db.internal:5432/app"
              if service == "url-password" else f"Here is my key {value} — why does it fail?")
    with e.gw("default").http() as h:
        r = h.post("/v1/chat/completions", json=chat_body("chat", prompt))
    assert r.status_code == 400, r.text
    err = error_body(r)
    assert err["code"] == "blocked_by_filter" and "data of type secret" in err["message"], err
    assert value not in r.text
    assert e.upstream.chat_requests == [], "a blocked request must not reach the upstream"


@pytest.mark.parametrize("prompt", CLEAN)
def test_numbers_that_are_not_personal_data_pass_untouched(e, prompt):
    assert e.send("default", prompt) == prompt


def test_regions_setting_limits_national_formats_but_not_international_ones(e):
    german = "Ruf mich unter 030 12345678 an."
    assert e.send("default", german) == "Ruf mich unter [PHONE_1] an."
    assert e.send("us-only", german) == german
    # A `+` number is checked against its own country's plan whatever the setting says.
    assert e.send("us-only", "Ruf +49 30 12345678 an.") == "Ruf [PHONE_1] an."
    assert e.send("us-only", "Call 415-555-2671.") == "Call [PHONE_1]."


def test_exemptions_are_off_by_default_and_exempt_only_what_they_name(e):
    prompt = "Host 10.0.0.12, card 4242 4242 4242 4242, mail ops@example.com."
    redacted = "Host [IP_1], card [CARD_1], mail [EMAIL_1]."
    assert e.send("default", prompt) == redacted
    assert e.send("exempt", prompt) == prompt
    real = "Host 8.8.4.4, card 4539 1488 0343 6467."
    assert e.send("exempt", real) == "Host [IP_1], card [CARD_1]."


def test_unknown_region_or_exemption_is_refused_at_start_naming_the_key(gateways, module_mocks):
    upstream = module_mocks.add("refusal")
    for settings, named in (({"regions": ["DE", "XX"]}, "XX"),
                            ({"exempt": ["private-ips"]}, "private-ips")):
        cfg = base_config(providers={"refusal": provider(upstream, ["m"])},
                          models={"chat": {"targets": ["refusal/m"]}})
        cfg["pipeline"]["filters"] = ["pii"]
        cfg["pipeline"]["settings"] = {"pii": settings}
        err = gateways.start_refused(cfg, env=keys_for(upstream), plugins=PLUGINS)
        assert "pipeline.settings.pii" in err and named in err, err


def test_the_sdk_sees_a_refusal_as_a_bad_request(e):
    with pytest.raises(openai.BadRequestError) as raised:
        e.gw("default").client().chat.completions.create(
            **chat_body("chat", f"token {SECRETS['huggingface']}"))
    assert "data of type secret" in raised.value.message
    assert SECRETS["huggingface"] not in raised.value.message
