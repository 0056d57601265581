"""Realistic Spotify privacy-export files (extended history, account data, zip) for benchmarks."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
import zipfile
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

END = datetime(2026, 11, 1, tzinfo=UTC)
BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
HOME = "SE"
MUSIC, EPISODE, UNAVAILABLE = 0, 1, 2
QUICK_SKIP, OFFLINE_SYNC = 1, 2
ENDS = ("trackdone", "fwdbtn", "endplay", "logout", "backbtn", "remote", "unexpected-exit",
        "unexpected-exit-while-paused")
TRACKDONE, FWDBTN, ENDPLAY, LOGOUT, BACKBTN, REMOTE, EXIT, EXIT_PAUSED = range(len(ENDS))
# How the next stream starts follows from how the previous one ended.
START_AFTER = ("trackdone", "fwdbtn", "clickrow", "appload", "backbtn", "remote", "appload",
               "playbtn")
PARTIAL_ENDS = (ENDPLAY, FWDBTN, LOGOUT, BACKBTN, REMOTE, EXIT, EXIT_PAUSED)
PARTIAL_WEIGHTS = (35, 25, 8, 7, 5, 12, 8)
WEEKDAY_HOURS = (1, 1, 0, 0, 0, 1, 3, 8, 9, 6, 5, 5, 6, 5, 5, 6, 8, 9, 8, 8, 7, 6, 4, 2)
WEEKEND_HOURS = (3, 2, 1, 0, 0, 0, 1, 2, 4, 6, 8, 8, 8, 7, 7, 7, 7, 7, 8, 8, 8, 7, 6, 4)
TRIP_COUNTRIES = ("DE", "GB", "ES", "FR", "IT", "NO", "DK", "US", "JP", "PT", "NL", "FI", "GR")
# (platform, legacy platform strings oldest first, mobile, weight early, weight late)
DEVICES = (
    ("android", ("Android OS 6.0.1 API 23 (samsung, SM-G920F)",
                 "Android OS 9 API 28 (samsung, SM-G960F)",
                 "Android OS 13 API 33 (Google, Pixel 7)"), True, 25, 50),
    ("ios", ("iOS 12.4 (iPad6,11)", "iOS 15.4.1 (iPhone13,2)"), True, 3, 12),
    ("windows", ("Windows 7 (6.1.7601; x64; SP1; S)", "Windows 10 (10.0.19044; x64)"),
     False, 45, 20),
    ("osx", ("OS X 10.13.6 [x86 8]", "OS X 12.3.1 [arm 2]"), False, 10, 8),
    ("web_player", ("web_player windows 10;chrome 99.0.4844.84;desktop",), False, 5, 6),
    ("linux", ("Linux [x86-64 0]",), False, 2, 2),
)
WEB_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/99.0.4844.84 Safari/537.36")
LEGACY_KEYS = ("ts", "username", "platform", "ms_played", "conn_country", "ip_addr_decrypted",
               "user_agent_decrypted", "master_metadata_track_name",
               "master_metadata_album_artist_name", "master_metadata_album_album_name",
               "spotify_track_uri", "episode_name", "episode_show_name", "spotify_episode_uri",
               "reason_start", "reason_end", "shuffle", "skipped", "offline", "offline_timestamp",
               "incognito_mode")
LEGACY_SINCE_YEAR = 2022  # older streams keep the long platform strings even in today's exports


# The streams of a 500,000-play history: up to there the catalogue grows as before.
_SLOWER_FROM = 690_000


def _words(text: str) -> list[str]:
    return text.split()


WORDS = _words("""
Love Night Heart Fire Light Dream Rain Gold Blue Summer City River Ghost Wild Shadow
Ocean Electric Silver Paper Glass Neon Midnight Sugar Honey Velvet Thunder Echo Mirror Garden
Stone Crystal Desert Winter Autumn Spring Storm Satellite Highway Lonely Golden Broken Secret
Sweet Cold Burning Falling Rising Dancing Running Flying Sleeping Home Road Sky Sun Moon Star
Stars Waves Tide Forest Wolf Tiger Bird Birds Horses Kingdom Empire Machine Radio Television
Disco Paradise Heaven Angel Devil Diamond Roses Cherry Lemon Orange Violet Scarlet Black White
Northern Southern Lights Lines Signals Memories Ghosts Youth Forever Tonight Yesterday Tomorrow
Morning Evening Sunday Friday Weekend Holiday Motel Cinema Avenue Boulevard Harbor Island Valley
Mountain Canyon Lake Fever Gravity Magnet Rocket Comet Planet Orbit Atlas Echoes Static Pulse
Rhythm Melody Chorus Lullaby Anthem Ballad Serenade Symphony Blues Soul Funk Groove Café Niño
Señorita Déjà Über Fjäll Sjön Ærø Noël Müde Corazón Mañana Beijo Saudade Fiesta Amour Rêve
Lumière Nuit Ciel Sommar Vinter Hjärta Natten Kärlek Stjärnor Hav Zeit Liebe Nacht Traum""")
FIRST = _words("""
Anna Björn José Zoë Chloé Łukasz Søren Ana Miguel Renée Jürgen Ólafur Nikolai Aoife
Siobhán Mateo Lucía Amélie François Hannah Ezra Noah Maya Leo Elsa Oskar Ingrid Astrid Johan
Camille Inès Thiago Joaquín Ximena Dmitri Yuki Hiro Mei Jae Priya Arjun Fatima Omar Kwame Ada
Marcus Tyler Jade Ruby Finn Nora Ivy Felix Otis Luna Hugo Mila Theo Saoirse Grace Sam Alex""")
LAST = _words("""
Andersson Müller García Núñez Dvořák O'Brien Kowalski Sørensen Fernández Öztürk Nakamura
Kim Nguyễn Smith Johnson Brown Lefèvre Lindqvist Åberg Bergström Rossi Costa Silva Dubois Novak
Horváth Jansen Virtanen Ivanova Petrov Hansen Walker Young King Wright Hill Moreno Ortega Lopez
Martin Bernard Schmidt Weber Wagner Becker Hoffmann Larsen Nilsson Holm Quinn Reyes Cruz""")
SYLLABLES = _words("ka lo mi ra ne so ta vi el an or is un be da fe gi ho ju ly mo nu pa re sa "
                   "ti vo wa ze yo")
SCRIPTS = {
    "ja": _words("夜 桜 星 夢 光 雨 恋 空 花火 東京 さよなら ありがとう 君の名 月光 "
                 "青春 未来 ハート メロディ ドライブ シティ 宇宙 海 風 記憶"),
    "ko": _words("사랑 밤 별 하늘 바다 꿈 소녀 봄날 너 우리 기억 노래 시간 여름 비 마음"),
    "ru": _words("Ночь Город Море Звезда Кино Весна Любовь Дождь Сердце Лето Небо Зима Мечта"),
}
EMOJI = _words("✨ 🌙 🔥 💔 🌊 🌸 🖤 🦋")
TEMPLATES = ("{}", "{}", "{} {}", "{} {}", "{} {}", "The {}", "{} of the {}", "{} in the {}",
             "{}, {}", "{} & {}", "Don't Let the {} Go", '"{}"', "{} (Interlude)", "No {}",
             "{}'s {}", "{} {} {}", "Intro", "Outro", "Where the {} Goes", "{}, {} & {}")


@dataclass
class Catalogue:
    """Artists, tracks and podcast shows an export refers to, in popularity order."""

    artists: list[str]
    track_artist: list[int]
    track_name: list[str]
    track_album: list[str]
    track_ms: list[int]
    track_uri: list[str]
    track_weight: list[float]
    shows: list[str]
    show_ms: list[int]
    seed: int


class Session(NamedTuple):
    """Device, network and playback settings shared by consecutive streams."""

    device: int  # index into DEVICES
    legacy_platform: str
    country: str
    ip: str
    shuffle: bool
    incognito: bool
    start: str  # reason_start of the session's first stream
    offline: bool


@dataclass
class History:
    """One listener's extended history as parallel arrays, one entry per stream, ts ascending."""

    cat: Catalogue
    ts: array  # epoch seconds when the stream stopped
    ms: array
    kind: bytearray
    item: array  # track index, or show * 100_000 + episode number
    end: bytearray  # index into ENDS
    offline: bytearray
    offline_ts: array  # epoch seconds, -1 for null
    session: array
    sessions: list[Session]


def _spotify_id(*parts: object) -> str:
    """22 base62 characters, a pure function of `parts` (Spotify ids encode 128 bits)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    number, chars = int.from_bytes(digest, "big"), []
    for _ in range(22):
        number, rest = divmod(number, 62)
        chars.append(BASE62[rest])
    return "".join(reversed(chars))


def _apportion(weights: Sequence[float], total: int) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder)."""
    scale = total / (sum(weights) or 1)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    by_rest = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])
    for i in by_rest[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _spread(weights: Sequence[float], total: int, cap: int) -> list[int]:
    """Split `total` in proportion to `weights` with no share above `cap` (water-filling)."""
    full: set[int] = set()
    while True:
        free = [0.0 if d in full else w for d, w in enumerate(weights)]
        if not any(free):  # too few listening days for `total`: use the quiet ones too
            free = [0.0 if d in full else 1.0 for d in range(len(weights))]
        counts = _apportion(free, total - cap * len(full))
        over = [d for d, c in enumerate(counts) if c > cap]
        if not over:
            return [cap if d in full else c for d, c in enumerate(counts)]
        full.update(over)


def _invented(rng: random.Random) -> str:
    return "".join(rng.choices(SYLLABLES, k=rng.randint(2, 3))).capitalize()


def _phrase(rng: random.Random, script: str) -> str:
    """A song or album title, in the artist's script most of the time."""
    if script != "latin" and rng.random() < 0.8:
        glue = "" if script == "ja" else " "
        return glue.join(rng.sample(SCRIPTS[script], rng.randint(1, 2)))
    template = rng.choice(TEMPLATES)
    return template.format(*rng.choices(WORDS, k=template.count("{}")))


def _artist_name(rng: random.Random) -> tuple[str, str]:
    """A band or artist name and its script, with the odd punctuation real names have."""
    r, word = rng.random(), lambda: rng.choice(WORDS)
    if r < 0.30:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    elif r < 0.45:
        name = f"The {word()} {word()}"
    elif r < 0.60:
        name = _invented(rng)
    elif r < 0.67:
        name = f"{_invented(rng)} {_invented(rng)}"
    elif r < 0.71:
        name = f"{rng.choice(FIRST)} & the {word()}s"
    elif r < 0.73:
        name = f"{rng.choice(LAST)}, {rng.choice(LAST)} & {rng.choice(LAST)}"
    elif r < 0.745:
        name = f'{rng.choice(FIRST)} "{word()}" {rng.choice(LAST)}'
    elif r < 0.78:
        name = f"{rng.choice(('DJ', 'Lil', 'MC', 'Young'))} {_invented(rng)}"
    elif r < 0.80:
        name = _invented(rng).lower().replace("s", "$")
    elif r < 0.90:
        script = rng.choice(("ja", "ja", "ko", "ru"))
        glue = "" if script == "ja" else " "
        return glue.join(rng.sample(SCRIPTS[script], rng.randint(1, 2))), script
    else:
        name = f"{word()}{word().lower()}"
    if rng.random() < 0.004:
        name = f"{name} {rng.choice(EMOJI)}"
    return name, "latin"


def catalogue_scale(records: int) -> float:
    """How much bigger than 9,000 artists and 46,000 tracks the catalogue of `records`
    streams is."""
    if records <= _SLOWER_FROM:
        return (records / 500_000) ** 0.8
    # Long histories find new music more slowly: 2,000,000 plays over 20 years (2.76M
    # streams) hold some 23,000 artists and 120,000 tracks, not the 36,000 and 180,000 that
    # the steeper law would give.
    return (_SLOWER_FROM / 500_000) ** 0.8 * (records / _SLOWER_FROM) ** 0.5


def _catalogue(seed: int, records: int) -> Catalogue:
    """A catalogue sized like a real listener's for `records` streams, Zipf-like popularity."""
    rng = random.Random(f"{seed}:catalogue")
    scale = catalogue_scale(records)
    n_tracks = max(60, round(46_000 * scale))
    n_artists = min(n_tracks, max(30, round(9_000 * scale)))
    artists: dict[str, str] = {}
    while len(artists) < n_artists:
        name, script = _artist_name(rng)
        artists.setdefault(name, script)
    artist_weight = [1 / (rank + 8) ** 1.2 for rank in range(n_artists)]
    # Favourite artists are the ones with many tracks in a history.
    per_artist = [1 + c for c in _apportion([w ** 0.6 for w in artist_weight],
                                            n_tracks - n_artists)]
    track_artist, names, albums, durations, weights = [], [], [], [], []
    for a, (artist, script) in enumerate(artists.items()):
        count, mine, album = per_artist[a], {}, _phrase(rng, script)
        left_on_album = rng.randint(4, 14)
        # Within an artist a few tracks are hits and most are heard once or twice.
        appeal = [rng.lognormvariate(0, 1.1) / (k + 1) ** 0.6 for k in range(count)]
        spread = sum(appeal)
        for k in range(count):
            if left_on_album == 0:
                album, left_on_album = _phrase(rng, script), rng.randint(4, 14)
            left_on_album -= 1
            duration = int(min(420, max(90, rng.lognormvariate(5.3, 0.25))) * 1000)
            if mine and rng.random() < 0.05:  # the single and the album version: two URIs
                name = rng.choice(list(mine))
                this_album, duration = name, mine[name] + rng.randint(-900, 900)
            else:
                name = _phrase(rng, script)
                while name in mine:
                    name = f"{_phrase(rng, script)} {rng.choice(WORDS)}"
                extra = rng.random()
                if extra < 0.07:
                    name += f" (feat. {rng.choice(list(artists))})"
                elif extra < 0.10:
                    name += f" - Remastered {rng.randint(1995, 2022)}"
                elif extra < 0.13:
                    name += rng.choice((" - Live", " - Radio Edit", " (Acoustic)", " - Remix"))
                elif extra < 0.133:
                    name += f" {rng.choice(EMOJI)}"
                this_album = name if rng.random() < 0.12 else album
                if rng.random() < 0.01:
                    this_album = artist  # self-titled
            mine[name] = duration
            track_artist.append(a)
            names.append(name)
            albums.append(this_album)
            durations.append(duration)
            weights.append(artist_weight[a] * appeal[k] / spread)
    n_shows = max(3, round(40 * scale))
    shows = list(dict.fromkeys(
        rng.choice(("The {} {} Podcast", "{} Talk", "Daily {}", "{} & {} Show", "{} Radio"))
        .format(rng.choice(WORDS), rng.choice(WORDS)) for _ in range(n_shows * 2)))[:n_shows]
    return Catalogue(list(artists), track_artist, names, albums, durations,
                     [_spotify_id(seed, "track", t) for t in range(len(names))], weights,
                     shows, [rng.randint(10, 70) * 60_000 for _ in shows], seed)


def _day_plan(rng: random.Random, days: int, first_day: int) -> tuple[list[float], list[str]]:
    """Listening weight and country of each day: growth, weekly rhythm, holidays, trips."""
    off, country = bytearray(days), [HOME] * days

    def pause(start: int, length: int) -> None:
        stop = min(days, start + length)
        off[start:stop] = b"\1" * max(0, stop - start)

    for year in range(0, days, 365):
        for _ in range(rng.randint(1, 3)):  # holidays away from any music
            pause(year + rng.randrange(365), rng.randint(4, 18))
        for _ in range(rng.randint(1, 4)):  # trips abroad, still listening
            start, where = year + rng.randrange(365), rng.choice(TRIP_COUNTRIES)
            for d in range(start, min(days, start + rng.randint(3, 14))):
                country[d] = where
    if days > 1500 and rng.random() < 0.6:  # a long break, as when trying another service
        pause(rng.randrange(days // 5, days // 2), rng.randint(30, 120))
    year_mood = [rng.lognormvariate(0, 0.2) for _ in range(days // 365 + 1)]
    weights = []
    for d in range(days):
        if off[d] or rng.random() < 0.06:
            weights.append(0.0)
            continue
        growth = 0.35 + 0.65 * (d / days) ** 0.7
        rhythm = (1.0, 1.0, 1.05, 1.0, 1.1, 0.85, 0.8)[(first_day + d + 3) % 7]
        trip = 0.6 if country[d] != HOME else 1.0
        noise = min(2.0, rng.lognormvariate(0, 0.45))
        weights.append(growth * rhythm * trip * noise * year_mood[d // 365])
    return weights, country


def _plan_streams(rng: random.Random, cat: Catalogue, n: int, eras: int) -> tuple:
    """What each stream plays and for how long, in order, before it is placed in time."""
    kind, burst = bytearray(n), bytearray(n)
    for i in range(n):
        r = rng.random()
        kind[i] = EPISODE if r < 0.03 else UNAVAILABLE if r < 0.032 else MUSIC
        if i and kind[i] == kind[i - 1] == MUSIC:
            r = rng.random()
            burst[i] = QUICK_SKIP if r < 0.011 else OFFLINE_SYNC if r < 0.017 else 0
    item, ms, end = array("l", bytes(8 * n)), array("l", bytes(8 * n)), bytearray(n)
    slots = [i for i in range(n) if kind[i] == MUSIC and burst[i] != OFFLINE_SYNC]
    # Every catalogue track is streamed at least once; the rest follow yearly-shifting tastes.
    discovered = bytearray(len(slots))
    first = rng.sample(range(len(slots)), min(len(slots), len(cat.track_name)))
    for p in first:
        discovered[p] = 1
    newcomers = iter(rng.sample(range(len(cat.track_name)), len(first)))
    for era in range(eras):
        lo, hi = len(slots) * era // eras, len(slots) * (era + 1) // eras
        mood = [rng.lognormvariate(0, 0.8) for _ in cat.artists]
        cum = list(accumulate(w * mood[a] for w, a in zip(cat.track_weight, cat.track_artist,
                                                           strict=True)))
        picks = iter(rng.choices(range(len(cum)), cum_weights=cum, k=hi - lo))
        for p in range(lo, hi):
            item[slots[p]] = next(newcomers) if discovered[p] else next(picks)
    show_cum = list(accumulate(1 / (r + 1) ** 1.2 for r in range(len(cat.shows))))
    for i in range(n):
        if kind[i] == EPISODE:
            item[i] = rng.choices(range(len(show_cum)), cum_weights=show_cum)[0]
            length, r = int(cat.show_ms[item[i]] * rng.uniform(0.7, 1.3)), rng.random()
            ms[i], end[i] = ((rng.randrange(30_000), FWDBTN) if r < 0.2 else
                             (length, TRACKDONE) if r < 0.45 else
                             (30_000 + int((length - 30_000) * rng.random() ** 1.5),
                              rng.choice((ENDPLAY, LOGOUT, EXIT))))
        elif kind[i] == UNAVAILABLE:
            ms[i], end[i] = rng.randrange(240_000), rng.choice((TRACKDONE, FWDBTN, ENDPLAY))
        elif burst[i] == QUICK_SKIP:  # two skips that end within one second
            ms[i], end[i] = rng.randrange(1000), FWDBTN
            ms[i - 1], end[i - 1] = rng.randrange(30_000), FWDBTN
        elif burst[i] == OFFLINE_SYNC:  # another offline play of the same track, synced later
            item[i] = item[i - 1]
            ms[i], end[i] = _music_outcome(rng, cat.track_ms[item[i]])
        else:
            ms[i], end[i] = _music_outcome(rng, cat.track_ms[item[i]])
    return kind, burst, item, ms, end


def _music_outcome(rng: random.Random, duration: int) -> tuple[int, int]:
    """ms_played and reason_end of one music stream: skip, partial or full play."""
    r = rng.random()
    if r < 0.03:
        return 0, FWDBTN if rng.random() < 0.8 else rng.choice((ENDPLAY, LOGOUT, EXIT))
    if r < 0.23:
        return 1 + int(29_998 * rng.random() ** 1.7), FWDBTN if rng.random() < 0.9 else BACKBTN
    if r < 0.355:
        return rng.randint(30_000, duration), rng.choices(PARTIAL_ENDS, PARTIAL_WEIGHTS)[0]
    return duration - (rng.randrange(900) if rng.random() < 0.4 else 0), TRACKDONE


def _session(rng: random.Random, frac: float, year: int, country: str) -> Session:
    """A new session's settings, `frac` of the way through the history."""
    weights = [early + (late - early) * frac for *_, early, late in DEVICES]
    device = rng.choices(range(len(DEVICES)), weights=weights)[0]
    _, legacy_names, mobile, *_ = DEVICES[device]
    # The listener replaces a device every few years; the strings age from 2015 to 2026.
    legacy_name = legacy_names[min(len(legacy_names) - 1,
                                   max(0, (year - 2015) * len(legacy_names) // 12))]
    if country != HOME:
        ip = f"192.0.2.{rng.randrange(1, 255)}"
    elif not mobile:
        ip = f"198.51.100.{(year * 37) % 254 + 1}"  # the home line changes address yearly
    elif rng.random() < 0.3 * frac:
        ip = "2001:db8:{:x}:{:x}::{:x}".format(*(rng.randrange(1, 0xffff) for _ in range(3)))
    else:
        ip = f"203.0.113.{rng.randrange(1, 255)}"
    offline = mobile and rng.random() < (0.3 if country != HOME else 0.07)
    start = rng.choices(("clickrow", "playbtn", "appload", "remote"), (40, 25, 25, 10))[0]
    return Session(device, legacy_name, country, ip, rng.random() < 0.45, rng.random() < 0.01,
                   start, offline)


def _history(records: int, years: float, seed: int, end: datetime) -> History:
    """The whole listening history for these arguments; the same arguments give the same one."""
    rng = random.Random(f"{seed}:history")
    cat = _catalogue(seed, records)
    days, end_ts = max(1, round(years * 365.25)), int(end.timestamp())
    first_day = end_ts // 86_400 - days
    kind, burst, item, ms, end_code = _plan_streams(rng, cat, records, max(1, round(years)))
    weights, countries = _day_plan(rng, days, first_day)
    zeros = bytes(8 * records)
    ts, offline_ts, session = array("q", zeros), array("q", zeros), array("q", zeros)
    offline, sessions = bytearray(records), []
    i, cursor = 0, first_day * 86_400_000
    # No day holds more than 16 hours of streams, so that busy days never pile up.
    cap = max(int(16 * 3_600_000 * records / (sum(ms) or 1)), 2 * records // days + 1)
    for d, count in enumerate(_spread(weights, records, cap)):
        if not count:
            continue
        day = first_day + d
        tm = time.gmtime(day * 86_400)
        utc_offset = 2 if 4 <= tm.tm_mon <= 10 else 1  # the listener lives on Central European time
        hours = WEEKEND_HOURS if (day + 3) % 7 >= 5 else WEEKDAY_HOURS
        k = max(1, min(count, round(count / rng.uniform(10, 35))))
        cuts = sorted(rng.sample(range(1, count), k - 1))
        for hour, lo, hi in zip(sorted(rng.choices(range(24), hours, k=k)), [0, *cuts],
                                [*cuts, count], strict=True):
            planned = (day * 86_400 + (hour - utc_offset) * 3600 + rng.randrange(3600)) * 1000
            # A busy day's sessions run into each other's planned hours, never overlap.
            t = max(planned, cursor + rng.randint(20_000, 900_000))
            sessions.append(_session(rng, d / days, tm.tm_year, countries[d]))
            for j in range(i + lo, i + hi):
                session[j], offline[j] = len(sessions) - 1, sessions[-1].offline
                if kind[j] == EPISODE:  # weekly shows, mostly heard within weeks of release
                    back = rng.randrange(21) if rng.random() < 0.9 else rng.randrange(d + 1)
                    aired = item[j] * 53 % 300  # episodes a show had before the history began
                    item[j] = item[j] * 100_000 + max(1, aired + (d - back) // 7 + 1)
                if burst[j] and j > i + lo:
                    ts[j] = ts[j - 1]
                    if burst[j] == OFFLINE_SYNC:
                        offline[j - 1] = offline[j] = 1
                        if offline_ts[j - 1] < 0:
                            offline_ts[j - 1] = ts[j - 1] - ms[j - 1] // 1000
                        offline_ts[j] = offline_ts[j - 1] - rng.randint(600, 3 * 86_400)
                    else:
                        offline_ts[j] = ts[j] if offline[j] else -1
                    continue
                offline_ts[j] = t // 1000 if offline[j] else -1
                t += ms[j]
                ts[j] = t // 1000
                t += rng.randint(100, 1500)
            cursor = t
        i += count
    overshoot = ts[-1] - end_ts + 1 if records else 0
    if overshoot > 0:  # the last busy days ran past `end`
        for j in range(records):
            ts[j] -= overshoot
            offline_ts[j] -= overshoot if offline_ts[j] >= 0 else 0
    return History(cat, ts, ms, kind, item, end_code, offline, offline_ts, session, sessions)


def _episode(cat: Catalogue, code: int) -> tuple[str, str, str]:
    """Show name, episode name and episode URI of `code` (show * 100_000 + number)."""
    show, number = divmod(code, 100_000)
    pick = random.Random(f"{cat.seed}:episode:{code}")
    title = f"{pick.choice(WORDS)} {pick.choice(WORDS).lower()}"
    name = (f"#{number}: {title}", f"{title} with {pick.choice(FIRST)} {pick.choice(LAST)}",
            f"Episode {number} - {title}")[show % 3]
    return cat.shows[show], name, f"spotify:episode:{_spotify_id(cat.seed, 'episode', code)}"


def _current_row(ts: int, platform: str, ms: int, country: str, ip: str,
                 music: tuple | None, episode: tuple | None, start: str, end: int,
                 shuffle: bool, offline: bool, offline_ts: int, incognito: bool) -> dict:
    """One stream in today's extended-history format."""
    track, artist, album, uri = music or (None, None, None, None)
    show, name, episode_uri = episode or (None, None, None)
    return {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)), "platform": platform,
            "ms_played": ms, "conn_country": country, "ip_addr": ip,
            "master_metadata_track_name": track, "master_metadata_album_artist_name": artist,
            "master_metadata_album_album_name": album, "spotify_track_uri": uri,
            "episode_name": name, "episode_show_name": show, "spotify_episode_uri": episode_uri,
            "audiobook_title": None, "audiobook_uri": None, "audiobook_chapter_uri": None,
            "audiobook_chapter_title": None, "reason_start": start, "reason_end": ENDS[end],
            "shuffle": shuffle, "skipped": end == FWDBTN, "offline": offline,
            "offline_timestamp": offline_ts if offline_ts >= 0 else None,
            "incognito_mode": incognito}


def _music(cat: Catalogue, track: int) -> tuple[str, str, str, str]:
    return (cat.track_name[track], cat.artists[cat.track_artist[track]], cat.track_album[track],
            f"spotify:track:{cat.track_uri[track]}")


def _record(h: History, i: int, legacy: bool, username: str) -> dict:
    """Stream `i` of the history as Spotify writes it, in the chosen format."""
    device, legacy_name, country, ip, shuffle, incognito, start, _ = h.sessions[h.session[i]]
    kind, stop, ms, end = h.kind[i], h.ts[i], h.ms[i], h.end[i]
    if i and h.session[i] == h.session[i - 1]:
        start = START_AFTER[h.end[i - 1]]
    if i % 997 == 13:
        start = "trackerror"
    year = time.gmtime(stop).tm_year
    platform = DEVICES[device][0] if year >= LEGACY_SINCE_YEAR else legacy_name
    row = _current_row(stop, platform, ms, country, ip,
                       _music(h.cat, h.item[i]) if kind == MUSIC else None,
                       _episode(h.cat, h.item[i]) if kind == EPISODE else None,
                       start, end, shuffle, bool(h.offline[i]), h.offline_ts[i], incognito)
    if not legacy:
        return row
    # The old format stamps every stream, in milliseconds, and had no such stamp before 2015.
    stamp = h.offline_ts[i] * 1000 + i % 1000 if h.offline_ts[i] >= 0 else stop * 1000 - ms
    agent = WEB_AGENT if DEVICES[device][0] == "web_player" else "unknown"
    row |= {"username": username, "platform": legacy_name, "ip_addr_decrypted": ip,
            "user_agent_decrypted": agent if i % 53 else None,  # a few streams lack one
            # Older streams only record `skipped` when it is true.
            "skipped": True if end == FWDBTN else False if year >= 2020 else None,
            "offline_timestamp": stamp if year >= 2015 else 0}
    return {key: row[key] for key in LEGACY_KEYS}


def _video_rows(h: History, count: int) -> list[dict]:
    """Video-podcast streams, which Spotify keeps in a file of their own."""
    rng = random.Random(f"{h.cat.seed}:video")
    begin = h.ts[0] + (h.ts[-1] - h.ts[0]) * 6 // 10  # video podcasts are a recent thing
    rows = []
    for stop in sorted(rng.randrange(begin, h.ts[-1] + 1) for _ in range(count)):
        show = rng.randrange(min(3, len(h.cat.shows)))
        episode = _episode(h.cat, show * 100_000 + rng.randint(1, 200))
        length, r = h.cat.show_ms[show], rng.random()
        ms, end = ((rng.randrange(30_000), FWDBTN) if r < 0.2 else (length, TRACKDONE)
                   if r < 0.4 else (rng.randrange(30_000, length), ENDPLAY))
        platform = rng.choice(("android", "ios", "web_player", "windows"))
        rows.append(_current_row(stop, platform, ms, HOME, f"203.0.113.{rng.randrange(1, 255)}",
                                 None, episode, rng.choice(("clickrow", "playbtn")), end, False,
                                 False, -1, False))
    return rows


def _years(rows: list[dict], key: str) -> str:
    first, last = rows[0][key][:4], rows[-1][key][:4]
    return first if first == last else f"{first}-{last}"


def _dump(path: Path, rows: list | dict, separators: tuple[str, str] = (",", ": ")) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(rows, handle, ensure_ascii=False, indent=2, separators=separators)
    return path


def write_extended(dest: Path, records: int = 500_000, years: float = 10.0, *, seed: int = 1,
                   end: datetime | None = None, legacy: bool = False, video: bool = True,
                   per_file: int = 16_000) -> list[Path]:
    """Write an extended streaming history of `records` streams into `dest`; return the files."""
    h = _history(records, years, seed, end or END)
    dest.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{seed}:files")
    username = _username(seed)
    paths, carried, lo = [], [], 0
    while lo < records:
        hi = min(records, lo + round(per_file * rng.uniform(0.97, 1.03)))
        rows = carried + [_record(h, i, legacy, username) for i in range(lo, hi)]
        name = (f"endsong_{len(paths)}.json" if legacy else
                f"Streaming_History_Audio_{_years(rows, 'ts')}_{len(paths)}.json")
        paths.append(_dump(dest / name, rows))
        # Real exports repeat the streams around a file boundary at the start of the next file.
        repeat = min(hi - lo - 1, round(per_file * 0.005 * rng.uniform(0.4, 1.6)))
        carried, lo = rows[len(rows) - repeat:], hi
    if video and not legacy and records:
        rows = _video_rows(h, max(5, round(300 * records / 500_000)))
        paths.append(_dump(dest / f"Streaming_History_Video_{_years(rows, 'ts')}.json", rows))
    return paths


def _username(seed: int) -> str:
    rng = random.Random(f"{seed}:user")
    return f"{rng.choice(WORDS).lower()}{rng.choice(SYLLABLES)}{rng.randrange(100)}"


def _account_extras(dest: Path, h: History, since: int) -> list[Path]:
    """The other MyData files, which mention tracks too and which an importer must ignore."""
    cat, rng, user = h.cat, random.Random(f"{h.cat.seed}:mydata"), _username(h.cat.seed)
    day = lambda ts: time.strftime("%Y-%m-%d", time.gmtime(ts))  # noqa: E731
    tracks = [_music(cat, t) for t in rng.sample(range(len(cat.track_name)),
                                                 min(150, len(cat.track_name)))]
    playlists = [{"name": name, "lastModifiedDate": day(since + rng.randrange(86_400 * 90)),
                  "collaborators": [], "description": None, "numberOfFollowers": rng.randrange(3),
                  "items": [{"track": {"trackName": t, "artistName": a, "albumName": al,
                                       "trackUri": uri},
                             "episode": None, "audiobook": None, "localTrack": None,
                             "addedDate": day(h.ts[0] + rng.randrange(h.ts[-1] - h.ts[0] + 1))}
                            for t, a, al, uri in rng.sample(tracks, min(len(tracks), 40))]}
                 for name in ("Road trip", "Läsa & plugga", "🔥 2025")]
    searches = [{"platform": rng.choice(("ANDROID", "DESKTOP", "IOS")),
                 "searchTime": time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(ts))
                 + f"{rng.randrange(1000):03d}Z[UTC]",
                 "searchQuery": a[: rng.randint(1, len(a))].lower(),
                 "searchInteractionURIs": [uri] if rng.random() < 0.6 else []}
                for ts, (_, a, _, uri) in zip(sorted(rng.randint(since, h.ts[-1])
                                                     for _ in range(30)),
                                              rng.choices(tracks, k=30), strict=True)]
    files = {
        "Userdata.json": {"username": user, "email": f"{user}@example.com", "country": HOME,
                          "createdFromFacebook": False, "facebookUid": None,
                          "birthdate": "1991-05-17", "gender": "female", "postalCode": None,
                          "mobileNumber": None, "mobileOperator": None, "mobileBrand": None,
                          "creationTime": day(h.ts[0] - 86_400 * 40)},
        "Identity.json": {"displayName": user, "firstName": "Elsa", "lastName": "Lindqvist",
                          "imageUrl": "", "largeImageUrl": "", "tasteMaker": False,
                          "verified": False},
        "Playlist1.json": {"playlists": playlists},
        "SearchQueries.json": searches,
        "YourLibrary.json": {"tracks": [{"artist": a, "album": al, "track": t, "uri": uri}
                                        for t, a, al, uri in tracks[:60]],
                             "albums": [], "shows": [], "episodes": [], "bannedTracks": [],
                             "artists": [], "bannedArtists": [], "other": []},
    }
    return [_dump(dest / name, content, (",", " : ")) for name, content in files.items()]


def write_account(dest: Path, records: int = 100_000, *, seed: int = 1,
                  extended_records: int = 500_000, years: float = 10.0,
                  end: datetime | None = None, podcasts: bool = True) -> list[Path]:
    """Write account data for the last `records` music streams of that extended history."""
    h = _history(extended_records, years, seed, end or END)
    cat, rng = h.cat, random.Random(f"{seed}:account")
    music = [i for i in range(len(h.ts)) if h.kind[i] == MUSIC]
    music = music[max(0, len(music) - records):]
    if not music:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    since = h.ts[music[0]]
    rows = [(h.ts[i], cat.artists[cat.track_artist[h.item[i]]], cat.track_name[h.item[i]],
             h.ms[i]) for i in music]
    # Account data holds some streams the extended history lacks.
    cum = list(accumulate(cat.track_weight))
    for t in rng.choices(range(len(cum)), cum_weights=cum, k=round(len(rows) * 0.02)):
        rows.append((rng.randint(since, h.ts[-1]), cat.artists[cat.track_artist[t]],
                     cat.track_name[t], _music_outcome(rng, cat.track_ms[t])[0]))
    rows.sort(key=lambda row: row[0])
    minute = lambda ts: time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))  # noqa: E731
    paths = []
    for n, lo in enumerate(range(0, len(rows), 10_000)):
        chunk = [{"endTime": minute(ts), "artistName": artist, "trackName": track,
                  "msPlayed": ms} for ts, artist, track, ms in rows[lo:lo + 10_000]]
        paths.append(_dump(dest / f"StreamingHistory_music_{n}.json", chunk, (",", " : ")))
    episodes = [i for i in range(music[0], len(h.ts)) if h.kind[i] == EPISODE]
    if podcasts and episodes:
        chunk = [{"endTime": minute(h.ts[i]), "podcastName": show, "episodeName": name,
                  "msPlayed": h.ms[i]}
                 for i in episodes for show, name, _ in [_episode(cat, h.item[i])]]
        paths.append(_dump(dest / "StreamingHistory_podcast_0.json", chunk, (",", " : ")))
    return paths + _account_extras(dest, h, since)


def write_zip(dest_zip: Path, *, extended: Sequence[Path] = (),
              account: Sequence[Path] = ()) -> Path:
    """Pack the files the way Spotify delivers them: one folder per kind of export."""
    stamp = END.timetuple()[:6]  # fixed, so that the same files give the same zip
    with zipfile.ZipFile(dest_zip, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, paths in (("Spotify Extended Streaming History", extended),
                              ("MyData", account)):
            for path in paths:
                info = zipfile.ZipInfo(f"{folder}/{path.name}", date_time=stamp)
                info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
                with path.open("rb") as src, archive.open(info, "w") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    return dest_zip
