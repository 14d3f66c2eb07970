"""The variables that bin/dev exports to the processes of Procfile.dev.

`python -m localdev.devenv PORT` prints them as NAME=value lines, PORT being
the web server's port. It reads the settings, which load `.env` into the
environment where the environment leaves a variable unset, so values in
`.env` count as set. Only the EMAIL_PORT rule looks at the environment that
bin/dev itself was started with.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from localdev.urls import LOOPBACK_HOSTS

USAGE = "usage: python -m localdev.devenv PORT"


def dev_exports(port: int, started_with: Mapping[str, str]) -> dict[str, str]:
    """Return the variables for the processes that bin/dev starts.

    `started_with` is the environment before the settings loaded `.env`.

    - DISPATCH_CONTROL_QUEUE and IMPORT_QUEUE, which the control and import
      workers consume, and FLOWER_PORT (default 5555).
    - EMAIL_PORT=SMTP_SINK_PORT when SMTP_SINK_PORT moves the development
      sink and email goes to this machine, so email follows the sink. The
      EMAIL_PORT that `bin/setup` writes into `.env` gives way, and one set
      in the environment is kept.
    - SITE_URL=http://127.0.0.1:PORT when neither the environment nor `.env`
      sets SITE_URL, because unsubscribe links start with it and its default
      names port 8000.
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"PORT={port} is not a valid TCP port: use 1 to 65535.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    exports = {
        "DISPATCH_CONTROL_QUEUE": settings.DISPATCH_CONTROL_QUEUE,
        "IMPORT_QUEUE": settings.IMPORT_QUEUE,
        "FLOWER_PORT": os.environ.get("FLOWER_PORT") or "5555",
    }

    sink_port = started_with.get("SMTP_SINK_PORT", "")
    # OPTIONS is empty for an email service's backend, so its host is "".
    mailer: Mapping[str, Any] = settings.MAILERS["default"]
    email_host = mailer.get("OPTIONS", {}).get("host", "")
    if sink_port and not started_with.get("EMAIL_PORT") and email_host in LOOPBACK_HOSTS:
        exports["EMAIL_PORT"] = sink_port

    # Read after the settings, which copied SITE_URL from .env when it is there.
    if not os.environ.get("SITE_URL"):
        exports["SITE_URL"] = f"http://127.0.0.1:{port}"
    return exports


def main(arguments: list[str]) -> int:
    started_with = dict(os.environ)
    if len(arguments) != 1 or not arguments[0].isdigit():
        print(f"{USAGE}\ngot: {' '.join(arguments) or 'no arguments'}", file=sys.stderr)
        return 2
    try:
        exports = dev_exports(int(arguments[0]), started_with)
    except ValueError as exc:
        print(f"localdev.devenv: {exc}", file=sys.stderr)
        return 2
    for name, value in exports.items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
