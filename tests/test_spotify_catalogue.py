"""The generated catalogue: its size for a history, its long tail, its determinism."""

from __future__ import annotations

import math

from mtm.spotify.catalogue import BASE_ARTISTS, build_catalogue, catalogue_artists


def test_small_histories_keep_the_small_catalogue() -> None:
    assert catalogue_artists(0) == catalogue_artists(1_000) == BASE_ARTISTS
    assert len(build_catalogue(2026).artists) == BASE_ARTISTS


def test_the_catalogue_grows_sublinearly_with_the_history() -> None:
    sizes = [catalogue_artists(n) for n in (60_000, 500_000, 2_000_000)]
    assert sizes == sorted(sizes) and sizes[0] > BASE_ARTISTS
    # About 9,000 artists heard at 500,000 plays and 20,000 at 2,000,000, of more in the
    # catalogue (some are found only later, some never played).
    assert 9_000 < sizes[1] < 16_000 and 20_000 < sizes[2] < 35_000
    assert sizes[2] / sizes[1] < 4 * 0.7
    assert math.isclose(sizes[2] / sizes[1], (20_000 / 9_000), rel_tol=0.01)


def test_a_bigger_catalogue_adds_a_tail_and_keeps_the_rest() -> None:
    small, big = build_catalogue(2026), build_catalogue(2026, 1_500)
    assert big.artists[:BASE_ARTISTS] == small.artists
    assert big.albums[:len(small.albums)] == small.albums
    assert big.tracks[:len(small.tracks)] == small.tracks
    tail = big.tracks[len(small.tracks):]
    # Lesser-known artists: fewer tracks each, less popular.
    assert len(tail) / (1_500 - BASE_ARTISTS) < len(small.tracks) / BASE_ARTISTS
    assert (sum(a.popularity for a in big.artists[BASE_ARTISTS:]) / (1_500 - BASE_ARTISTS)
            < sum(a.popularity for a in small.artists) / BASE_ARTISTS)
    every = (big.artists, big.albums, big.tracks)
    assert all(len({x.spotify_id for x in items}) == len(items) for items in every)
    assert len({a.name for a in big.artists}) == len(big.artists)
    assert all(len(a.name) < 60 for a in big.artists)
    # Every artist has something to play, and guests are artists of the catalogue.
    assert {t.artists[0] for t in big.tracks} == set(range(1_500))
    assert all(0 <= i < 1_500 for t in tail for i in t.artists)


def test_the_same_seed_and_size_give_the_same_catalogue() -> None:
    first = build_catalogue(7, 900)
    build_catalogue.cache_clear()
    again = build_catalogue(7, 900)
    assert again is not first and again == first
    assert build_catalogue(8, 900).tracks[-1].spotify_id != first.tracks[-1].spotify_id
    assert again.tracks_by_id[first.tracks[-1].spotify_id] == first.tracks[-1]
