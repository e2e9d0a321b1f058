"""Compiled page templates kept between starts, in the user cache dir.

Compiling the ~20 templates the first page uses costs tens of milliseconds on every start;
jinja's bytecode cache keeps the result, keyed by each template's source checksum, so a new
version of a template is compiled again. The cache only ever saves time: one that cannot be
read or written (a full disk, a read-only home, a damaged file) costs the compile, never a
page (docs/design.md, "Start-up").
"""

from __future__ import annotations

import logging
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket

log = logging.getLogger(__name__)


class TemplateCache(jinja2.FileSystemBytecodeCache):
    """jinja's file cache in `directory` (created 0700 when first written)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(str(directory))
        self._path = directory
        self._failed = False

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception as exc:  # a damaged or unreadable file: compile, as without a cache
            log.debug("template cache: cannot read %s: %r", bucket.key, exc)
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        if self._failed:
            return
        try:
            self._path.mkdir(mode=0o700, parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError as exc:
            self._failed = True  # said once; every later start tries again
            log.warning(
                "template cache %s cannot be written (%s); pages still work", self._path, exc
            )
