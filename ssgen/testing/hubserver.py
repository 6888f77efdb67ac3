"""A small Hugging Face Hub-compatible HTTP server on 127.0.0.1, for tests and rehearsals.

It implements what huggingface_hub 2.4's `hf_hub_download` and `snapshot_download` call:

* `HEAD|GET /{repo}/resolve/{revision}/{filename}`: the file, with `X-Repo-Commit`, `ETag`
  (git blob sha1 for small text files; sha256 for "LFS" files, which also get `X-Linked-Etag` and
  `X-Linked-Size`), `Content-Length`, `Content-Disposition`, and `Range` support (used when a
  download resumes). No `X-Xet-*` headers, so the client uses plain HTTP.
* `GET /api/models/{repo}` and `/api/models/{repo}/revision/{revision}`: repo info (`sha`, `siblings`).
* `GET /api/models/{repo}/tree/{revision}[/{path}]?recursive=...`: the file listing.

Errors follow the real Hub: an unknown repo gives 401 (anonymous) or 404 with
`X-Error-Code: RepoNotFound`; an unknown revision 404 `RevisionNotFound`; an unknown file 404
`EntryNotFound` (with `X-Repo-Commit`); a gated repo's files without a valid
`Authorization: Bearer <token>` give 401 (no token) or 403 (token without access) with
`X-Error-Code: GatedRepo`. As on the real Hub, the metadata of a gated repo is public.

`main` and the pinned commit serve the same content. Usage:

    with HubServer({"org/repo": {"w.pth": b"..."}}, commit="0" * 40) as hub:
        os.environ["HF_ENDPOINT"] = hub.endpoint
        ...
        assert hub.count("GET", "/resolve/") == 1

Files too big to hash or hold in memory are served as `HubFile`s put into `hub.repos[repo][path]` directly:
one on disk with hashes computed beforehand, or a subclass whose `chunks` generates the bytes on request.
The server binds to 127.0.0.1 only and imports nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt", ".npz", ".gguf", ".onnx")
_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_RESOLVE_RE = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_INFO_RE = re.compile(rf"^/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?$")
_TREE_RE = re.compile(rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_CHUNK = 1024 * 1024


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, as the Hub reports for non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def closed_port_endpoint() -> str:
    """An http://127.0.0.1:PORT endpoint where nothing listens (the port was just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def lfs_oid(sha256: str, size: int) -> str:
    """The git blob id of a file's Git LFS pointer: what the Hub lists as an LFS file's `oid`."""
    return git_blob_sha1(f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode())


@dataclass
class HubFile:
    """One file of a served repo.

    path: its path in the repo. data: its bytes in memory, or None. disk: the file on disk, or None. size: its
    length in bytes. sha256: its content hash (the ETag of LFS files). git_sha1: the git blob id the listing
    gives as `oid` (of the content for small files, of the LFS pointer for LFS files: see `lfs_oid`).

    `HubFile.make(path, bytes_or_path)` computes size and hashes from the content. For a file too big to read
    twice, construct it with the hashes known beforehand (`HubFile(path, None, disk, size, sha256,
    lfs_oid(sha256, size))`). For bytes that are never stored, subclass it and override `chunks`. A file can be
    served under another path with `dataclasses.replace(file, path=...)`.
    """

    path: str
    data: bytes | None
    disk: Path | None
    size: int
    sha256: str
    git_sha1: str

    @classmethod
    def make(cls, path: str, content: bytes | Path) -> HubFile:
        """Index a file: size and hashes computed once."""
        if isinstance(content, Path):
            data = content.read_bytes()
            return cls(path, None, content, len(data), hashlib.sha256(data).hexdigest(), git_blob_sha1(data))
        return cls(path, bytes(content), None, len(content), hashlib.sha256(content).hexdigest(),
                   git_blob_sha1(content))

    @property
    def lfs(self) -> bool:
        """Weights are stored with git-lfs on the Hub (ETag = sha256)."""
        return self.path.endswith(LFS_SUFFIXES)

    @property
    def etag(self) -> str:
        """What the Hub sends as ETag: sha256 for LFS files, the git blob id otherwise."""
        return self.sha256 if self.lfs else self.git_sha1

    def chunks(self, start: int, end: int) -> Iterable[bytes | memoryview]:
        """Bytes start..end (inclusive), in pieces of at most a few MB: what a GET sends (override to generate)."""
        if self.data is not None:
            yield self.data[start:end + 1]
            return
        assert self.disk is not None
        with open(self.disk, "rb") as f:
            f.seek(start)
            left = end + 1 - start
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def tree_entry(self) -> dict:
        """The `/tree` listing entry."""
        entry = {"type": "file", "oid": self.git_sha1, "size": self.size, "path": self.path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
        return entry


class _HubError(Exception):
    """An error answer: status, X-Error-Code, X-Error-Message, extra headers."""

    def __init__(self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})


class HubServer:
    """A threaded Hub-compatible server bound to 127.0.0.1 on a free port; a context manager.

    repos: repo id -> {path in repo -> bytes or a Path on disk}, indexed into `self.repos` (repo id ->
    {path -> HubFile}), which may be changed while serving. commit: the 40-hex commit that `main` points to.
    gated: repo ids whose files need `Authorization: Bearer <t>` with t in tokens. `requests` lists
    (method, path) of every request; `headers` the matching request headers (names lower-cased).
    """

    def __init__(self, repos: Mapping[str, Mapping[str, bytes | Path]], commit: str,
                 gated: Iterable[str] = (), tokens: Iterable[str] = ()) -> None:
        if not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise ValueError(f"commit must be 40 lower-case hex digits, got {commit!r}")
        self.commit = commit
        self.repos = {repo: {name: HubFile.make(name, content) for name, content in files.items()}
                      for repo, files in repos.items()}
        self.gated = set(gated)
        self.tokens = set(tokens)
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def endpoint(self) -> str:
        """http://127.0.0.1:PORT"""
        if self._server is None:
            raise RuntimeError("HubServer is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HubServer:
        """Start serving in a background thread."""
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="HubServer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- helpers for tests

    def count(self, method: str | None = None, contains: str = "") -> int:
        """How many requests had this method (any if None) and a path containing `contains`."""
        with self._lock:
            return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)

    def clear(self) -> None:
        """Forget the requests seen so far."""
        with self._lock:
            self.requests.clear()
            self.headers.clear()

    def resolve_path(self, repo: str, filename: str, revision: str | None = None) -> str:
        """The request path of a file download, as the client sends it."""
        return f"/{repo}/resolve/{quote(revision or self.commit, safe='')}/{quote(filename)}"

    def _log(self, method: str, path: str, headers: Mapping[str, str]) -> None:
        with self._lock:
            self.requests.append((method, path))
            self.headers.append({name.lower(): value for name, value in headers.items()})

    # ---------------------------------------------------------------- Hub logic

    def _repo(self, repo: str, authorization: str | None) -> dict[str, HubFile]:
        """The repo's files, or RepoNotFound (401 anonymous, 404 authenticated, like the Hub)."""
        if repo not in self.repos:
            status = 404 if authorization else 401
            raise _HubError(status, "RepoNotFound", "Repository not found")
        return self.repos[repo]

    def _check_revision(self, revision: str) -> None:
        """Only `main` and the pinned commit exist."""
        if revision not in ("main", self.commit):
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    def _check_access(self, repo: str, authorization: str | None) -> None:
        """Gated repos need a known bearer token for their files."""
        if repo not in self.gated:
            return
        token = (authorization or "").removeprefix("Bearer ").strip() if authorization else None
        if token in self.tokens:
            return
        if not token:
            raise _HubError(401, "GatedRepo", f"Access to model {repo} is restricted. You must have access to"
                            " it and be authenticated to access it. Please log in.")
        raise _HubError(403, "GatedRepo", f"Access to model {repo} is restricted and you are not in the"
                        f" authorized list. Visit https://huggingface.co/{repo} to ask for access.")

    def resolve(self, repo: str, revision: str, filename: str, authorization: str | None) -> HubFile:
        """The file behind /resolve, or the Hub's error."""
        files = self._repo(repo, authorization)
        self._check_access(repo, authorization)
        self._check_revision(revision)
        if filename not in files:
            raise _HubError(404, "EntryNotFound", f"{filename} does not exist on \"{revision}\"",
                            {"X-Repo-Commit": self.commit})
        return files[filename]

    def info(self, repo: str, revision: str, authorization: str | None) -> dict:
        """The /api/models/{repo}[/revision/{rev}] document."""
        files = self._repo(repo, authorization)
        self._check_revision(revision)
        return {
            "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
            "id": repo,
            "modelId": repo,
            "sha": self.commit,
            "private": False,
            "gated": "manual" if repo in self.gated else False,
            "disabled": False,
            "siblings": [{"rfilename": name} for name in sorted(files)],
        }

    def tree(self, repo: str, revision: str, path: str, recursive: bool, authorization: str | None) -> list:
        """The /api/models/{repo}/tree/{rev}[/{path}] listing (files and folders)."""
        files = self._repo(repo, authorization)
        self._check_revision(revision)
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        entries: dict[str, dict] = {}
        for name in sorted(files):
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix):].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, min(depth, len(parts) - 1) + 1):
                folder = prefix + "/".join(parts[:i])
                folder_id = hashlib.sha1(folder.encode()).hexdigest()
                entries.setdefault(folder, {"type": "directory", "oid": folder_id, "size": 0, "path": folder})
            if recursive or len(parts) == 1:
                entries[name] = files[name].tree_entry()
        if prefix and not entries:
            raise _HubError(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"",
                            {"X-Repo-Commit": self.commit})
        return list(entries.values())


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the owning HubServer."""

    hub: HubServer
    server_version = "HubServer/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep test output clean."""

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.hub._log(method, url.path, self.headers)
        auth = self.headers.get("Authorization")
        try:
            if match := _RESOLVE_RE.match(url.path):
                repo, rev, name = unquote(match["repo"]), unquote(match["rev"]), unquote(match["file"])
                file = self.hub.resolve(repo, rev, name, auth)
                self._send_file(method, file)
            elif method == "GET" and (match := _TREE_RE.match(url.path)):
                query = parse_qs(url.query)
                recursive = query.get("recursive", ["false"])[0].lower() == "true"
                repo, rev, path = unquote(match["repo"]), unquote(match["rev"]), unquote(match["path"] or "")
                listing = self.hub.tree(repo, rev, path, recursive, auth)
                self._send_json(listing)
            elif method == "GET" and (match := _INFO_RE.match(url.path)):
                self._send_json(self.hub.info(unquote(match["repo"]), unquote(match["rev"] or "main"), auth))
            else:
                raise _HubError(404, None, f"Not found: {url.path}")
        except _HubError as error:
            self._send_error(method, error)

    def _send_json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, method: str, error: _HubError) -> None:
        body = json.dumps({"error": error.message}).encode()
        self.send_response(error.status)
        if error.code:
            self.send_header("X-Error-Code", error.code)
        self.send_header("X-Error-Message", error.message)
        for name, value in error.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", "0" if method == "HEAD" else str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _byte_range(self, size: int) -> tuple[int, int] | None:
        """The requested (start, end) from a `Range: bytes=a-[b]` header, None for the whole file."""
        header = self.headers.get("Range")
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", header or "")
        if not match:
            return None
        start = int(match[1])
        end = int(match[2]) if match[2] else size - 1
        return start, min(end, size - 1)

    def _send_file(self, method: str, file: HubFile) -> None:
        byte_range = self._byte_range(file.size)
        if byte_range is not None and byte_range[0] >= file.size > 0:
            raise _HubError(416, None, "Range Not Satisfiable", {"Content-Range": f"bytes */{file.size}"})
        start, end = byte_range or (0, file.size - 1)
        self.send_response(206 if byte_range else 200)
        self.send_header("X-Repo-Commit", self.hub.commit)
        self.send_header("ETag", f'"{file.etag}"')
        if file.lfs:
            self.send_header("X-Linked-Etag", f'"{file.sha256}"')
            self.send_header("X-Linked-Size", str(file.size))
        name = file.path.rsplit("/", 1)[-1]
        disposition = f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"
        self.send_header("Content-Disposition", disposition)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if byte_range:
            self.send_header("Content-Range", f"bytes {start}-{end}/{file.size}")
        self.send_header("Content-Length", str(max(end + 1 - start, 0)))
        self.end_headers()
        if method == "GET" and file.size:
            for chunk in file.chunks(start, end):
                self.wfile.write(chunk)
