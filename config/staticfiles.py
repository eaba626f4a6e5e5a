"""Static files under content-hashed names (collectstatic), for a proxy to cache for good."""

from __future__ import annotations

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage, staticfiles_storage
from django.core.exceptions import ImproperlyConfigured


class HashedStaticFilesStorage(ManifestStaticFilesStorage):
    """Django's manifest storage, with ES module imports rewritten too: the console's
    `import ... from "./client/connection-manager.js"` must name the hashed file, or a browser holding a
    cached console.<hash>.js would load whatever connection-manager.js is current."""

    support_js_module_import_aggregation = True


def require_manifest() -> None:
    """Refuse to serve pages naming hashed files that collectstatic never wrote."""
    manifest = getattr(staticfiles_storage, "manifest_name", None)
    if manifest and not staticfiles_storage.exists(manifest):
        raise ImproperlyConfigured(
            f"SERVE_STATIC is off, so pages name collectstatic's hashed files, but {settings.STATIC_ROOT}/{manifest}"
            " is missing: run `manage.py collectstatic --noinput` (with this STATIC_ROOT) before starting daphne."
        )
