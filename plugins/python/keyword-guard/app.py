"""keyword-guard: a Freeway filter that blocks or labels requests by keyword and regex rules.

Written in Python, built into a WebAssembly component (world `filter` of
`wit/freeway.wit`) with componentize-py. Like every Freeway plugin it is a pure transform: the
host hands it the request body and its settings, it answers with a verdict, and it keeps no
state between calls that could change an answer (the only module-level state is a cache of
compiled settings, keyed by the settings text).

Rules, from the settings JSON object (every key optional, unknown keys are errors):

- `block`: words or phrases. A request whose user, system or developer message text contains
  one (case-insensitive, whole words only) is blocked.
- `patterns`: Python regular expressions, searched in the same text; a match blocks.
- `label`: `{"tag": ["word", ...]}`. When a request is not blocked and one of a tag's words
  occurs, the tag is added for the router and later filters.
- `block_answers`: when true, a (non-streamed) answer whose text contains a blocked word or
  matches a pattern is blocked too.

A block reason names the rule that matched (its index and the configured word or pattern),
never the client's text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterator, List, Optional, Pattern, Tuple

import wit_world
from wit_world import exports
from wit_world.exports import guard
from wit_world.imports import types
from componentize_py_types import Err

NAME = "keyword-guard"
VERSION = "0.2.0"

# Roles whose text is the client's prompt. Assistant and tool messages repeat what a model or a
# tool produced earlier; they are not checked.
CHECKED_ROLES = frozenset({"user", "system", "developer"})


def settings_error(problem: str) -> Err:
    """The typed error for bad settings. The host fails closed on any filter error."""
    return Err(
        types.Error(
            kind=types.ErrorKind.INTERNAL,
            retryable=False,
            message=f"invalid {NAME} settings: {problem}",
            status=None,
            retry_after_ms=None,
            code=None,
            param=None,
        )
    )


def body_error(problem: str) -> Err:
    return Err(
        types.Error(
            kind=types.ErrorKind.BAD_REQUEST,
            retryable=False,
            message=f"{NAME}: {problem}",
            status=None,
            retry_after_ms=None,
            code=None,
            param=None,
        )
    )


def word_regex(word: str) -> Pattern[str]:
    """Whole-word, case-insensitive match of `word` (a word or a phrase).

    Look-arounds instead of `\\b`, so words that begin or end with punctuation ("c++", ".env")
    still need a non-word character or the text's edge on each side. The words of a phrase
    match across any run of whitespace ("top  secret", "top\\nsecret").
    """
    body = r"\s+".join(re.escape(part) for part in word.split())
    return re.compile(r"(?<!\w)" + body + r"(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Rule:
    """One blocking rule and how a block reason names it."""

    name: str
    regex: Pattern[str]


@dataclass(frozen=True)
class Settings:
    rules: Tuple[Rule, ...]
    labels: Tuple[Tuple[str, Tuple[Pattern[str], ...]], ...]
    block_answers: bool


def string_list(value: object, where: str) -> List[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"`{where}` must be a list of strings")
    if any(not item.strip() for item in value):
        raise ValueError(f"`{where}` must not contain empty strings")
    return value


def parse_settings(text: str) -> Settings:
    """Validate and compile the settings JSON; ValueError says what is wrong."""
    text = text.strip()
    if not text:
        text = "{}"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as problem:
        raise ValueError(f"not JSON ({problem})") from None
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(raw) - {"block", "patterns", "label", "block_answers"})
    if unknown:
        raise ValueError(f"unknown key `{unknown[0]}`")

    rules: List[Rule] = []
    for index, word in enumerate(string_list(raw.get("block", []), "block")):
        rules.append(Rule(f'block[{index}] ("{word}")', word_regex(word)))
    for index, pattern in enumerate(string_list(raw.get("patterns", []), "patterns")):
        try:
            regex = re.compile(pattern)
        except re.error as problem:
            raise ValueError(f"`patterns[{index}]` is not a valid regex: {problem}") from None
        rules.append(Rule(f"patterns[{index}] (/{pattern}/)", regex))

    label = raw.get("label", {})
    if not isinstance(label, dict):
        raise ValueError("`label` must be an object of tag -> list of words")
    labels = []
    for tag, words in label.items():
        if not tag.strip():
            raise ValueError("`label` must not have an empty tag")
        regexes = tuple(word_regex(word) for word in string_list(words, f"label.{tag}"))
        labels.append((tag, regexes))

    block_answers = raw.get("block_answers", False)
    if not isinstance(block_answers, bool):
        raise ValueError("`block_answers` must be true or false")
    return Settings(tuple(rules), tuple(labels), block_answers)


# Compiled settings by settings text. With pooled instances the same instance serves many
# requests; recompiling the regexes each time would dominate the call. Bounded, because
# settings come from config and only change on reload.
_SETTINGS_CACHE: dict = {}


def settings_for(text: str) -> Settings:
    settings = _SETTINGS_CACHE.get(text)
    if settings is None:
        try:
            settings = parse_settings(text)
        except ValueError as problem:
            raise settings_error(str(problem)) from None
        if len(_SETTINGS_CACHE) >= 16:
            _SETTINGS_CACHE.clear()
        _SETTINGS_CACHE[text] = settings
    return settings


def content_text(content: object) -> Iterator[str]:
    """Text of an OpenAI message `content`: a string or a list of parts."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def prompt_texts(body: dict) -> Iterator[str]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for message in messages:
        if isinstance(message, dict) and message.get("role") in CHECKED_ROLES:
            yield from content_text(message.get("content"))


def answer_texts(body: dict) -> Iterator[str]:
    choices = body.get("choices")
    if not isinstance(choices, list):
        return
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            yield from content_text(message.get("content"))


def first_matching_rule(settings: Settings, texts: List[str]) -> Optional[Rule]:
    """The first rule, in settings order, that matches any of the texts."""
    for rule in settings.rules:
        if any(rule.regex.search(text) for text in texts):
            return rule
    return None


def parse_body(body: str, what: str) -> dict:
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        raise body_error(f"the {what} body is not JSON") from None
    if not isinstance(parsed, dict):
        raise body_error(f"the {what} body is not a JSON object")
    return parsed


class WitWorld(wit_world.WitWorld):
    def metadata(self) -> types.PluginMetadata:
        return types.PluginMetadata(
            name=NAME,
            version=VERSION,
            kind=types.PluginKind.FILTER,
            description="Blocks requests containing configured words or regex matches; "
            "labels requests by keyword",
        )

    def check_settings(self, settings: str) -> None:
        """Called by the host at load and reload: refuse bad settings before any request."""
        try:
            parse_settings(settings)
        except ValueError as problem:
            raise Err(f"invalid {NAME} settings: {problem}") from None


class Guard(exports.Guard):
    def on_request(
        self, info: guard.RequestInfo, body: str, settings: str
    ) -> guard.RequestOutcome:
        compiled = settings_for(settings)
        texts = list(prompt_texts(parse_body(body, "request")))
        rule = first_matching_rule(compiled, texts)
        if rule is not None:
            return guard.RequestOutcome(
                verdict=guard.RequestVerdict_Block(
                    f"request blocked by {NAME}: it matches rule {rule.name}"
                ),
                tags=[],
                state=None,
            )
        tags = [
            tag
            for tag, regexes in compiled.labels
            if tag not in info.tags
            and any(regex.search(text) for regex in regexes for text in texts)
        ]
        return guard.RequestOutcome(verdict=guard.RequestVerdict_Allow(), tags=tags, state=None)

    def on_response(
        self,
        info: guard.RequestInfo,
        state: Optional[str],
        body: str,
        settings: str,
    ) -> guard.ResponseVerdict:
        compiled = settings_for(settings)
        if not compiled.block_answers:
            return guard.ResponseVerdict_Allow()
        rule = first_matching_rule(compiled, list(answer_texts(parse_body(body, "response"))))
        if rule is not None:
            return guard.ResponseVerdict_Block(
                f"answer blocked by {NAME}: it matches rule {rule.name}"
            )
        return guard.ResponseVerdict_Allow()
