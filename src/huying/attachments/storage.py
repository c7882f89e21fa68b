"""Where the bytes of attachments are kept, by SHA-256: once per content, however many
attachments name it.

- `DatabaseStorage` (`attachments.storage: database`, the default): a row of
  `attachment_blobs`. Every replica reads the same rows and nothing else needs backing up.
- `DirectoryStorage` (`attachments.storage: {directory: PATH}`): a file named by the SHA-256
  in a subfolder named by its first two hex digits, readable by its owner only (0600, the
  folders 0700). It is written to a temporary file beside it and renamed into place, so a
  reader never sees half a file and a crash leaves no file under a SHA-256 it does not hold.

A content no attachment names any more is forgotten (`forget`). An upload of that same
content may be on its way meanwhile, not yet committed. The database takes a row lock for
it: the upload holds one on the blob it reuses, and `forget` skips blobs locked and checks
again, in a statement of its own, that none is named. A directory has no locks: an upload
that reuses a file sets its modification time first, and `forget` leaves files alone that
were used within `DirectoryStorage.grace_seconds`; past that an upload has long committed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy.orm import Session

from huying.attachments import repository
from huying.settings import Settings

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Stored:
    """The bytes of one attachment for a download: in memory (`data`) or a file (`path`)."""

    data: bytes | None = None
    path: Path | None = None


class Storage(Protocol):
    def put(self, session: Session, sha256: str, source: IO[bytes]) -> None:
        """Keep the bytes of `source` (at its start) under `sha256`, unless kept already."""

    def get(self, session: Session, sha256: str) -> Stored | None:
        """The bytes kept under `sha256`; None when they are missing."""

    def forget(self, session: Session, candidates: Sequence[str], *, limit: int) -> int:
        """Remove what no attachment names, among `candidates` (a database sweeps every
        blob, at most `limit`). Returns how many were removed."""


def for_settings(settings: Settings) -> Storage:
    """The storage `attachments.storage` names."""
    directory = settings.attachments_dir
    return DatabaseStorage() if directory is None else DirectoryStorage(directory)


class DatabaseStorage:
    def put(self, session: Session, sha256: str, source: IO[bytes]) -> None:
        if repository.hold_blob(session, sha256):
            return  # the same bytes are kept already: not even sent to the server again
        source.seek(0)
        repository.add_blob(session, sha256, source.read())

    def get(self, session: Session, sha256: str) -> Stored | None:
        data = repository.blob_data(session, sha256)
        return None if data is None else Stored(data=data)

    def forget(self, session: Session, candidates: Sequence[str], *, limit: int) -> int:
        return repository.delete_unnamed_blobs(session, limit=limit)


@dataclass(frozen=True)
class DirectoryStorage:
    root: Path
    # A file used (written or reused) this recently is never forgotten: see the module.
    grace_seconds: float = 3600.0

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, session: Session, sha256: str, source: IO[bytes]) -> None:
        target = self.path(sha256)
        try:
            os.utime(target)  # reused: marked as used now, so that `forget` leaves it
            return
        except FileNotFoundError:
            pass
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                source.seek(0)
                shutil.copyfileobj(source, out, CHUNK_BYTES)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def get(self, session: Session, sha256: str) -> Stored | None:
        target = self.path(sha256)
        return Stored(path=target) if target.is_file() else None

    def forget(self, session: Session, candidates: Sequence[str], *, limit: int) -> int:
        named = repository.named_shas(session, candidates)
        removed = 0
        for sha256 in sorted(set(candidates) - named)[:limit]:
            target = self.path(sha256)
            try:
                if time.time() - target.stat().st_mtime < self.grace_seconds:
                    continue
                target.unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed
