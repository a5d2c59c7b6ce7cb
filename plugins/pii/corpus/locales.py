#!/usr/bin/env python3
"""Writes locales.jsonl: every entity type in fifteen locales' sentences, and clean texts.

    python3 -m pip install phonenumbers==9.0.43
    python3 plugins/pii/corpus/locales.py   # rewrites plugins/pii/corpus/locales.jsonl

The hand-written corpus (`generate.py`, `pii.jsonl`) checks the cases the detectors were
written against; this one checks text they were not. Every value is generated from a public
format rule, never copied from an evaluation: phone numbers are random numbers that
libphonenumber (the `phonenumbers` package) validates for the locale's region, written the
ways it formats them (national, international, E.164) and the ways people also write them
(compact mobiles, NANP dashes, extensions); cards are random Luhn-valid numbers in each
brand's IIN ranges and lengths, grouped as printed; IBANs follow the SWIFT registry's BBAN
shapes with mod-97 check digits; SSNs avoid the never-issued ranges; secrets follow each
service's documented token format. They sit in sentences of each language, with the language's
own punctuation: in Japanese, Chinese and Thai with no space around them, which is how those
languages are written. A few values use full-width forms, as Japanese input methods type them.

Clean lines are the numbers prompts are full of that are not personal data, written the
locale's way: dates, times, prices, thousands, versions, order numbers, postcodes, Unix
timestamps, hashes, coordinates. The eval reports how many of them the filter would alter.

Seeded: running it twice writes the same file.
"""

import json
import os
import random
import string

import phonenumbers
from phonenumbers import PhoneNumberFormat as F
from phonenumbers import PhoneNumberType as T

from formats import iban_check, line, luhn_check_digit

rng = random.Random(20261205)
lines = []


def add(text, *entities):
    lines.append(line(text, *entities))


# ---------------------------------------------------------------------------------------------
# Locales: region, sentence frames ({L}: the type's word, {v}: the value) and words per type.

LOCALES = {
    "en_US": ("US", ["My {L} is {v}, thanks.", "{L}: {v}", "Please use {v} for this.",
                     "Can you double-check {v} before Friday?", "Updated record ({v}) attached."]),
    "en_GB": ("GB", ["My {L} is {v}, cheers.", "{L}: {v}", "Could you use {v} instead?",
                     "I've noted {v} on the form.", "Details — {v} — as discussed."]),
    "en_IN": ("IN", ["My {L} is {v}, kindly note.", "{L}: {v}", "Please update {v} in the system.",
                     "Do the needful with {v} today.", "Ref. your mail, {v} is correct."]),
    "de_DE": ("DE", ["Meine {L} ist {v}, danke.", "{L}: {v}", "Bitte nimm {v} dafür.",
                     "Kannst du {v} noch einmal prüfen?", "Anbei die Daten ({v}) zur Kenntnis."]),
    "fr_FR": ("FR", ["Mon {L} est {v}, merci.", "{L} : {v}", "Utilise {v} pour ça.",
                     "Peux-tu vérifier {v} avant vendredi ?", "Voici les coordonnées « {v} »."]),
    "es_ES": ("ES", ["Mi {L} es {v}, gracias.", "{L}: {v}", "Usa {v} para esto.",
                     "¿Puedes revisar {v} antes del viernes?", "Te paso los datos: {v}."]),
    "it_IT": ("IT", ["Il mio {L} è {v}, grazie.", "{L}: {v}", "Usa {v} per questo.",
                     "Puoi controllare {v} entro venerdì?", "Ecco i dati ({v}) richiesti."]),
    "pt_BR": ("BR", ["Meu {L} é {v}, obrigado.", "{L}: {v}", "Use {v} para isso.",
                     "Pode verificar {v} até sexta?", "Segue o dado: {v}."]),
    "nl_NL": ("NL", ["Mijn {L} is {v}, bedankt.", "{L}: {v}", "Gebruik {v} hiervoor.",
                     "Kun je {v} nog even controleren?", "Gegevens ({v}) in de bijlage."]),
    "pl_PL": ("PL", ["Mój {L} to {v}, dzięki.", "{L}: {v}", "Użyj {v} do tego.",
                     "Czy możesz sprawdzić {v} do piątku?", "Przesyłam dane: {v}."]),
    "ru_RU": ("RU", ["Мой {L}: {v}, спасибо.", "{L}: {v}", "Используй {v} для этого.",
                     "Проверь, пожалуйста, {v} до пятницы.", "Данные («{v}») во вложении."]),
    "ja_JP": ("JP", ["私の{L}は{v}です。", "{L}：{v}", "{v}までご連絡ください。",
                     "念のため{v}を確認してください。", "メニューは{v}、よろしくお願いします。"]),
    "zh_CN": ("CN", ["我的{L}是{v}，谢谢。", "{L}：{v}", "请用{v}处理。",
                     "麻烦确认一下{v}。", "资料（{v}）已附上。"]),
    "ko_KR": ("KR", ["제 {L}는 {v}입니다.", "{L}: {v}", "{v}으로 연락 주세요.",
                     "{v}를 확인해 주세요.", "자료({v}) 첨부합니다."]),
    "th_TH": ("TH", ["{L}ของฉันคือ{v}ค่ะ", "{L}: {v}", "กรุณาใช้{v}นะครับ",
                     "ช่วยตรวจสอบ{v}ด้วย", "ข้อมูล ({v}) แนบมาแล้ว"]),
}

WORDS = {
    "en": {"email": "email", "phone": "phone number", "card": "card number", "iban": "IBAN",
           "ssn": "SSN", "ip": "server IP", "secret": "API key"},
    "de": {"email": "E-Mail", "phone": "Telefonnummer", "card": "Kartennummer", "iban": "IBAN",
           "ssn": "SSN", "ip": "Server-IP", "secret": "API-Schlüssel"},
    "fr": {"email": "e-mail", "phone": "numéro", "card": "numéro de carte", "iban": "IBAN",
           "ssn": "SSN", "ip": "adresse IP", "secret": "clé d'API"},
    "es": {"email": "correo", "phone": "teléfono", "card": "número de tarjeta", "iban": "IBAN",
           "ssn": "SSN", "ip": "IP del servidor", "secret": "clave de API"},
    "it": {"email": "indirizzo email", "phone": "numero di telefono", "card": "numero di carta",
           "iban": "IBAN", "ssn": "SSN", "ip": "indirizzo IP", "secret": "chiave API"},
    "pt": {"email": "e-mail", "phone": "telefone", "card": "número do cartão", "iban": "IBAN",
           "ssn": "SSN", "ip": "IP do servidor", "secret": "chave de API"},
    "nl": {"email": "e-mailadres", "phone": "telefoonnummer", "card": "kaartnummer",
           "iban": "IBAN", "ssn": "SSN", "ip": "server-IP", "secret": "API-sleutel"},
    "pl": {"email": "e-mail", "phone": "numer telefonu", "card": "numer karty", "iban": "IBAN",
           "ssn": "SSN", "ip": "adres IP", "secret": "klucz API"},
    "ru": {"email": "email", "phone": "телефон", "card": "номер карты", "iban": "IBAN",
           "ssn": "SSN", "ip": "IP сервера", "secret": "ключ API"},
    "ja": {"email": "メール", "phone": "電話番号", "card": "カード番号", "iban": "口座番号",
           "ssn": "SSN", "ip": "サーバーのIP", "secret": "APIキー"},
    "zh": {"email": "邮箱", "phone": "电话", "card": "卡号", "iban": "账号", "ssn": "SSN",
           "ip": "服务器IP", "secret": "密钥"},
    "ko": {"email": "이메일", "phone": "전화번호", "card": "카드 번호", "iban": "계좌",
           "ssn": "SSN", "ip": "서버 IP", "secret": "API 키"},
    "th": {"email": "อีเมล", "phone": "เบอร์โทร", "card": "เลขบัตร", "iban": "บัญชี",
           "ssn": "SSN", "ip": "ไอพี", "secret": "คีย์"},
}

NAMES = {
    "en_US": ["james.miller", "emily_johnson", "mike.davis88", "sarah.w"],
    "en_GB": ["oliver.smith", "amelia.jones", "harry.taylor", "j.evans"],
    "en_IN": ["rahul.sharma", "priya.patel", "amit_kumar91", "sneha.reddy"],
    "de_DE": ["lukas.mueller", "anna.schmidt", "j.weber", "felix.wagner"],
    "fr_FR": ["camille.martin", "lucas.bernard", "chloe.dubois", "l.moreau"],
    "es_ES": ["lucia.garcia", "hugo.martinez", "m.lopez", "sofia.sanchez"],
    "it_IT": ["giulia.rossi", "marco.russo", "f.romano", "chiara.colombo"],
    "pt_BR": ["joao.silva", "maria.santos", "pedro.oliveira", "ana_souza"],
    "nl_NL": ["daan.devries", "emma.jansen", "s.bakker", "lotte.visser"],
    "pl_PL": ["jakub.nowak", "zofia.kowalska", "a.wisniewski", "maja.wojcik"],
    "ru_RU": ["ivan.petrov", "olga.smirnova", "d.volkov", "anna.kuznetsova"],
    "ja_JP": ["h.tanaka", "yuki.sato", "kenji.suzuki", "aoi_takahashi"],
    "zh_CN": ["wang.wei", "li.na88", "zhang_min", "chen.jie"],
    "ko_KR": ["minjun.kim", "seoyeon.lee", "jh.park", "jiwoo.choi"],
    "th_TH": ["somchai.s", "suda.k", "anan_p", "malee.t"],
}

DOMAINS = {
    "US": ["gmail.com", "outlook.com", "acme-corp.us"], "GB": ["btinternet.com", "company.co.uk"],
    "IN": ["gmail.com", "rediffmail.com", "infotech.co.in"], "DE": ["web.de", "gmx.de", "firma-gmbh.de"],
    "FR": ["orange.fr", "free.fr", "societe.fr"], "ES": ["correo.es", "telefonica.net"],
    "IT": ["libero.it", "azienda.it"], "BR": ["uol.com.br", "empresa.com.br"],
    "NL": ["ziggo.nl", "bedrijf.nl"], "PL": ["wp.pl", "firma.com.pl"], "RU": ["yandex.ru", "mail.ru"],
    "JP": ["yahoo.co.jp", "docomo.ne.jp", "kaisha.co.jp"], "CN": ["qq.com", "163.com", "gongsi.cn"],
    "KR": ["naver.com", "daum.net", "hoesa.co.kr"], "TH": ["hotmail.co.th", "bangkokmail.com"],
}

IBAN_COUNTRY = {"US": "DE", "GB": "GB", "IN": "AE", "DE": "DE", "FR": "FR", "ES": "ES", "IT": "IT",
                "BR": "BR", "NL": "NL", "PL": "PL", "RU": "CH", "JP": "BE", "CN": "AT",
                "KR": "PT", "TH": "SA"}


def rand(alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


def wide(text):
    """Full-width forms of the ASCII characters in `text` (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# ---------------------------------------------------------------------------------------------
# Values


def email(locale, region):
    name = rng.choice(NAMES[locale])
    if rng.random() < 0.3:
        name += str(rng.randrange(1, 99))
    if rng.random() < 0.15:
        name += "+" + rng.choice(["news", "work", "shop"])
    return name + "@" + rng.choice(DOMAINS[region])


def phone(region):
    """A random number libphonenumber validates for `region`, written one of the usual ways."""
    kind = rng.choice([T.MOBILE, T.MOBILE, T.FIXED_LINE])
    example = phonenumbers.example_number_for_type(region, kind)
    e164 = phonenumbers.format_number(example, F.E164)
    while True:
        candidate = e164[:-4] + rand(string.digits, 4)
        number = phonenumbers.parse(candidate)
        if phonenumbers.is_valid_number_for_region(number, region):
            break
    national = phonenumbers.format_number(number, F.NATIONAL)
    ways = [national, national, phonenumbers.format_number(number, F.INTERNATIONAL),
            phonenumbers.format_number(number, F.E164)]
    # Mobiles are also written as one run of digits, where only a mobile can look so.
    if phonenumbers.number_type(number) == T.MOBILE:
        ways.append("".join(c for c in national if c.isdigit()))
    if region == "US":
        digits = str(number.national_number)
        ways.append("%s-%s-%s" % (digits[:3], digits[3:6], digits[6:]))
        ways.append("%s.%s.%s" % (digits[:3], digits[3:6], digits[6:]))
        ways.append("%s-%s-%s x%d" % (digits[:3], digits[3:6], digits[6:], rng.randrange(10, 9999)))
        ways.append("001-%s-%s-%sx%d" % (digits[:3], digits[3:6], digits[6:], rng.randrange(10, 9999)))
    return rng.choice(ways)


def luhn_complete(prefix, length):
    digits = [int(c) for c in prefix] + [rng.randrange(10) for _ in range(length - len(prefix) - 1)]
    return "".join(map(str, digits + [luhn_check_digit(digits)]))


# brand: (prefixes, lengths), from the brands' published IIN ranges.
BRANDS = {
    "visa": (["4"], [13, 16, 19]),
    "mastercard": (["51", "52", "53", "54", "55", "2221", "2500", "2720"], [16]),
    "amex": (["34", "37"], [15]),
    "discover": (["6011", "644", "649", "65", "622126", "622925"], [16, 19]),
    "jcb": (["3528", "3550", "3589"], [16, 19]),
    "jcb15": (["2131", "1800"], [15]),
    "diners": (["300", "305", "3095", "36", "38", "39"], [14, 16]),
    "unionpay": (["62", "81"], [16, 17, 18, 19]),
    "maestro": (["5018", "5020", "5038", "5893", "6304", "6759", "6761", "6763"], [12, 13, 15, 16, 19]),
    "mir": (["2200", "2201", "2204"], [16]),
    "rupay": (["60", "65", "508", "353", "356"], [16]),
    "uatp": (["1"], [15]),
}


def card():
    prefixes, lengths = BRANDS[rng.choice(list(BRANDS))]
    number = luhn_complete(rng.choice(prefixes), rng.choice(lengths))
    n = len(number)
    layouts = [[n]]
    if n == 15:
        layouts += [[4, 6, 5], [4, 4, 4, 3]]
    elif n == 14:
        layouts += [[4, 6, 4], [4, 4, 4, 2]]
    elif n == 13:
        layouts += [[4, 4, 5], [4, 4, 4, 1]]
    elif n == 12:
        layouts += [[4, 4, 4]]
    else:
        layouts += [[4] * (n // 4) + ([n % 4] if n % 4 else [])]
        if n == 19:
            layouts += [[6, 13]]
    layout = rng.choice(layouts)
    sep = rng.choice([" ", "-"])
    out, i = [], 0
    for size in layout:
        out.append(number[i:i + size])
        i += size
    return sep.join(out)


BBAN = {
    "DE": "n" * 18, "GB": "aaaa" + "n" * 14, "FR": "n" * 10 + "c" * 11 + "nn", "ES": "n" * 20,
    "IT": "a" + "n" * 10 + "c" * 12, "BR": "n" * 23 + "ac", "NL": "aaaa" + "n" * 10,
    "PL": "n" * 24, "CH": "n" * 5 + "c" * 12, "BE": "n" * 12, "AT": "n" * 16, "PT": "n" * 21,
    "SA": "nn" + "c" * 18, "AE": "n" * 19,
}


def iban(country):
    bban = "".join(rng.choice(string.digits if p == "n" else string.ascii_uppercase if p == "a"
                              else string.digits + string.ascii_uppercase) for p in BBAN[country])
    value = country + iban_check(country, bban) + bban
    if rng.random() < 0.6:
        value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    return value


def ssn():
    while True:
        area = rng.randrange(1, 900)
        if area != 666:
            break
    value = "%03d-%02d-%04d" % (area, rng.randrange(1, 100), rng.randrange(1, 10000))
    return value if rng.random() < 0.8 else value.replace("-", " ")


def ip():
    if rng.random() < 0.6:
        while True:
            octets = [rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)]
            if octets[0] not in (10, 127):
                return ".".join(map(str, octets))
    groups = ["2%03x" % rng.randrange(0x1000)] + ["%x" % rng.randrange(0x10000) for _ in range(7)]
    if rng.random() < 0.5:
        return ":".join(groups)
    return ":".join(groups[:3]) + "::" + ":".join(groups[6:])


def token(alphabet, n):
    while True:
        s = rand(alphabet, n)
        if any(c.isdigit() for c in s) and any(c.isalpha() for c in s):
            return s


def jwt_part(n):
    return "eyJ" + token(URLSAFE, n)


SECRETS = [
    lambda: "sk-proj-" + token(URLSAFE, 48),
    lambda: "sk-ant-api03-" + token(URLSAFE, 93) + "AA",
    lambda: "sk-" + token(ALNUM, 48),
    lambda: "glpat-" + token(URLSAFE, 20),
    lambda: "hf_" + rand(string.ascii_letters, 34),
    lambda: "xoxb-%d-%d-%s" % (rng.randrange(10**10, 10**11), rng.randrange(10**12, 10**13), token(ALNUM, 24)),
    lambda: "xoxp-%d-%d-%d-%s" % (rng.randrange(10**10, 10**11), rng.randrange(10**10, 10**11),
                                  rng.randrange(10**11, 10**12), rand(HEX, 32)),
    lambda: "npm_" + token(ALNUM, 36),
    lambda: "pypi-AgEIcHlwaS5vcmc" + token(URLSAFE, 70),
    lambda: "gsk_" + token(ALNUM, 52),
    lambda: "xai-" + token(ALNUM, 80),
    lambda: "SK" + rand(HEX, 32),
    lambda: "SG." + token(URLSAFE, 22) + "." + token(URLSAFE, 43),
    lambda: "AKIA" + rand(string.ascii_uppercase + string.digits, 16),
    lambda: "ghp_" + token(ALNUM, 36),
    lambda: "github_pat_11" + token(ALNUM, 20) + "_" + token(ALNUM, 59),
    lambda: "AIza" + token(URLSAFE, 35),
    lambda: "sk_live_" + token(ALNUM, 24),
    lambda: jwt_part(20) + "." + jwt_part(40) + "." + token(URLSAFE, 43),
    lambda: "r8_" + token(ALNUM, 37),
    lambda: "dop_v1_" + rand(HEX, 64),
    lambda: "shpat_" + rand(HEX, 32),
]


def secret():
    return rng.choice(SECRETS)()


def secret_in_context():
    """Secrets found inside a larger string: the labelled value is the secret alone."""
    choice = rng.randrange(3)
    if choice == 0:
        password = token(ALNUM + "!*-_", 14)
        return "postgres://app:%s@db.internal:5432/app" % password, password
    if choice == 1:
        key = token(ALNUM + "+/", 86) + "=="
        return "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=%s;EndpointSuffix=core.windows.net" % key, key
    key = "%d:AA%s" % (rng.randrange(10**8, 10**10), token(URLSAFE, 33))
    return "bot token %s" % key, key


# ---------------------------------------------------------------------------------------------
# Positives: every type in every locale


def sentence(locale, kind, value, context=None):
    region, frames = LOCALES[locale]
    words = WORDS[locale.split("_")[0]]
    frame = rng.choice(frames)
    shown = context or value
    return frame.replace("{L}", words[kind]).replace("{v}", shown)


PER_TYPE = 10
for locale, (region, _) in LOCALES.items():
    for _ in range(PER_TYPE):
        value = email(locale, region)
        add(sentence(locale, "email", value), ("email", value))
        value = phone(region)
        if region in ("JP", "CN") and rng.random() < 0.2:
            value = wide(value)
        add(sentence(locale, "phone", value), ("phone", value))
        value = card()
        add(sentence(locale, "card", value), ("card", value))
        value = iban(IBAN_COUNTRY[region])
        add(sentence(locale, "iban", value), ("iban", value))
        value = ssn()
        add(sentence(locale, "ssn", value), ("ssn", value))
        value = ip()
        add(sentence(locale, "ip", value), ("ip", value))
        if rng.random() < 0.2:
            context, value = secret_in_context()
            add(sentence(locale, "secret", value, context), ("secret", value))
        else:
            value = secret()
            add(sentence(locale, "secret", value), ("secret", value))
    # Full-width e-mail addresses, as typed with a Japanese or Chinese input method.
    if region in ("JP", "CN"):
        for _ in range(2):
            value = wide(email(locale, region))
            add(sentence(locale, "email", value), ("email", value))

# ---------------------------------------------------------------------------------------------
# Clean texts: numbers that are not personal data, the locale's way

THOUSANDS = {"en": ",", "de": ".", "fr": "\u202f", "es": ".", "it": ".", "pt": ".", "nl": ".",
             "pl": " ", "ru": " ", "ja": ",", "zh": ",", "ko": ",", "th": ","}
CLEAN_FRAMES = {
    "en": ["The meeting is on {date} at {time}; the budget is {money}.",
           "Revenue was {big} last year, up {pct}.", "Upgrade to version {ver} before {date}.",
           "Order {order} shipped on {date}.", "The population is about {big}.",
           "Commit {hash} fixed it; see ticket #{n}.", "Timestamp {ts} in the logs, code {n}.",
           "Coordinates {lat}, {lon}; altitude {n} m.", "ZIP {zip}, building {n}, floor {small}."],
    "de": ["Das Treffen ist am {date} um {time} Uhr, Budget {money}.",
           "Der Umsatz lag bei {big} Euro, plus {pct}.", "Bitte auf Version {ver} aktualisieren.",
           "Bestellung {order} wurde am {date} verschickt.", "Die Stadt hat {big} Einwohner.",
           "Commit {hash} behebt den Fehler, Ticket #{n}.", "Zeitstempel {ts}, Fehlercode {n}.",
           "PLZ {zip}, Raum {n}, Etage {small}."],
    "fr": ["La réunion est le {date} à {time}, budget {money}.",
           "Le chiffre d'affaires est de {big} euros, en hausse de {pct}.",
           "Mettez à jour vers la version {ver}.", "La commande {order} est partie le {date}.",
           "La ville compte {big} habitants.", "Horodatage {ts}, code d'erreur {n}."],
    "es": ["La reunión es el {date} a las {time}, presupuesto {money}.",
           "Los ingresos fueron {big} euros, un {pct} más.", "Actualiza a la versión {ver}.",
           "El pedido {order} salió el {date}.", "La ciudad tiene {big} habitantes."],
    "it": ["La riunione è il {date} alle {time}, budget {money}.",
           "Il fatturato è stato di {big} euro, +{pct}.", "Aggiorna alla versione {ver}.",
           "L'ordine {order} è partito il {date}.", "Il comune ha {big} abitanti."],
    "pt": ["A reunião é em {date} às {time}, orçamento {money}.",
           "A receita foi de {big} reais, alta de {pct}.", "Atualize para a versão {ver}.",
           "O pedido {order} saiu em {date}.", "A cidade tem {big} habitantes."],
    "nl": ["De vergadering is op {date} om {time}, budget {money}.",
           "De omzet was {big} euro, {pct} meer.", "Update naar versie {ver}.",
           "Bestelling {order} is op {date} verzonden."],
    "pl": ["Spotkanie jest {date} o {time}, budżet {money}.", "Przychód wyniósł {big} zł.",
           "Zaktualizuj do wersji {ver}.", "Zamówienie {order} wysłano {date}."],
    "ru": ["Встреча {date} в {time}, бюджет {money}.", "Выручка составила {big} рублей.",
           "Обновитесь до версии {ver}.", "Заказ {order} отправлен {date}."],
    "ja": ["会議は{date}の{time}からです。予算は{money}円です。", "売上は{big}円で、前年比{pct}増でした。",
           "バージョン{ver}に更新してください。", "注文番号{order}は{date}に発送しました。",
           "人口は約{big}人です。", "タイムスタンプ{ts}、エラーコード{n}。"],
    "zh": ["会议在{date}{time}开始，预算{money}元。", "营收为{big}元，增长{pct}。",
           "请升级到版本{ver}。", "订单号{order}已于{date}发货。", "人口约{big}人。"],
    "ko": ["회의는 {date} {time}에 있습니다. 예산은 {money}원입니다.", "매출은 {big}원이었습니다.",
           "버전 {ver}으로 업데이트하세요.", "주문 {order}은 {date}에 발송되었습니다."],
    "th": ["ประชุมวันที่{date}เวลา{time} งบประมาณ{money}บาท", "รายได้{big}บาท เพิ่มขึ้น{pct}",
           "กรุณาอัปเดตเป็นเวอร์ชัน{ver}", "คำสั่งซื้อ{order}ส่งแล้วเมื่อ{date}"],
}
DATE_STYLE = {"en_US": "%m/%d/%Y", "en_GB": "%d/%m/%Y", "en_IN": "%d-%m-%Y", "de_DE": "%d.%m.%Y",
              "fr_FR": "%d/%m/%Y", "es_ES": "%d/%m/%Y", "it_IT": "%d/%m/%Y", "pt_BR": "%d/%m/%Y",
              "nl_NL": "%d-%m-%Y", "pl_PL": "%d.%m.%Y", "ru_RU": "%d.%m.%Y", "ja_JP": "%Y/%m/%d",
              "zh_CN": "%Y-%m-%d", "ko_KR": "%Y.%m.%d", "th_TH": "%d/%m/%Y"}


def grouped(n, sep):
    s = str(n)
    out = []
    while len(s) > 3:
        out.insert(0, s[-3:])
        s = s[:-3]
    out.insert(0, s)
    return sep.join(out)


def clean(locale):
    lang = locale.split("_")[0]
    frame = rng.choice(CLEAN_FRAMES[lang])
    year, month, day = rng.randrange(2015, 2027), rng.randrange(1, 13), rng.randrange(1, 29)
    date = DATE_STYLE[locale].replace("%Y", str(year)).replace("%m", "%02d" % month).replace("%d", "%02d" % day)
    sep = THOUSANDS[lang]
    values = {
        "date": date,
        "time": "%02d:%02d" % (rng.randrange(24), rng.randrange(60)),
        "money": grouped(rng.randrange(1000, 10**7), sep) + rng.choice(["", ",00", ".50"] if sep != "," else ["", ".99"]),
        "big": grouped(rng.randrange(10**6, 10**10), sep),
        "pct": "%d%%" % rng.randrange(1, 60),
        "ver": "%d.%d.%d" % (rng.randrange(1, 20), rng.randrange(30), rng.randrange(100)),
        "order": rng.choice(["#%d" % rng.randrange(10**5, 10**9), "%d-%d" % (rng.randrange(1000, 9999), rng.randrange(1000, 9999)),
                             "A%d" % rng.randrange(10**6, 10**9)]),
        "hash": rand(HEX, 40),
        "n": str(rng.randrange(1, 100000)),
        "small": str(rng.randrange(1, 30)),
        "ts": str(rng.randrange(1_500_000_000, 1_800_000_000)),
        "lat": "%.4f" % rng.uniform(-90, 90),
        "lon": "%.4f" % rng.uniform(-180, 180),
        "zip": "%05d" % rng.randrange(1000, 99999),
    }
    text = frame
    for key, value in values.items():
        text = text.replace("{%s}" % key, value)
    return text


for locale in LOCALES:
    for _ in range(40):
        add(clean(locale))

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "locales.jsonl"), "w") as f:
    for line in lines:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
print("%d lines (%d clean) -> locales.jsonl" % (len(lines), sum(1 for l in lines if not l["entities"])))
