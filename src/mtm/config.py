"""Settings read from the environment and `.env`, the same for the server and the CLI.

One rule finds both `.env` and the data directory: they sit in the project directory (the
clone the app was installed from, where `pyproject.toml` is), wherever the command is run
from. `MTM_ENV_FILE` and `MTM_DATA_DIR` point elsewhere; a relative `MTM_DATA_DIR` is
taken from the project directory too. Installed without a clone (`pip install .`, the Docker
image), `.env` and a relative `MTM_DATA_DIR` are read from the current directory, and the
data directory defaults to `$XDG_DATA_HOME/music-time-machine` (`~/.local/share/...`), so it
does not change with the directory `mtm` is run from.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from starlette.config import Config
from starlette.datastructures import CommaSeparatedStrings

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[1]
# Shipped inside the package: a wheel holds a copy of the top-level static/, and in a clone
# src/mtm/static is a link to it, so the app and `mtm vendor` use one folder either way.
STATIC_DIR = PACKAGE_DIR / "static"
DATA_DIR_NAME = "music-time-machine"
SPOTIFY_ACCOUNTS_URL = "https://accounts.spotify.com"
SPOTIFY_API_URL = "https://api.spotify.com/v1"
# Exactly what the app uses (mtm.connection.FEATURES says what for): recording plays, top-list
# snapshots, making and changing private playlists, and deleting them (DELETE /me/library).
SCOPES = ("user-read-recently-played", "user-top-read", "playlist-modify-private",
          "user-library-modify")


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to know about its surroundings."""

    data_dir: Path
    secret_key: str
    spotify_client_id: str | None
    spotify_client_secret: str | None
    redirect_uri: str | None
    admins: frozenset[str]
    demo: bool
    sync_interval: int = 1800
    demo_plays: int = 60_000
    # The largest upload accepted (bytes): a 10-year export zip is about 40 MB.
    upload_limit: int = 1_000_000_000
    # Sign-in sessions end after this many days unused, and this many days after sign-in.
    session_idle_days: int = 14
    session_max_days: int = 90
    # The Spotify ids that may sign in (MTM_ALLOWED_USERS); None lets everyone in.
    allowed_users: frozenset[str] | None = None
    # Limits on sign-in attempts, uploads and downloads (MTM_RATE_LIMITS=off for test rigs).
    rate_limits: bool = True
    static_dir: Path = field(default=STATIC_DIR)
    # Where each choice came from, said at start-up (see `describe`).
    env_file: Path | None = None
    data_dir_origin: str = "given"
    demo_reason: str | None = None
    # Production mode (MTM_ENV=production): secure cookies, allowed hosts, JSON logs, HSTS.
    production: bool = False
    allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    workers: int = 1

    @property
    def database_path(self) -> Path:
        """Where the SQLite database lives."""
        return self.data_dir / "mtm.sqlite3"

    @property
    def scopes(self) -> tuple[str, ...]:
        """The Spotify scopes the app asks for."""
        return SCOPES

    @property
    def backups_dir(self) -> Path:
        """Where backups are written."""
        return self.data_dir / "backups"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded exports wait to be imported."""
        return self.data_dir / "uploads"


class _ProjectEnv:
    """The default `.env`: the one in the project directory, or `MTM_ENV_FILE`."""


PROJECT_ENV = _ProjectEnv()


class DataDirError(Exception):
    """The data directory cannot be used; the message is one sentence for the terminal."""


def in_clone() -> bool:
    """True when the app runs from a clone (an editable install), not an installed copy."""
    return (REPO_ROOT / "pyproject.toml").is_file()


def project_dir() -> Path:
    """The clone the app runs from; the current directory if installed without one."""
    return REPO_ROOT if in_clone() else Path.cwd()


def default_data_dir() -> tuple[Path, str]:
    """The data directory when MTM_DATA_DIR is not set, and how to say where it came from."""
    if in_clone():
        return REPO_ROOT / "data", "the default: data/ in the project directory"
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / DATA_DIR_NAME, "the default of an installed copy"


def usable_data_dir(path: Path) -> Path:
    """Make sure the data directory exists, is private and writable, or say why not.

    Checked by writing, not with os.access: root passes access checks on a read-only
    mount, and a volume may belong to another user than the one the app runs as.
    """
    hint = "set MTM_DATA_DIR to a directory this user can write"
    if path.exists() and not path.is_dir():
        raise DataDirError(f"The data directory {path} is not a directory; {hint}.")
    try:
        private_dir(path)
    except OSError as exc:
        if path.is_dir():
            raise DataDirError(f"The data directory {path} is not writable by this user "
                               f"({exc.strerror}); {hint}.") from None
        raise DataDirError(f"The data directory {path} cannot be created ({exc.strerror}); "
                           f"{hint}.") from None
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
        database = path / "mtm.sqlite3"
        if database.exists():
            # Opened for writing and closed at once: nothing is changed.
            with database.open("r+b"):
                pass
    except OSError as exc:
        raise DataDirError(f"The data directory {path} is not writable by this user "
                           f"({exc.strerror}); {hint}.") from None
    return path


def private_dir(path: Path) -> Path:
    """Create `path` readable by this user only; tighten it if it is ours and open to others.

    The data directory holds Spotify tokens and the session key, so nothing in it should be
    readable by other local users, whatever the umask.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(stat.S_IMODE(info.st_mode) & 0o700)
    return path


def _secret_key(data_dir: Path, configured: str | None) -> str:
    """Return the configured key, or one generated on first start and kept in the data dir."""
    if configured:
        return configured
    path = data_dir / "secret_key"
    try:
        if path.exists():
            return path.read_text().strip()
        key = secrets.token_urlsafe(48)
        # Created with 0600 so other local users cannot forge sessions.
        path.touch(mode=0o600)
        path.write_text(key)
    except OSError as exc:
        raise DataDirError(f"The session key {path} cannot be read or written by this user "
                           f"({exc.strerror}); fix its owner or set MTM_SECRET_KEY.") from None
    return key


def _sync_interval(raw: str | None, demo: bool) -> int:
    """Seconds between background syncs: 0 turns them off; at most an hour.

    Spotify keeps only the last 50 plays, so a heavy listener (50 short tracks in about
    two and a half hours) loses plays if the app waits longer than that.
    """
    if raw is None or raw == "":
        # The emulator has no rate limit, so demo users see new plays arrive sooner.
        return 300 if demo else 1800
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"MTM_SYNC_INTERVAL must be a whole number of seconds, not {raw!r}"
                         ) from None
    if value != 0 and not 60 <= value <= 3600:
        raise ValueError("MTM_SYNC_INTERVAL must be 0 (off) or between 60 and 3600 seconds")
    return value


def load_settings(env_file: str | Path | _ProjectEnv | None = PROJECT_ENV, *,
                  force_demo: bool = False, overrides: dict[str, str] | None = None
                  ) -> Settings:
    """Read settings from the environment, then `.env`; `overrides` win over both."""
    if isinstance(env_file, _ProjectEnv):
        env_file = os.environ.get("MTM_ENV_FILE") or project_dir() / ".env"
    env_path = Path(env_file).expanduser().resolve() if env_file else None
    found = env_path if env_path and env_path.is_file() else None
    config = Config(found)

    def get(name: str, default: str | None = None) -> str | None:
        if overrides and name in overrides:
            return overrides[name]
        value = config(name, default=default)
        return value or default

    def origin(name: str) -> str:
        if overrides and name in overrides:
            return "given"
        return f"{name} from " + ("the environment" if os.environ.get(name) else str(found))

    raw_dir = get("MTM_DATA_DIR")
    if raw_dir:
        data_dir = Path(raw_dir).expanduser()
        data_dir = data_dir if data_dir.is_absolute() else project_dir() / data_dir
        data_dir_origin = origin("MTM_DATA_DIR")
    else:
        data_dir, data_dir_origin = default_data_dir()
    data_dir = usable_data_dir(data_dir.resolve())
    client_id = get("SPOTIFY_CLIENT_ID")
    demo = force_demo or not client_id
    demo_reason = None
    if force_demo:
        demo_reason = "asked for with --demo"
    elif demo:
        where = f"the environment or {found}" if found else \
            f"the environment, and there is no {env_path or '.env'}"
        demo_reason = f"SPOTIFY_CLIENT_ID is not set in {where}"
    redirect_uri = get("SPOTIFY_REDIRECT_URI")
    production = _production(get("MTM_ENV"))
    return Settings(
        data_dir=data_dir,
        secret_key=_secret_key(data_dir, get("MTM_SECRET_KEY")),
        spotify_client_id=None if demo else client_id,
        spotify_client_secret=None if demo else get("SPOTIFY_CLIENT_SECRET"),
        redirect_uri=redirect_uri,
        admins=frozenset(CommaSeparatedStrings(get("MTM_ADMINS", "") or "")),
        demo=demo,
        sync_interval=_sync_interval(get("MTM_SYNC_INTERVAL"), demo),
        demo_plays=int(get("MTM_DEMO_PLAYS", "60000") or 60000),
        upload_limit=_megabytes(get("MTM_UPLOAD_LIMIT_MB"), "MTM_UPLOAD_LIMIT_MB", 1000),
        **_session_days(get("MTM_SESSION_IDLE_DAYS"), get("MTM_SESSION_MAX_DAYS")),
        allowed_users=_allowed_users(get("MTM_ALLOWED_USERS")),
        rate_limits=_switch(get("MTM_RATE_LIMITS"), "MTM_RATE_LIMITS", True),
        env_file=found,
        data_dir_origin=data_dir_origin,
        demo_reason=demo_reason,
        production=production,
        allowed_hosts=_allowed_hosts(get("MTM_ALLOWED_HOSTS"), redirect_uri, production),
        trusted_proxies=_trusted_proxies(get("MTM_TRUSTED_PROXIES")),
        workers=_workers(get("MTM_WORKERS")),
    )


def describe(settings: Settings) -> list[str]:
    """What start-up says: which `.env` and data directory are in use, and why demo mode."""
    lines = [f"Settings file: {settings.env_file}" if settings.env_file
             else "Settings file: none (settings from the environment only)",
             f"Data directory: {settings.data_dir} ({settings.data_dir_origin})"]
    if settings.demo:
        lines.append(f"Demo mode: {settings.demo_reason}; the built-in Spotify emulator "
                     "stands in for Spotify.")
    return lines


def _megabytes(raw: str | None, name: str, default: int) -> int:
    """A size given in megabytes, as bytes."""
    if raw is None or raw == "":
        return default * 1_000_000
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of megabytes, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1")
    return value * 1_000_000


def _days(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of days, not {raw!r}") from None
    # Browsers keep a cookie at most 400 days, whatever the server asks.
    if not 1 <= value <= 400:
        raise ValueError(f"{name} must be between 1 and 400 days")
    return value


def _session_days(idle: str | None, most: str | None) -> dict[str, int]:
    """How long a sign-in lasts unused (idle) and at most: each 1-400 days, idle <= most."""
    idle_days = _days(idle, "MTM_SESSION_IDLE_DAYS", 14)
    max_days = _days(most, "MTM_SESSION_MAX_DAYS", 90)
    if idle_days > max_days:
        raise ValueError(f"MTM_SESSION_IDLE_DAYS ({idle_days}) cannot be longer than "
                         f"MTM_SESSION_MAX_DAYS ({max_days})")
    return {"session_idle_days": idle_days, "session_max_days": max_days}


def _allowed_users(raw: str | None) -> frozenset[str] | None:
    """The Spotify ids allowed to sign in; None (unset or blank) lets everyone in."""
    ids = frozenset(item.strip() for item in CommaSeparatedStrings(raw or "") if item.strip())
    return ids or None


def _switch(raw: str | None, name: str, default: bool) -> bool:
    """An on/off setting."""
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"{name} must be on or off, not {raw!r}")


def _production(raw: str | None) -> bool:
    """MTM_ENV: production, or development (the default)."""
    value = (raw or "development").strip().lower()
    if value not in ("production", "development"):
        raise ValueError(f"MTM_ENV must be production or development, not {raw!r}")
    return value == "production"


def _allowed_hosts(raw: str | None, redirect_uri: str | None, production: bool
                   ) -> tuple[str, ...]:
    """The host names the app answers to; production needs them (or a redirect URI)."""
    hosts = tuple(h.strip().lower().rstrip(".") for h in CommaSeparatedStrings(raw or "")
                  if h.strip())
    if not hosts and production and redirect_uri:
        # The host Spotify sends browsers back to is the one the app is reached at.
        host = urlsplit(redirect_uri).hostname
        hosts = (host,) if host else ()
    if production and not hosts:
        raise ValueError("production mode needs to know the host names this app is reached "
                         "at: set MTM_ALLOWED_HOSTS (e.g. music.example.org) or "
                         "SPOTIFY_REDIRECT_URI (e.g. https://music.example.org/callback)")
    if production and all("*" in h for h in hosts) and not redirect_uri:
        raise ValueError("with only wildcard MTM_ALLOWED_HOSTS, production mode needs "
                         "SPOTIFY_REDIRECT_URI to know where Spotify sends browsers back")
    return hosts


def _trusted_proxies(raw: str | None) -> tuple[str, ...]:
    """The proxies whose X-Forwarded-For/-Proto are believed: IP addresses or networks."""
    proxies = tuple(p.strip() for p in CommaSeparatedStrings(raw or "") if p.strip())
    for proxy in proxies:
        if proxy == "*":
            continue
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError(f"MTM_TRUSTED_PROXIES takes IP addresses or networks such as "
                             f"172.16.0.0/12, not {proxy!r}") from None
    return proxies


def _workers(raw: str | None) -> int:
    """MTM_WORKERS: how many server processes share the database."""
    if raw is None or raw == "":
        return 1
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"MTM_WORKERS must be a whole number, not {raw!r}") from None
    if not 1 <= value <= 32:
        raise ValueError("MTM_WORKERS must be between 1 and 32")
    return value
