"""Offline updates of the box app (docs/formats.md, "Update package"): package.py makes
and reads the signed update package (`kiosk update-pack`, `kiosk update-keygen`);
install.py puts a verified release under the app folder (/data/app) and switches the
`current` link the launcher (image/files/usr/local/lib/kiosk/launch) starts. The rules
(manifest, version order) are kiosk.core.update."""
