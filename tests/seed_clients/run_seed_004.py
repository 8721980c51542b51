"""Runs seed 004's Python client (seed_004_client.py, as the seed gives it)
against a local server: only the base URL and the API key are substituted.

    SEED_BASE_URL=http://127.0.0.1:3000 SEED_API_KEY=dev-key python3 run_seed_004.py

The seed's text lost its indentation; seed_004_client.py restores it and
changes nothing else.
"""

import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
source = (HERE / "seed_004_client.py").read_text()

for old, new in (
    ("https://api.wickson.ai", os.environ["SEED_BASE_URL"].rstrip("/")),
    ('"YOUR_API_KEY"', repr(os.environ["SEED_API_KEY"])),
):
    if source.count(old) != 1:
        raise SystemExit(f"expected exactly one {old!r} in the seed client")
    source = source.replace(old, new)

exec(compile(source, str(HERE / "seed_004_client.py"), "exec"), {"__name__": "__main__"})
