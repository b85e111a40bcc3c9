"""Write the OpenAPI document the code generates: ``python -m app.dev.openapi_spec openapi/openapi.json``."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def offline_settings():  # type: ignore[no-untyped-def]
    """Settings that need no database and no secrets on disk (the spec depends on neither)."""
    from app.settings import Settings

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return Settings(
        jwt_private_key_pem=pem,
        data_key=base64.b64decode(base64.b64encode(bytes(range(32)))),
        mongodb_uri="mongodb://127.0.0.1:9/hoso-openapi",  # never contacted
        argon2_memory_kib=1024, argon2_time_cost=1,
    )


def render(spec: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, final newline."""
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> str:
    """Build the app offline and render its OpenAPI document."""
    from app import create_app

    app = create_app(offline_settings())
    with app.app_context():
        spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    return render(spec)


def main(argv: list[str]) -> int:
    """Write the document to the path given (default ``openapi/openapi.json``)."""
    target = Path(argv[0] if argv else "openapi/openapi.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(generate())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
