"""Content digests of files, cached by (size, mtime) so unchanged large videos are hashed once."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from core.digest import file_sha256


class DigestCache:
    """sha256 of files, remembered in a JSON file keyed by path, size and modification time.

    A file whose size and mtime are unchanged is not read again; a touched file is re-hashed, and
    if its content is the same its digest is the same, so nothing downstream re-runs.
    """

    def __init__(self, cache_file: Path):
        self.cache_file = cache_file
        self._entries: dict[str, list] = {}
        if cache_file.is_file():
            try:
                self._entries = json.loads(cache_file.read_text())
            except (json.JSONDecodeError, OSError):
                self._entries = {}
        self._dirty = False

    def digest(self, path: Path) -> str:
        path = Path(path).resolve()
        st = path.stat()
        key = str(path)
        hit = self._entries.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        sha = file_sha256(path)
        self._entries[key] = [st.st_size, st.st_mtime_ns, sha]
        self._dirty = True
        return sha

    def save(self) -> None:
        """Write the cache, merged with what other processes of the same session saved meanwhile (the
        Ray engine runs a session's trials in parallel), through a file of this process's own."""
        if self._dirty:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                on_disk = json.loads(self.cache_file.read_text()) if self.cache_file.is_file() else {}
            except (json.JSONDecodeError, OSError):
                on_disk = {}
            entries = {**on_disk, **self._entries} if isinstance(on_disk, dict) else self._entries
            tmp = self.cache_file.with_name(f"{self.cache_file.name}.{os.getpid()}.part")
            tmp.write_text(json.dumps(entries))
            tmp.replace(self.cache_file)
            self._entries = entries
            self._dirty = False


def digest_json(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def session_path_key(path: Path, root: Path) -> str:
    """How a fingerprint names a file: by its place in the session when it lies inside ``root`` (so a
    copied or moved session keeps its results), else by its absolute path."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return str(path.relative_to(root) if path.is_relative_to(root) else path)
