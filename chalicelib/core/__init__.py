"""The pure core: release model, Markdown, text, rendering, the index and the
site plan. No I/O happens here (no storage, no network, no clock), so the whole
package is the code the theme fingerprint hashes."""
