"""Helpers shared by the tests and bench/: daphne and worker processes (`liveserver`, `servers`),
the production services (`production`), fault injection (`faults`), connection limits (`limits`),
the admin client (`admin_client`) and model factories (`factories`). No tests live here."""
