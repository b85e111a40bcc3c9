"""The verifier web page for staff (GET /verify): static files built from ``web/verifier`` by ``make``."""
