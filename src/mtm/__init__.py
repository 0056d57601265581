"""Music Time Machine: a self-hosted time machine for your Spotify listening history."""
