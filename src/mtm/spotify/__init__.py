"""Spotify: OAuth, the Web API client, and the local emulator."""
