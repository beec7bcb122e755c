"""Question understanding for the offline agent: what an analyst's question asks, as plain data.

Programs are matched on the raw words first (external id, quoted or fuzzy title, rapidfuzz), then the
other words are spell-corrected against the domain vocabulary (rapidfuzz), so "forcast", "revnue" and
"prgrams" read as meant; British spellings are folded ("programmes", "optimise"). Channels match by
code, fuzzy name or position ("channel 2"); number words go through number-parser; dates and times
through dateparser, called only on the spans that look temporal and always with explicit settings.
A question is split into clauses, one intent each ("top 3 dramas and export them" is two), run in
the order asked; a later clause inherits what it does not say from the earlier ones. Words that no
part understood are kept so the answer can name them.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

import dateparser
from number_parser import parse_number
from rapidfuzz import fuzz, process

from programs import selectors as program_selectors
from programs.calendar import DAYPARTS
from programs.models import Channel, Program

# --- vocabulary ------------------------------------------------------------------------------------

TARGET_WORDS: dict[str, str] = {
    "revenue": "revenue", "revenues": "revenue", "money": "revenue", "earn": "revenue", "earns": "revenue",
    "earning": "revenue", "earnings": "revenue", "income": "revenue", "dollars": "revenue", "sales": "revenue",
    "monetization": "revenue", "monetisation": "revenue", "yield": "revenue", "billing": "revenue",
    "grossing": "revenue", "gross": "revenue", "grossed": "revenue", "takings": "revenue", "turnover": "revenue",
    "audience": "audience", "audiences": "audience", "viewers": "audience", "viewer": "audience",
    "viewership": "audience", "watched": "audience", "reach": "audience", "eyeballs": "audience",
    "watching": "audience", "viewing": "audience",
    "engagement": "engagement", "engaged": "engagement", "engaging": "engagement",
    "rating": "rating", "ratings": "rating", "rated": "rating", "rate": "rating", "rates": "rating", "tvr": "rating",
    "share": "rating",
}  # fmt: skip
GENRE_WORDS: dict[str, str] = {
    "news": "news", "drama": "drama", "dramas": "drama", "comedy": "comedy", "comedies": "comedy",
    "sitcom": "comedy", "sitcoms": "comedy", "sport": "sports", "sports": "sports", "reality": "reality",
    "documentary": "documentary", "documentaries": "documentary", "docs": "documentary", "kids": "kids",
    "children": "kids", "childrens": "kids", "movie": "movie", "movies": "movie", "film": "movie",
    "films": "movie", "talk": "talk", "chat": "talk", "game": "game", "quiz": "game", "animation": "animation",
    "animated": "animation", "cartoon": "animation", "cartoons": "animation", "anime": "animation",
}  # fmt: skip
# "talk", "chat" and "game" name a genre only before "show(s)"
_GENRE_NEEDS_SHOW = {"talk", "chat", "game", "quiz"}
BRITISH = {
    "programme": "program", "programmes": "programs", "optimise": "optimize", "optimised": "optimized",
    "optimising": "optimizing", "optimisation": "optimization", "analyse": "analyze", "analysed": "analyzed",
    "favourite": "favorite", "favourites": "favorites", "centre": "center", "colour": "color", "tv's": "tv",
    "behaviour": "behavior", "forecasted": "forecast", "telly": "tv",
}  # fmt: skip
DAYPART_WORDS: dict[str, str] = {
    "prime time": "prime_time", "primetime": "prime_time", "prime-time": "prime_time", "prime": "prime_time",
    "early morning": "early_morning", "breakfast": "early_morning", "morning": "early_morning",
    "mornings": "early_morning", "daytime": "daytime", "afternoon": "daytime", "afternoons": "daytime",
    "early fringe": "early_fringe", "prime access": "prime_access", "access": "prime_access",
    "evening": "prime_time", "evenings": "prime_time", "late night": "late_night", "late-night": "late_night",
    "overnight": "late_night", "overnights": "late_night", "late": "late_night", "night": "prime_time",
    "nights": "prime_time",
}  # fmt: skip
DAYPART_START = {name: (start % 24, 30 if name == "late_night" else 0) for name, start, _ in DAYPARTS}
DAYPART_HOURS = {name: (start, end) for name, start, end in DAYPARTS}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december",
)  # fmt: skip
_MONTH_ABBR = {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
_NUMBER_WORDS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
    "forty", "fifty", "dozen",
)  # fmt: skip
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}

INTENT_WORDS = (
    "predict", "predicted", "prediction", "predictions", "forecast", "forecasts", "projected", "projection",
    "expect", "expected", "estimate", "estimated", "will", "would", "trend", "trends", "trending", "changed",
    "change", "growing", "declining", "decline", "trajectory", "over", "time", "weekly", "monthly", "top",
    "bottom", "highest", "lowest", "best", "worst", "rank", "ranking", "rankings", "list", "most", "least",
    "biggest", "smallest", "leading", "weakest", "strongest", "popular", "poorest", "export", "download",
    "excel", "xlsx", "csv", "json", "spreadsheet", "optimize", "optimized", "optimizing", "optimization",
    "schedule", "lineup", "line-up", "grid", "model", "models", "factors", "factor", "drivers", "drives",
    "affects", "influences", "important", "importance", "accurate", "details", "detail", "info",
    "information", "stats", "statistics", "numbers", "doing", "performance", "performing", "performed",
    "overview", "summary", "describe", "compare", "comparison", "versus", "program", "programs", "show",
    "shows", "channel", "channels", "genre", "genres", "network", "networks", "station", "stations",
    "airings", "airing", "data", "delete", "remove", "rename", "update", "trending", "going", "down", "up",
    "falling", "rising", "dropping", "improving", "losing", "gaining", "lost", "gained", "performer", "performers", "average", "mean", "total",
    "today", "tonight", "tomorrow", "yesterday", "week", "weeks", "month", "months", "year", "years",
    "quarter", "days", "day", "since", "ago", "last", "past", "previous", "next", "coming", "this",
    "weekend", "upcoming", "titles", "title", "slot", "slots", "catalogue", "catalog", "file",
)  # fmt: skip
# Words that carry no request of their own (never reported as ignored).
STOPWORDS = frozenset((
    "a", "an", "the", "of", "for", "on", "in", "at", "to", "by", "with", "and", "or", "but", "is", "are", "was",
    "were", "be", "been", "being", "do", "does", "did", "done", "have", "has", "had", "i", "me", "my", "we",
    "our", "us", "you", "your", "it", "its", "it's", "they", "them", "their", "those", "these", "that", "this",
    "there", "here", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "all", "any", "each",
    "every", "some", "no", "not", "only", "than", "then", "so", "very", "can", "could", "should", "shall", "may",
    "might", "must", "please", "pls", "thanks", "thank", "hi", "hello", "hey", "ok", "okay", "also", "just",
    "about", "from", "as", "into", "onto", "out", "up", "down", "off", "again", "further", "once", "more", "much",
    "many", "such", "own", "same", "other", "another", "both", "few", "too", "give", "gave", "get", "gets", "got",
    "getting", "show", "me", "tell", "let", "lets", "let's", "see", "look", "looking", "want", "wanted", "need",
    "needed", "like", "know", "find", "pull", "pulls", "pulling", "make", "makes", "made", "making", "bring",
    "brings", "brought", "bringing", "draw", "draws", "doing", "going", "go", "goes", "went", "run", "runs",
    "running", "ran", "air", "airs", "aired", "put", "moved", "move", "moving", "if", "whats", "what's", "hows",
    "how's", "how're", "im", "i'm", "i'd", "we'd", "we're", "they're", "whats'", "wanna", "gonna", "kind", "sort",
    "way", "thing", "things", "stuff", "one", "ones", "lot", "lots", "bit", "number", "numbers", "figure",
    "figures", "value", "values", "result", "results", "us?", "vs", "v", "versus", "currently", "current", "now",
    "right", "well", "good", "bad", "great", "better", "worse", "between", "among", "across", "per", "via",
    "around", "roughly", "approx", "approximately", "overall", "generally", "typically", "usually", "across",
    "within", "during", "until", "till", "through", "thru", "including", "include", "includes", "excluding",
    "entire", "whole", "full", "regular", "usual", "slot", "time", "times", "am", "pm", "tv", "television",
    "network", "networks", "station", "stations", "channel", "channel's", "program's", "show's", "series",
    "episode", "episodes", "title", "titles", "content", "perform", "performs", "performed", "perform?", "recent",
    "recently", "latest", "newest", "current", "so-far", "far", "date", "dates", "period", "periods", "range",
    "data"
,
    "start", "starts", "started", "beginning", "begin", "begins", "end", "ends", "ended", "ending", "before",
    "after", "since", "whether", "against", "compared", "relative", "difference", "differences", "best", "worst",
    "poor", "strong", "weak", "high", "low", "higher", "lower", "level", "levels", "share", "slots", "type",
    "types", "category", "categories", "group", "groups", "total", "totals", "sum", "average", "averages", "mean",
    "anything", "something", "everything", "nothing", "would", "will", "really", "actually", "still", "even",
    "already", "yet", "ever", "never", "always", "often", "sometimes", "week's", "month's", "year's", "today's",
    "tonight's", "tomorrow's", "yesterday's", "days", "weeks", "months", "years", "hours", "hour", "minute",
    "minutes", "morning", "evening", "night", "nights", "afternoon", "weekend", "weekends", "weekday", "weekdays",
    "schedule", "scheduled", "schedules", "scheduling", "program", "programs", "shows", "airing", "airings",
    "broadcast", "broadcasts", "broadcasting", "viewers", "audience", "audiences", "performance", "performing",
    "stat", "stats", "metric", "metrics", "measure", "measures", "info", "information", "detail", "details",
    "report", "reports", "summary", "summaries", "list", "lists", "table", "tables", "chart", "charts", "graph",
    "graphs", "view", "views", "last", "first", "second", "third", "fourth", "fifth", "next", "previous", "past",
    "prior", "upcoming", "coming", "new", "old", "different", "most", "less", "least", "several"
))  # fmt: skip
_PRONOUNS = re.compile(r"\b(it|its|it's|them|their|they|those|these|that one|this one|that show|this show|same)\b")
_FOLLOW_UP_START = re.compile(
    r"^(and|also|plus|now|ok(?:ay)?,? and|what about|how about|same (?:for|but)|and what about|and how about|"
    r"then|what if|but)\b"
)
_WRITE = re.compile(
    r"\b(delete|erase|wipe|purge|truncate|rename|overwrite|deactivate)\b|\bremove\b.*\bfrom\b"
    r"|^(?:please |pls |can you |could you |i want to |i'd like to |let's |lets |go ahead and )*"
    r"(?:update|edit|modify|change|add|create|set|save|remove|drop|insert|clear|reset)\b"
    r"(?!.*\b(schedule|lineup|line-up|export|spreadsheet|excel|csv)\b)"
)
_SPLIT_VERBS = (
    "export|download|predict|forecast|tell|show|give|list|rank|optimize|optimise|what|which|how|who|is|are|"
    "compare|estimate|send|save|build|make|plan|then|also|and"
)


def vocabulary() -> frozenset[str]:
    return frozenset(
        [*TARGET_WORDS, *GENRE_WORDS, *BRITISH.values(), *INTENT_WORDS, *WEEKDAYS, *MONTHS, *_NUMBER_WORDS]
        + [w for phrase in DAYPART_WORDS for w in phrase.split()]
        + ["prime", "access", "fringe", "lowest", "watch", "watched", "viewers", "ad", "sales", "minutes"]
    )


_VOCAB = vocabulary()
_VOCAB_LIST = sorted(_VOCAB)
_KNOWN = _VOCAB | STOPWORDS


# --- catalogue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramRef:
    id: int
    external_id: str
    title: str
    channel: str
    genre: str


@dataclass(frozen=True)
class Catalogue:
    """Programs and channels by name, and what the matchers derive from them (built once per catalogue:
    a question only compares its own words against these)."""

    programs: tuple[ProgramRef, ...]
    channels: tuple[tuple[str, str], ...]  # (code, name) in list order: "channel 2" is the second
    time_zones: dict[str, str] = field(default_factory=dict)  # channel code -> IANA zone of its slots

    @cached_property
    def by_external_id(self) -> dict[str, ProgramRef]:
        return {p.external_id.lower(): p for p in self.programs}

    @cached_property
    def by_id(self) -> dict[int, ProgramRef]:
        return {p.id: p for p in self.programs}

    @cached_property
    def compact_titles(self) -> list[str]:
        return [_compact(p.title) for p in self.programs]

    @cached_property
    def title_sizes(self) -> list[int]:
        """Word-window sizes a title may span in a question (its words, one more or one fewer)."""
        sizes = {len(p.title.split()) for p in self.programs}
        return sorted({s + d for s in sizes for d in (-1, 0, 1) if s + d >= 1})

    @cached_property
    def names(self) -> frozenset[str]:
        """Words of titles, channel names and codes: never spell-corrected into domain words."""
        title_words = {w for p in self.programs for w in _WORDS.findall(p.title.lower())}
        names = {w for _, name in self.channels for w in _WORDS.findall(name.lower())}
        return frozenset(title_words | names | {code.lower() for code, _ in self.channels})

    @cached_property
    def channel_codes(self) -> dict[str, str]:
        return {code.lower(): code for code, _ in self.channels}

    @cached_property
    def channel_words(self) -> list[tuple[str, list[str]]]:
        return [(code, _WORDS.findall(name.lower())) for code, name in self.channels]


_WORDS = re.compile(r"[a-z0-9]+")
# The catalogue changes only with the data (imports, the generator and admin edits bump the data
# version): each process keeps the one it built for the current data version, for at most this long.
CATALOGUE_TTL_SECONDS = 60.0
_catalogue_lock = threading.Lock()
_catalogue: tuple[int, float, Catalogue] | None = None


def load_catalogue() -> Catalogue:
    """Programs and channels by name only (no aggregates): what the matcher needs. Read from the
    database once per data version (one indexed query per question to check the version)."""
    global _catalogue
    version = program_selectors.data_version_current()
    now = time.monotonic()
    kept = _catalogue
    if kept is not None and kept[0] == version and now - kept[1] < CATALOGUE_TTL_SECONDS:
        return kept[2]
    catalogue = _read_catalogue()
    with _catalogue_lock:
        _catalogue = (version, now, catalogue)
    return catalogue


def catalogue_forget() -> None:
    """Drop this process's catalogue (tests, after writing programs without a new data version)."""
    global _catalogue
    with _catalogue_lock:
        _catalogue = None


def _read_catalogue() -> Catalogue:
    programs = tuple(
        ProgramRef(pk, ext, title, code, genre)
        for pk, ext, title, code, genre in Program.objects.order_by("pk").values_list(
            "id", "external_id", "title", "channel__code", "genre"
        )
    )
    rows = list(Channel.objects.values_list("code", "name", "time_zone"))
    return Catalogue(
        programs=programs,
        channels=tuple((code, name) for code, name, _ in rows),
        time_zones={code: zone for code, _, zone in rows},
    )


# --- what a question asks ----------------------------------------------------------------------------


@dataclass
class Scope:
    programs: list[ProgramRef] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    channel: str | None = None
    genre: str | None = None
    genres: list[str] = field(default_factory=list)  # when the clause names several ("comedies and dramas")
    since: dt.date | None = None
    until: dt.date | None = None
    period_text: str = ""  # the words that set since/until
    day: dt.date | None = None
    time: dt.time | None = None
    tonight: bool = False
    daypart: str | None = None
    slot_text: str = ""  # the words that set day / time / daypart
    n: int | None = None
    ascending: bool = False
    group_by: str | None = None
    granularity: str | None = None  # week / month (trends)
    fmt: str | None = None
    dataset: str | None = None

    @property
    def target(self) -> str | None:
        return self.targets[0] if self.targets else None

    def as_dict(self) -> dict[str, object]:
        """JSON-able (kept in the cache between the questions of a session)."""
        return {
            "programs": [p.__dict__ for p in self.programs],
            "targets": self.targets,
            "channel": self.channel,
            "genre": self.genre,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "period_text": self.period_text,
            "day": self.day.isoformat() if self.day else None,
            "time": self.time.isoformat() if self.time else None,
            "tonight": self.tonight,
            "daypart": self.daypart,
            "n": self.n,
            "ascending": self.ascending,
            "group_by": self.group_by,
            "granularity": self.granularity,
            "fmt": self.fmt,
            "dataset": self.dataset,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scope:
        def date(v: Any) -> dt.date | None:
            return dt.date.fromisoformat(v) if v else None

        return cls(
            programs=[ProgramRef(**p) for p in data.get("programs") or []],
            targets=list(data.get("targets") or []),
            channel=data.get("channel"),
            genre=data.get("genre"),
            since=date(data.get("since")),
            until=date(data.get("until")),
            period_text=data.get("period_text") or "",
            day=date(data.get("day")),
            time=dt.time.fromisoformat(data["time"]) if data.get("time") else None,
            tonight=bool(data.get("tonight")),
            daypart=data.get("daypart"),
            n=data.get("n"),
            ascending=bool(data.get("ascending")),
            group_by=data.get("group_by"),
            granularity=data.get("granularity"),
            fmt=data.get("fmt"),
            dataset=data.get("dataset"),
        )


@dataclass
class Step:
    intent: str | None
    scope: Scope
    text: str  # the clause
    compare: bool = False


@dataclass
class Understanding:
    steps: list[Step]
    ignored: list[str] = field(default_factory=list)
    write_request: bool = False
    follow_up: bool = False
    inherited: list[str] = field(default_factory=list)  # names of the fields taken from the last question
    catalogue: Catalogue = field(default_factory=lambda: Catalogue((), ()))


# --- tokens -----------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9][a-z0-9':/&.+-]*[a-z0-9]|[a-z0-9]")


@dataclass
class Token:
    raw: str  # as typed (original case)
    word: str  # lower case, corrected
    start: int
    end: int
    used: bool = False
    boundary: bool = False  # a sentence mark (? ; . !) follows it
    comma: bool = False


_HYPHENATED = re.compile(r"[a-z]+-[a-z]+")
_KEEP_HYPHEN = {"line-up", "late-night", "prime-time", "year-to-date", "week-over-week", "month-over-month"}


def tokenize(question: str) -> list[Token]:
    text = question.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    lower = text.lower()
    tokens = []
    for m in _TOKEN.finditer(lower):
        if _HYPHENATED.fullmatch(m.group(0)) and m.group(0) not in _KEEP_HYPHEN:
            # "highest-grossing", "top-rated": two words ("18-49", dates and "line-up" stay whole)
            cut = m.group(0).index("-")
            for a, b in ((m.start(), m.start() + cut), (m.start() + cut + 1, m.end())):
                tokens.append(Token(text[a:b], BRITISH.get(lower[a:b], lower[a:b]), a, b))
            after = lower[m.end() : m.end() + 1]
            tokens[-1].boundary, tokens[-1].comma = after in ("?", ";", "!", "."), after == ","
            continue
        word = m.group(0).rstrip(".")
        if word.endswith("'s") and len(word) > 3 and not word.startswith(("it", "what", "how", "let")):
            word = word[:-2]  # "last month's" / "Morning Brew's"
        word = word.rstrip("'")
        word = BRITISH.get(word, word)
        after = lower[m.end() : m.end() + 1]
        tokens.append(
            Token(
                text[m.start() : m.end()],
                word,
                m.start(),
                m.end(),
                boundary=after in ("?", ";", "!", "."),
                comma=after == ",",
            )
        )
    return tokens


def _mark(tokens: Sequence[Token], i: int, j: int) -> None:
    for t in tokens[i:j]:
        t.used = True


# --- programs ---------------------------------------------------------------------------------------


def _compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def match_programs(question: str, tokens: list[Token], catalogue: Catalogue) -> list[tuple[int, ProgramRef]]:
    """(token index, program) for every program the question names, in the order named."""
    found: list[tuple[int, ProgramRef]] = []
    by_ext = catalogue.by_external_id
    by_id = catalogue.by_id
    for i, t in enumerate(tokens):
        hit = by_ext.get(t.word)
        if hit is not None:
            found.append((i, hit))
            t.used = True
    for i, t in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        if t.word in ("program", "programme", "show", "id") and nxt.word.isdigit() and not nxt.used:
            ref = by_id.get(int(nxt.word))
            if ref is not None and ref.external_id.lower() not in {tok.word for tok in tokens}:
                found.append((i, ref))
                _mark(tokens, i, i + 2)
    compact_titles = catalogue.compact_titles
    # Quoted titles first (double quotes only: single quotes are apostrophes too often).
    for m in re.finditer(r'"([^"]{2,120})"', question.replace("“", '"').replace("”", '"')):
        best = process.extractOne(_compact(m.group(1)), compact_titles, scorer=fuzz.ratio, score_cutoff=75)
        if best is not None:
            idx = [k for k, t in enumerate(tokens) if m.start() <= t.start < m.end()]
            if idx:
                found.append((idx[0], catalogue.programs[best[2]]))
                _mark(tokens, idx[0], idx[-1] + 1)
    # Word windows against every title: exact first, then fuzzy (typos, missing spaces, a lost "s").
    candidates: list[tuple[float, int, int, int]] = []  # (score, first token, last token + 1, program)
    free = [k for k, t in enumerate(tokens) if not t.used]
    if free and compact_titles:
        windows: list[tuple[int, int, str]] = []
        for size in catalogue.title_sizes:
            for a in range(len(tokens) - size + 1):
                span = tokens[a : a + size]
                if any(t.used for t in span):
                    continue
                windows.append((a, a + size, _compact(" ".join(t.word for t in span))))
        if windows:
            scores = process.cdist(
                [w[2] for w in windows], compact_titles, scorer=fuzz.ratio, score_cutoff=84, workers=1
            )
            for w_index, p_index in zip(*scores.nonzero(), strict=True):
                a, b, text = windows[w_index]
                title = compact_titles[p_index]
                score = float(scores[w_index, p_index])
                if len(title) < 6 and score < 100:
                    continue  # short titles must match exactly
                if text in _VOCAB and score < 100:
                    continue  # a single domain word ("drama") is not a misspelt title
                candidates.append((score + min(len(title), 30) / 10, a, b, int(p_index)))
    for _score, a, b, p in sorted(candidates, reverse=True):
        if any(t.used for t in tokens[a:b]):
            continue
        found.append((a, catalogue.programs[p]))
        _mark(tokens, a, b)
    seen: set[str] = set()
    ordered = []
    for i, ref in sorted(found, key=lambda x: x[0]):
        if ref.external_id not in seen:
            seen.add(ref.external_id)
            ordered.append((i, ref))
    return ordered


# --- spelling ---------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _correct(word: str) -> str:
    if word in _KNOWN or len(word) < 3 or not word.isalpha():
        return word
    best = process.extractOne(word, _VOCAB_LIST, scorer=fuzz.ratio, score_cutoff=84 if len(word) < 5 else 80)
    return str(best[0]) if best is not None else word


def correct(tokens: list[Token], catalogue: Catalogue) -> None:
    names = catalogue.names
    for t in tokens:
        if not t.used and t.word not in names:
            t.word = _correct(t.word)


# --- channels, genres, numbers --------------------------------------------------------------------------


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    if word in _NUMBER_WORDS:
        return 12 if word == "dozen" else parse_number(word)
    return None


def match_channel(tokens: list[Token], catalogue: Catalogue) -> str | None:
    codes = catalogue.channel_codes
    for i, t in enumerate(tokens):
        if t.used:
            continue
        if t.word in codes:
            t.used = True
            return codes[t.word]
        # "channel 2", "channel two", "ch 2", "ch2", "the second channel"
        if t.word in ("channel", "ch", "network", "station") and i + 1 < len(tokens):
            k = _number(tokens[i + 1].word)
            if k is not None and 1 <= k <= len(catalogue.channels):
                _mark(tokens, i, i + 2)
                return catalogue.channels[k - 1][0]
        m = re.fullmatch(r"ch(\d)", t.word)
        if m and 1 <= int(m.group(1)) <= len(catalogue.channels):
            t.used = True
            return catalogue.channels[int(m.group(1)) - 1][0]
        if t.word in _ORDINALS and i + 1 < len(tokens) and tokens[i + 1].word in ("channel", "network"):
            k = _ORDINALS[t.word]
            if k <= len(catalogue.channels):
                _mark(tokens, i, i + 2)
                return catalogue.channels[k - 1][0]
    # names: the whole name or its distinctive first word, fuzzily ("westside tv", "Northview")
    for code, words in catalogue.channel_words:
        size = len(words)
        for a in range(len(tokens)):
            for width in (size, 1):
                span = tokens[a : a + width]
                if len(span) < width or any(t.used for t in span):
                    continue
                text = " ".join(t.word for t in span)
                target = " ".join(words) if width == size else words[0]
                if len(target) >= 4 and fuzz.ratio(text, target) >= 85:
                    end = a + width
                    if end < len(tokens) and tokens[end].word in ("tv", "television", "channel", "network"):
                        end += 1
                    _mark(tokens, a, end)
                    return code
    return None


def match_genres(tokens: list[Token]) -> list[str]:
    """Every genre the clause names, in order ("comedies and dramas")."""
    found: list[str] = []
    for i, t in enumerate(tokens):
        if t.used or t.word not in GENRE_WORDS:
            continue
        nxt = tokens[i + 1].word if i + 1 < len(tokens) else ""
        if t.word in _GENRE_NEEDS_SHOW and nxt not in ("show", "shows", "program", "programs"):
            continue
        t.used = True
        if t.word in _GENRE_NEEDS_SHOW:
            tokens[i + 1].used = True
        if GENRE_WORDS[t.word] not in found:
            found.append(GENRE_WORDS[t.word])
    return found


# --- time ---------------------------------------------------------------------------------------------

_UNIT = r"(day|week|weekend|fortnight|month|quarter|year)s?"
_NUM = r"(\d{1,3}|" + "|".join(_NUMBER_WORDS) + r"|a|an|couple of|few)"
_TIME = r"(\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}:\d{2}|noon|midday|midnight)"
_MONTH = r"(" + "|".join(MONTHS) + r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)"
_DATE = (
    r"(\d{4}-\d{2}-\d{2}|"
    + _MONTH
    + r"\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?"
    + _MONTH
    + r"(?:,?\s+\d{4})?)"
)
_WEEKDAY = (
    r"((?:this|next|coming|last|on)\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday|tues|weds|thurs)s?"
)


def _parser_settings(now: dt.datetime, prefer: str) -> dict[str, object]:
    return {
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "PREFER_DATES_FROM": prefer,
        "RETURN_AS_TIMEZONE_AWARE": False,
        "PREFER_DAY_OF_MONTH": "first",
        "DATE_ORDER": "DMY",
    }


def _parse(text: str, now: dt.datetime, prefer: str) -> dt.datetime | None:
    parsed: dt.datetime | None = dateparser.parse(text, languages=["en"], settings=_parser_settings(now, prefer))
    return parsed


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _month_end(dt.date(year, month + 1, 1))
    return dt.date(year, month + 1, min(day.day, last.day))


def _month_end(day: dt.date) -> dt.date:
    nxt = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _quarter(year: int, q: int) -> tuple[dt.date, dt.date]:
    first = dt.date(year, 3 * (q - 1) + 1, 1)
    return first, _month_end(_add_months(first, 2))


def _count(word: str) -> int:
    if word in ("a", "an"):
        return 1
    if word == "couple of":
        return 2
    if word == "few":
        return 3
    return _number(word) or 1


@dataclass
class TimeFacts:
    since: dt.date | None = None
    until: dt.date | None = None
    period_text: str = ""
    day: dt.date | None = None
    time: dt.time | None = None
    tonight: bool = False
    daypart: str | None = None
    slot_text: list[str] = field(default_factory=list)
    future: bool = False  # the period lies after today (only a prediction can use it)


def _consume(text: str, tokens: list[Token], start: int, end: int) -> None:
    for t in tokens:
        if t.start >= start and t.end <= end:
            t.used = True


def _rolling(m: re.Match[str], today: dt.date) -> tuple[dt.date, dt.date]:
    k = _count(m.group("num"))
    unit = m.group("unit")
    if unit.startswith("month"):
        return _add_months(today, -k), today
    if unit.startswith("quarter"):
        return _add_months(today, -3 * k), today
    if unit.startswith("year"):
        return _add_months(today, -12 * k), today
    days = {"day": 1, "week": 7, "weekend": 7, "fortnight": 14}[unit.rstrip("s")]
    return today - dt.timedelta(days=days * k), today


def _calendar(which: str, unit: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The previous / current / next calendar week (Monday first), month, quarter or year."""
    step = {"last": -1, "previous": -1, "past": -1, "prior": -1, "this": 0, "current": 0, "next": 1, "coming": 1}[which]
    unit = unit.rstrip("s")
    if unit in ("week", "weekend"):
        monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=step)
        if unit == "weekend":
            return monday + dt.timedelta(days=5), monday + dt.timedelta(days=6)
        end = monday + dt.timedelta(days=6)
        return monday, (min(end, today) if step == 0 else end)
    if unit == "month":
        first = _add_months(_month_start(today), step)
        return first, (today if step == 0 else _month_end(first))
    if unit == "quarter":
        q = (today.month - 1) // 3
        index = today.year * 4 + q + step
        first, last = _quarter(index // 4, index % 4 + 1)
        return first, (today if step == 0 else last)
    if unit == "year":
        first = dt.date(today.year + step, 1, 1)
        return first, (today if step == 0 else dt.date(first.year, 12, 31))
    day = today + dt.timedelta(days=step)
    return day, day


def read_time(text: str, tokens: list[Token], now: dt.datetime, *, prefer_future: bool) -> TimeFacts:
    """Periods (since / until), a day, a time of day and a daypart, from the temporal words of ``text``."""
    facts = TimeFacts()
    today = now.date()
    prefer = "future" if prefer_future else "past"

    def period(a: dt.date, b: dt.date | None, m: re.Match[str]) -> None:
        if facts.since is None:
            facts.since, facts.until, facts.period_text = a, b, m.group(0).strip()
            facts.future = a > today
        _consume(text, tokens, m.start(), m.end())

    for m in re.finditer(
        r"\b(?:in|over|during|for)?\s*(?:the\s+)?(?:last|past|previous|prior)\s+(?P<num>" + _NUM[1:-1] + r")\s+"
        r"(?P<unit>" + _UNIT[1:-3] + r")s?\b",
        text,
    ):
        period(*_rolling(m, today), m)
    for m in re.finditer(r"\b(?P<num>" + _NUM[1:-1] + r")\s+(?P<unit>" + _UNIT[1:-3] + r")s?\s+ago\b", text):
        a, _ = _rolling(m, today)
        period(a, a if m.group("unit").startswith("day") else None, m)
    for m in re.finditer(
        r"\b(?P<which>last|previous|prior|this|current|next|coming)\s+(?P<unit>week|weekend|month|quarter|year)\b",
        text,
    ):
        period(*_calendar(m.group("which"), m.group("unit"), today), m)
    for m in re.finditer(r"\b(?:the\s+)?(?:past|last)\s+(?P<unit>fortnight)\b", text):
        period(today - dt.timedelta(days=14), today, m)
    for m in re.finditer(r"\b(?:the\s+)?past\s+(?P<unit>week|month|quarter|year)\b", text):
        period(*_rolling(re.match(r"(?P<num>1) (?P<unit>\w+)", f"1 {m.group('unit')}"), today), m)  # type: ignore[arg-type]
    for m in re.finditer(r"\b(?:ytd|year to date|so far this year|this year so far|since new year)\b", text):
        period(dt.date(today.year, 1, 1), today, m)
    for m in re.finditer(
        r"\b(?:(?:since|from) (?:the )?(?:start|beginning) of (?:the |this )?|so far this )(?P<unit>week|month|quarter|year)\b",
        text,
    ):
        period(*_calendar("this", m.group("unit"), today), m)
    for m in re.finditer(
        r"\bq([1-4])(?:\s+(?:of\s+)?(\d{4}))?\b|\b(first|second|third|fourth) quarter(?: of (\d{4}))?", text
    ):
        q = int(m.group(1)) if m.group(1) else ("first", "second", "third", "fourth").index(m.group(3)) + 1
        year = int(m.group(2) or m.group(4) or 0) or today.year
        first, last = _quarter(year, q)
        if first > today and not (m.group(2) or m.group(4)):
            first, last = _quarter(year - 1, q)
        period(first, last, m)
    for m in re.finditer(
        r"\b(?:from|between)\s+(?P<a>"
        + _DATE
        + "|"
        + _MONTH
        + r")\s+(?:to|until|till|and|through|-)\s+(?P<b>"
        + _DATE
        + "|"
        + _MONTH
        + r")\b",
        text,
    ):
        began, ended = _parse(m.group("a"), now, "past"), _parse(m.group("b"), now, "past")
        if began is not None:
            end = ended.date() if ended is not None else None
            if end is not None and re.fullmatch(_MONTH, m.group("b")):
                end = _month_end(end)
            period(began.date(), end, m)
    for m in re.finditer(r"\b(?:since|after|from)\s+(" + _DATE + r"|" + _MONTH + r"(?:\s+\d{4})?|" + r"\d{4})\b", text):
        since = _parse(m.group(1), now, "past")
        if since is not None:
            period(since.date(), None, m)
    for m in re.finditer(r"\b(?:in|during|for|of|over)?\s*(?<!\d\s)" + _MONTH + r"(?:\s+(\d{4}))?\b(?!\s+\d)", text):
        word = m.group(1)
        if word == "may" and not m.group(2):
            continue
        if word in ("mar",) and not m.group(2):
            continue
        parsed = _parse(word + (" " + m.group(2) if m.group(2) else ""), now, "future" if prefer_future else "past")
        if parsed is not None:
            first = parsed.date().replace(day=1)
            period(first, _month_end(first), m)
    for m in re.finditer(r"\b(?:in|during|for|of|over)\s+(\d{4})\b", text):
        year = int(m.group(1))
        if 1990 <= year <= 2100:
            period(dt.date(year, 1, 1), dt.date(year, 12, 31), m)
    # a day: an ISO or written date, a weekday, today / tonight / tomorrow / yesterday
    m_date = re.search(r"\b" + _DATE + r"\b", text)
    if m_date and not all(t.used for t in tokens if t.start >= m_date.start() and t.end <= m_date.end()):
        parsed = _parse(m_date.group(0), now, prefer)
        if parsed is not None:
            facts.day = parsed.date()
            _consume(text, tokens, m_date.start(), m_date.end())
            facts.slot_text.append(m_date.group(0).strip())
    m_day = re.search(r"\b(today|tonight|tomorrow|tmrw|tomorrow night|yesterday|this evening)\b", text)
    if facts.day is None and m_day:
        word = m_day.group(1)
        facts.day = today + dt.timedelta(
            days={"tomorrow": 1, "tmrw": 1, "tomorrow night": 1, "yesterday": -1}.get(word, 0)
        )
        facts.tonight = word in ("tonight", "this evening", "tomorrow night")
        _consume(text, tokens, m_day.start(), m_day.end())
        facts.slot_text.append(m_day.group(0).strip())
    m_week = re.search(r"\b" + _WEEKDAY + r"\b", text)
    if facts.day is None and m_week:
        phrase = m_week.group(0).removeprefix("on ").rstrip("s")
        phrase = {"tues": "tuesday", "weds": "wednesday", "thurs": "thursday"}.get(phrase, phrase)
        phrase = re.sub(
            r"\b(tues|weds|thurs)\b",
            lambda x: {"tues": "tuesday", "weds": "wednesday", "thurs": "thursday"}[x.group(1)],
            phrase,
        )
        weekday = next(i for i, w in enumerate(WEEKDAYS) if w in phrase)
        if phrase.startswith("next ") or phrase.startswith("coming "):
            # "next Tuesday": the coming one (what dateparser and most analysts mean)
            delta = (weekday - today.weekday()) % 7 or 7
            facts.day = today + dt.timedelta(days=delta)
        else:
            parsed = _parse(phrase.replace("this ", ""), now, "past" if phrase.startswith("last") else prefer)
            facts.day = parsed.date() if parsed is not None else None
            if facts.day == today and not phrase.startswith("last") and prefer_future:
                facts.day = today  # "Wednesday" said on a Wednesday is today
        _consume(text, tokens, m_week.start(), m_week.end())
        facts.slot_text.append(m_week.group(0).strip())
    m_time = re.search(r"\b(?:at\s+|around\s+|by\s+)?" + _TIME + r"(?!\w)", text)
    if m_time:
        parsed = _parse(m_time.group(1).replace(".", ""), now, "future")
        if parsed is not None:
            facts.time = parsed.time()
        _consume(text, tokens, m_time.start(), m_time.end())
        facts.slot_text.append(m_time.group(0).strip())
    else:
        m_at = re.search(r"\bat\s+(\d{1,2})(?:\s*o'?clock)?\b(?!\s*(?:%|k\b|m\b))", text)
        if m_at and 1 <= int(m_at.group(1)) <= 12:
            # "at 8" on television means the evening unless the question says morning
            hour = int(m_at.group(1)) % 12
            morning = re.search(r"\b(morning|breakfast|early)\b", text)
            facts.time = dt.time(hour if morning else hour + 12)
            _consume(text, tokens, m_at.start(), m_at.end())
            facts.slot_text.append(m_at.group(0).strip())
    for phrase in sorted(DAYPART_WORDS, key=len, reverse=True):
        found = re.search(r"\b" + re.escape(phrase) + r"\b", text)
        if not found:
            continue
        if phrase == "late" and not re.search(r"\blate\s+(?:slot|show|shows|programs?)\b", text):
            continue
        if phrase == "prime" and not re.search(r"\bprime\s+(?:slot|slots)\b", text):
            continue
        if phrase == "access" and "prime access" not in text:
            continue
        facts.daypart = DAYPART_WORDS[phrase]
        _consume(text, tokens, found.start(), found.end())
        facts.slot_text.append(found.group(0).strip())
        break
    return facts


# --- intents -------------------------------------------------------------------------------------------

_INTENT_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "export_data",
        r"\bexport|\bdownload|\bexcel\b|\bxlsx?\b|\bcsv\b|\bspreadsheet|\bdump\b|\bsend me\b.*\b(file|data)\b",
    ),
    (
        "optimize_schedule",
        r"\boptimi[sz]|\bschedul|\bline-?up\b|\bgrid\b|\bbest (?:running )?order\b|\barrange\b",
    ),
    (
        "get_best_model",
        r"\bmodels?\b|\bfactors?\b|\bfeature importance|\bdrivers?\b|\bwhat (?:affects|drives|influences|impacts|moves|determines)"
        r"|\bmost important|\binfluenc|\bdrives?\b|\bdriving\b|\bdriven\b|\baccurate\b",
    ),
    (
        "predict_values",
        r"\bpredict|\bforecast|\bproject(?:ed|ion)|\bexpect|\bestimat|\bwill\b|\bwould\b|\bgoing to (?:get|do|draw|earn|rate|make|pull)"
        r"|\bif we (?:move|moved|air|aired|put|schedule)|\bnext airing|\boutlook\b",
    ),
    (
        "analyze_trends",
        r"\btrend|\bover time\b|\bweek over week|\bmonth over month|\bweek by week|\bmonth by month|\bweekly\b"
        r"|\bmonthly\b|\bgrowing\b|\bgrown\b|\bgrow\b|\bdeclin|\btrajectory|\bgoing (?:up|down)\b|\bchanged?\b|\bevolv"
        r"|\b(?:rising|falling|dropping|improving|slipping|sliding|losing|gaining|lost|gained)\b|\bup or down\b",
    ),
    (
        "get_programs",
        r"\btop\b|\bbottom\b|\bhighest|\blowest|\bbest\b|\bworst\b|\brank|\bmost\b|\bleast\b|\bbiggest\b|\bsmallest\b"
        r"|\bleading\b|\bweakest\b|\bstrongest\b|\bpopular\b|\bpoorest\b|\blist\b|\bprograms\b|\bshows\b|\bchannels\b"
        r"|\bgenres\b|\bcatalog|\bwhat(?:'s| is)? on\b|\brun on\b|\bairs? on\b|\bperformers?\b"
        r"|\b(?:by|per|each|across) (?:channel|genre|network|station|category)\b",
    ),
    (
        "get_program_details",
        r"\bdetails?\b|\babout\b|\binfo\b|\binformation\b|\bstats?\b|\bstatistics\b|\bnumbers\b|\bdoing\b|\bdo\b|\bdid\b"
        r"|\boverview\b|\bsummary\b|\bsummari[sz]e|\bdescribe\b|\bperform|\bhow (?:is|was|are|were)\b|\bcompare\b"
        r"|\bvs\b|\bversus\b|\baverage\b",
    ),
)
_RANK_WORDS = re.compile(
    r"\btop\b|\bbottom\b|\bhighest|\blowest|\bbest\b|\bworst\b|\brank|\bmost\b|\bleast\b|\bbiggest\b|\bsmallest\b"
    r"|\bleading\b|\bweakest\b|\bstrongest\b|\bpopular\b|\bpoorest\b|\bperformers?\b"
)
_ASCENDING = re.compile(r"\b(lowest|bottom|worst|least|weakest|poorest|smallest|fewest|underperform\w*|weakest)\b")


def asks_for(tool: str, message: str) -> bool:
    """Does the user's own message ask for ``tool`` (used for tools that write or start work)?"""
    text = " ".join(t.word for t in tokenize(re.sub(r'"[^"]*"', " ", message)))
    text = " ".join(_correct(w) for w in text.split())
    pattern = dict(_INTENT_PATTERNS).get(tool)
    return pattern is not None and re.search(pattern, text) is not None


@lru_cache(maxsize=2048)
def _plain_words(message: str) -> str:
    """The message's words as ``tokenize`` reads them (memoised: every message is read twice)."""
    return " ".join(t.word for t in tokenize(message))


def is_write_request(message: str) -> bool:
    """A request to change data ("delete all programs"), which no tool can do."""
    text = _plain_words(message)
    return bool(_WRITE.search(text)) and not re.search(r"\bexport|\bdownload", text)


def looks_like_follow_up(message: str) -> bool:
    """Cheap check (no catalogue) whether a message may lean on the previous question."""
    text = _plain_words(message)
    return bool(_FOLLOW_UP_START.search(text) or _PRONOUNS.search(text) or len(text.split()) <= 3)


def classify(text: str, *, has_program: bool, programs: int) -> str | None:
    found = [intent for intent, pattern in _INTENT_PATTERNS if re.search(pattern, text)]
    if not found:
        return None  # a named program alone reads as its details, once a follow-up had its say
    intent = found[0]
    if intent == "get_best_model" and re.search(r"\bmodels?\b", text) is None and has_program:
        # "what drives Night Watch's ratings" has no model word: still a best-model question
        intent = "get_best_model"
    if intent == "optimize_schedule" and "predict_values" in found and has_program:
        intent = "predict_values"  # "predict X if we schedule it at 10pm"
    if intent == "get_best_model" and re.search(r"\bwould\b|\bwill\b", text) and "predict_values" in found:
        intent = "get_best_model" if re.search(r"\bmodel", text) else "predict_values"
    if (
        intent == "predict_values"
        and "analyze_trends" in found
        and not re.search(r"\bpredict|\bforecast|\bproject|\bexpect|\bestimat", text)
    ):
        intent = "analyze_trends"  # "will ... keep growing" is about the trend
    if (
        intent == "get_programs"
        and has_program
        and (
            (programs >= 2 and not re.search(r"\btop\b|\brank", text))
            or not re.search(r"\btop\b|\bprograms\b|\brank|\bshows\b", text)
        )
    ):
        intent = "get_program_details"
    if intent == "get_program_details" and not has_program:
        if re.search(r"\bchannels?\b|\bgenres?\b|\bprograms\b|\bshows\b|\baverage\b", text):
            intent = "get_programs"
        else:
            return "get_program_details"
    return intent


def _split(tokens: list[Token]) -> list[list[Token]]:
    """Clauses: at "then", at a sentence mark, and at "and"/"also"/"," followed by a new request verb."""
    clauses: list[list[Token]] = [[]]
    verbs = set(_SPLIT_VERBS.split("|"))
    for i, t in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1].word if i + 1 < len(tokens) else ""
        start_new = False
        if (
            clauses[-1]
            and not t.used
            and (
                t.word == "then"
                or (prev is not None and prev.boundary)
                or (t.word in ("and", "also", "plus") and nxt in verbs and nxt not in ("and", "is", "are"))
                or (prev is not None and prev.comma and t.word in verbs and t.word not in ("and", "is", "are"))
            )
        ):
            start_new = True
        if start_new and len(clauses[-1]) > 0:
            clauses.append([])
        clauses[-1].append(t)
    return [c for c in clauses if c]


# --- the whole question -------------------------------------------------------------------------------


def is_follow_up(text: str, *, names_own_scope: bool, has_intent: bool) -> bool:
    if _FOLLOW_UP_START.search(text):
        return True
    if _PRONOUNS.search(text) and not names_own_scope:
        return True
    return not has_intent and len(text.split()) <= 3


def understand(
    question: str,
    *,
    catalogue: Catalogue,
    now: dt.datetime,
    previous: Scope | None = None,
    previous_intent: str | None = None,
) -> Understanding:
    if is_write_request(question):
        return Understanding(steps=[], write_request=True, catalogue=catalogue)
    tokens = tokenize(question)
    text = " ".join(t.word for t in tokens)
    programs = match_programs(question, tokens, catalogue)
    correct(tokens, catalogue)
    steps: list[Step] = []
    for clause in _split(tokens):
        clause_text = " ".join(t.word for t in clause)
        refs = [ref for i, ref in programs if clause[0].start <= tokens[i].start <= clause[-1].start]
        scope = Scope(programs=refs)
        channel = match_channel(clause, catalogue)
        intent = classify(_mask_titles(clause), has_program=bool(refs), programs=len(refs))
        facts = read_time(
            clause_text_positions(clause), clause, now, prefer_future=intent in ("predict_values", "optimize_schedule")
        )
        scope.channel = channel
        scope.genres = match_genres(clause)
        scope.genre = scope.genres[0] if scope.genres else None
        scope.since, scope.until, scope.period_text = facts.since, facts.until, facts.period_text
        scope.day, scope.time, scope.tonight, scope.daypart = facts.day, facts.time, facts.tonight, facts.daypart
        scope.slot_text = " ".join(facts.slot_text)
        _read_words(clause, scope)
        compare = bool(re.search(r"\bcompare|\bvs\b|\bversus\b|\bcomparison\b", clause_text)) or len(refs) >= 2
        steps.append(Step(intent=intent, scope=scope, text=clause_text, compare=compare))
    understanding = Understanding(steps=_merge(steps), catalogue=catalogue)
    _inherit_within(understanding.steps)
    has_intent = any(s.intent for s in understanding.steps)
    own = any(s.scope.programs or s.scope.genre or s.scope.channel for s in understanding.steps)
    if previous is not None and is_follow_up(text, names_own_scope=own, has_intent=has_intent):
        understanding.follow_up = True
        understanding.inherited = _inherit_previous(understanding.steps, previous, previous_intent)
    for step in understanding.steps:
        sc = step.scope
        if step.intent not in ("predict_values", "optimize_schedule") and sc.slot_text:
            # a past date is a one-day period for a ranking, details, a trend or an export (a bare
            # weekday, "on Fridays", is a recurring slot: no tool filters by it)
            dated = re.search(r"\d|yesterday|today|\blast\b", sc.slot_text)
            if dated and sc.day is not None and sc.day <= now.date() and sc.since is None:
                sc.since = sc.until = sc.day
                sc.period_text = sc.slot_text
                if sc.time is None and sc.daypart is None:
                    sc.slot_text = ""
            sc.day = sc.time = sc.daypart = None
        if (
            step.intent == "get_program_details"
            and not sc.programs
            and (sc.genre or sc.channel or re.search(r"\bdoing\b|\bperform|\bgoing\b", step.text))
        ):
            step.intent = "get_programs"  # "how did dramas perform last quarter", "how are we doing"
        if step.intent is None and not sc.programs and (sc.targets or sc.genre or sc.channel or sc.since):
            step.intent = "get_programs"  # "ratings for kbs last week"
        if (
            step.scope.programs
            and step.intent in (None, "get_programs")
            and not step.scope.group_by
            and (step.intent is None or not re.search(r"\btop\b|\brank|\bprograms\b|\bshows\b", step.text))
        ):
            step.intent = "get_program_details"
    understanding.ignored = _ignored(tokens)
    return understanding


def clause_text_positions(clause: list[Token]) -> str:
    """The clause as text whose offsets match the tokens' (so spans found in it can be marked used);
    words already used (a title such as "Saturday Sports Night", a channel) are blanked out."""
    if not clause:
        return ""
    size = clause[-1].end
    chars = [" "] * size
    for t in clause:
        word = t.word if len(t.word) == t.end - t.start else t.raw.lower()[: t.end - t.start]
        if t.used:
            word = "_" * (t.end - t.start)
        chars[t.start : t.start + len(word)] = list(word)
    return "".join(chars)


def _mask_titles(clause: list[Token]) -> str:
    """The clause for intent matching: a title's words ("Night Watch") are data, not keywords."""
    return " ".join("<title>" if t.used else t.word for t in clause)


def _read_words(clause: list[Token], scope: Scope) -> None:
    words = [t.word for t in clause]
    text = " ".join("_" if t.used else t.word for t in clause)
    for t in clause:
        if not t.used and t.word in TARGET_WORDS:
            if t.word == "share" and "audience" in text:
                continue
            target = TARGET_WORDS[t.word]
            if target not in scope.targets:
                scope.targets.append(target)
            t.used = True
    if "ad sales" in text and "revenue" not in scope.targets:
        scope.targets.append("revenue")
    if re.search(r"\bmost watched|\bwatch(?:ed)? (?:the )?most|\bpopular\b", text) and not scope.targets:
        scope.targets.append("audience")
    if re.search(r"\bmade the most|\bmake the most|\bmost profitable|\bprofitab", text) and not scope.targets:
        scope.targets.append("revenue")
    scope.ascending = bool(_ASCENDING.search(text))
    # N: next to a ranking word, or before programs / shows ("the 3 most watched", "top ten")
    for i, t in enumerate(clause):
        if t.used:
            continue
        value = _number(t.word)
        if value is None:
            continue
        before = words[i - 1] if i else ""
        after = words[i + 1] if i + 1 < len(words) else ""
        unit_after = re.fullmatch(_UNIT, after) is not None or after in ("am", "pm", "o'clock", "%", "percent")
        if unit_after:
            continue
        rankish = re.fullmatch(
            r"top|bottom|best|worst|highest|lowest|first|leading|biggest|smallest|weakest|strongest|poorest", before
        ) or re.fullmatch(
            r"top|best|worst|highest|lowest|biggest|most|least|leading|bottom|programs|shows|channels|genres|"
            r"weakest|strongest|poorest|smallest|lowest-rated|highest-rated|rated|performing",
            after,
        )
        if rankish and 1 <= value <= 50:
            scope.n = value
            t.used = True
            break
    if (
        scope.n is None
        and _RANK_WORDS.search(text)
        and re.search(r"\b(?:program|show|series)\b", text)
        and not re.search(r"\b(?:programs|shows|ones)\b", text)
    ):
        scope.n = 1  # "the highest rated program": one
    if re.search(r"\bmonthly\b|\bby month\b|\bper month\b|\bmonth by month\b|\bmonth over month\b|\bmonths\b", text):
        scope.granularity = "month"
    elif re.search(r"\bweekly\b|\bby week\b|\bper week\b|\bweek by week\b|\bweek over week\b", text):
        scope.granularity = "week"
    for kind, pattern in (
        (
            "channel",
            r"\b(?:by|per|each|every|which|what|across|all) (?:the )?(?:channel|network|station)s?\b|\bchannels\b|\bnetworks\b|\bchannel-level\b",
        ),
        (
            "genre",
            r"\b(?:by|per|each|every|which|what|across|all) (?:the )?(?:genre|category)s?\b|\bgenres\b|\bcategories\b|\bgenre-level\b",
        ),
    ):
        if re.search(pattern, text):
            scope.group_by = kind
            break
    if re.search(r"\bexcel\b|\bxlsx?\b|\bspreadsheet", text):
        scope.fmt = "xlsx"
    elif re.search(r"\bcsv\b", text):
        scope.fmt = "csv"
    elif re.search(r"\bjson\b", text):
        scope.fmt = "json"
    if re.search(
        r"\bprogram (?:list|catalog|catalogue)\b|\blist of programs\b|\bprograms? (?:data|metadata)\b|\bcatalog", text
    ):
        scope.dataset = "programs"
    for t in clause:
        if t.word in ("excel", "xlsx", "xls", "csv", "json", "spreadsheet") or (
            scope.dataset and t.word in ("list", "catalog", "catalogue")
        ):
            t.used = True


def _merge(steps: list[Step]) -> list[Step]:
    """A clause without an intent belongs to the one before it ("top dramas, on kbs")."""
    out: list[Step] = []
    for step in steps:
        if step.intent is None and out:
            prev = out[-1]
            _fill(prev.scope, step.scope)
            prev.text += " " + step.text
            continue
        if out and out[-1].intent is None:
            _fill(step.scope, out[-1].scope)
            out[-1] = replace(step, text=out[-1].text + " " + step.text)
            continue
        out.append(step)
    # the same intent twice in a row with nothing new is one request ("how is X doing, how did it do")
    return out


_FIELDS = (
    "programs", "targets", "channel", "genre", "since", "until", "period_text", "day", "time", "tonight", "daypart",
    "n", "group_by", "granularity", "fmt", "dataset",
)  # fmt: skip


def _fill(scope: Scope, other: Scope, fields: Sequence[str] = _FIELDS) -> list[str]:
    taken = []
    for name in fields:
        if not getattr(scope, name) and getattr(other, name):
            value = getattr(other, name)
            setattr(scope, name, list(value) if isinstance(value, list) else value)
            taken.append(name)
    if "since" in taken and "until" not in taken and scope.until is None:
        scope.until = other.until
    return taken


def _inherit_within(steps: list[Step]) -> None:
    """Later clauses of one question inherit what they leave unsaid ("... and export them")."""
    for i, step in enumerate(steps[1:], 1):
        prev = steps[i - 1].scope
        fields = ["programs", "channel", "genre", "since", "until", "period_text"]
        if step.intent in ("get_best_model", "predict_values", "analyze_trends") or not step.scope.targets:
            fields.append("targets")
        if step.intent == steps[i - 1].intent or step.intent == "predict_values":
            fields += ["day", "time", "tonight", "daypart"]
        if step.intent == "export_data":
            fields = ["programs", "channel", "genre", "since", "until", "period_text"]
            if len(prev.programs) > 1:
                fields.remove("programs")
        _fill(step.scope, prev, fields)
    # an earlier clause that needs a program may take it from a later one ("what is the rating and
    # the revenue forecast of X")
    for i, step in enumerate(steps[:-1]):
        if not step.scope.programs and step.intent in ("predict_values", "get_program_details"):
            later = next((s.scope.programs for s in steps[i + 1 :] if s.scope.programs), None)
            if later:
                step.scope.programs = list(later)


def _inherit_previous(steps: list[Step], previous: Scope, previous_intent: str | None) -> list[str]:
    taken: list[str] = []
    for step in steps:
        if step.intent is None:
            step.intent = previous_intent
        fields = list(_FIELDS)
        if step.scope.targets:
            fields.remove("targets")
        if step.intent != previous_intent:
            fields = [f for f in fields if f not in ("n", "group_by", "granularity", "fmt", "dataset")]
        if step.intent not in ("predict_values", "optimize_schedule"):
            fields = [f for f in fields if f not in ("day", "time", "tonight", "daypart")]
        if step.scope.genre and previous.programs and not step.scope.programs:
            fields.remove("programs")
        if step.scope.programs:
            fields = [f for f in fields if f not in ("genre",)]
        for name in _fill(step.scope, previous, fields):
            if name not in taken:
                taken.append(name)
    return taken


_PREPOSITIONS = {"in", "among", "for", "with", "from", "on", "by", "of", "across", "amongst", "within", "at"}


def _ignored(tokens: list[Token]) -> list[str]:
    """Phrases of the question that nothing understood, as typed ("in 4K", "among women 18-49",
    "above 3"). A word an intent pattern reads ("driving") counts as used."""
    phrases: list[list[Token]] = []
    for i, t in enumerate(tokens):
        unknown = (
            not t.used
            and t.word not in _KNOWN
            and not _number_like(t.word)
            and not any(re.search(pattern, t.word) for _, pattern in _INTENT_PATTERNS)
        )
        if unknown:
            if phrases and phrases[-1][-1] is tokens[i - 1]:
                phrases[-1].append(t)
            elif i and tokens[i - 1].word in _PREPOSITIONS and not tokens[i - 1].used:
                phrases.append([tokens[i - 1], t])
            else:
                phrases.append([t])
        elif phrases and phrases[-1][-1] is tokens[i - 1] and not t.used and _number_like(t.word):
            phrases[-1].append(t)  # "above 3", "over 500"
    return [" ".join(t.raw for t in p) for p in phrases]


def _number_like(word: str) -> bool:
    return bool(re.fullmatch(r"\d{1,4}|\d+(?:st|nd|rd|th)", word))
