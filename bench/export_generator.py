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
LEGACY_SINCE_YEAR = 2022  # older streams keep the long platform strings even in today's exports

WORDS = """Love Night Heart Fire Light Dream Rain Gold Blue Summer City River Ghost Wild Shadow
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
Lumière Nuit Ciel Sommar Vinter Hjärta Natten Kärlek Stjärnor Hav Zeit Liebe Nacht Traum""".split()
FIRST = """Anna Björn José Zoë Chloé Łukasz Søren Ana Miguel Renée Jürgen Ólafur Nikolai Aoife
Siobhán Mateo Lucía Amélie François Hannah Ezra Noah Maya Leo Elsa Oskar Ingrid Astrid Johan
Camille Inès Thiago Joaquín Ximena Dmitri Yuki Hiro Mei Jae Priya Arjun Fatima Omar Kwame Ada
Marcus Tyler Jade Ruby Finn Nora Ivy Felix Otis Luna Hugo Mila Theo Saoirse Grace Sam Alex""".split()
LAST = """Andersson Müller García Núñez Dvořák O'Brien Kowalski Sørensen Fernández Öztürk Nakamura
Kim Nguyễn Smith Johnson Brown Lefèvre Lindqvist Åberg Bergström Rossi Costa Silva Dubois Novak
Horváth Jansen Virtanen Ivanova Petrov Hansen Walker Young King Wright Hill Moreno Ortega Lopez
Martin Bernard Schmidt Weber Wagner Becker Hoffmann Larsen Nilsson Holm Quinn Reyes Cruz""".split()
SYLLABLES = "ka lo mi ra ne so ta vi el an or is un be da fe gi ho ju ly mo nu pa re sa ti vo wa ze yo".split()
SCRIPTS = {
    "ja": "夜 桜 星 夢 光 雨 恋 空 花火 東京 さよなら ありがとう 君の名 月光 青春 未来 ハート メロディ "
          "ドライブ シティ 宇宙 海 風 記憶".split(),
    "ko": "사랑 밤 별 하늘 바다 꿈 소녀 봄날 너 우리 기억 노래 시간 여름 비 마음".split(),
    "ru": "Ночь Город Море Звезда Кино Весна Любовь Дождь Сердце Лето Небо Зима Мечта".split(),
}
EMOJI = "✨ 🌙 🔥 💔 🌊 🌸 🖤 🦋".split()
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
    sessions: list[tuple]  # see _session


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


def _catalogue(seed: int, records: int) -> Catalogue:
    """A catalogue sized like a real listener's for `records` streams, Zipf-like popularity."""
    rng = random.Random(f"{seed}:catalogue")
    scale = (records / 500_000) ** 0.8
    n_tracks = max(60, round(46_000 * scale))
    n_artists = min(n_tracks, max(30, round(9_000 * scale)))
    artists: dict[str, str] = {}
    while len(artists) < n_artists:
        name, script = _artist_name(rng)
        artists.setdefault(name, script)
    artist_weight = [1 / (rank + 5) ** 1.1 for rank in range(n_artists)]
    # Favourite artists are the ones with many tracks in a history.
    per_artist = [1 + c for c in _apportion([w ** 0.6 for w in artist_weight],
                                            n_tracks - n_artists)]
    track_artist, names, albums, durations, weights = [], [], [], [], []
    for a, (artist, script) in enumerate(artists.items()):
        count, mine, album = per_artist[a], {}, _phrase(rng, script)
        left_on_album = rng.randint(4, 14)
        spread = sum(1 / (k + 1) ** 0.8 for k in range(count))
        for k in range(count):
            if left_on_album == 0:
                album, left_on_album = _phrase(rng, script), rng.randint(4, 14)
            left_on_album -= 1
            duration = int(rng.triangular(90, 420, 200) * 1000) + rng.randrange(1000)
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
            weights.append(artist_weight[a] / (k + 1) ** 0.8 / spread)
    n_shows = max(3, round(40 * scale))
    shows = list(dict.fromkeys(
        rng.choice(("The {} {} Podcast", "{} Talk", "Daily {}", "{} & {} Show", "{} Radio"))
        .format(rng.choice(WORDS), rng.choice(WORDS)) for _ in range(n_shows * 2)))[:n_shows]
    return Catalogue(list(artists), track_artist, names, albums, durations,
                     [_spotify_id(seed, "track", t) for t in range(len(names))], weights,
                     shows, [rng.randint(15, 100) * 60_000 for _ in shows], seed)


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
            burst[i] = QUICK_SKIP if r < 0.013 else OFFLINE_SYNC if r < 0.02 else 0
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
            ms[i], end[i] = ((rng.randrange(30_000), FWDBTN) if r < 0.15 else
                             (length, TRACKDONE) if r < 0.5 else
                             (rng.randrange(30_000, length), rng.choice((ENDPLAY, LOGOUT, EXIT))))
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
    if r < 0.215:
        return 1 + int(29_998 * rng.random() ** 1.7), FWDBTN if rng.random() < 0.9 else BACKBTN
    if r < 0.34:
        return rng.randint(30_000, duration), rng.choices(PARTIAL_ENDS, PARTIAL_WEIGHTS)[0]
    return duration - (rng.randrange(900) if rng.random() < 0.4 else 0), TRACKDONE


def _session(rng: random.Random, frac: float, year: int, country: str) -> tuple:
    """Device, network and playback settings shared by the streams of one session."""
    weights = [early + (late - early) * frac for *_, early, late in DEVICES]
    device = rng.choices(range(len(DEVICES)), weights=weights)[0]
    _, legacy_names, mobile, *_ = DEVICES[device]
    legacy_name = legacy_names[min(len(legacy_names) - 1, int(frac * len(legacy_names)))]
    if country != HOME:
        ip = f"192.0.2.{rng.randrange(1, 255)}"
    elif not mobile:
        ip = f"198.51.100.{(year * 37) % 254 + 1}"  # the home line changes address yearly
    elif rng.random() < 0.3 * frac:
        ip = f"2001:db8:{rng.randrange(0x10000):x}:{rng.randrange(0x10000):x}::{rng.randrange(1, 0xffff):x}"
    else:
        ip = f"203.0.113.{rng.randrange(1, 255)}"
    offline = mobile and rng.random() < (0.3 if country != HOME else 0.07)
    start = rng.choices(("clickrow", "playbtn", "appload", "remote"), (40, 25, 25, 10))[0]
    return (device, legacy_name, country, ip, rng.random() < 0.45, rng.random() < 0.01, start,
            offline)
