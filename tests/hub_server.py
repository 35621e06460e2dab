"""A Hugging Face Hub stand-in on loopback, for testing the real upload and download code.

It implements just the part of the Hub's HTTP API that ``huggingface_hub``'s own ``create_repo``,
``create_branch``, ``upload_folder`` / ``create_commit`` (preupload, then the NDJSON commit with
regular, base64 files: the stand-in answers ``uploadMode: regular`` so no LFS or Xet storage is
needed), ``repo_info``, ``list_repo_tree``, ``hf_hub_download`` / ``snapshot_download`` (HEAD and
GET on ``/resolve/`` with ``X-Repo-Commit``, ``ETag`` and ``X-Linked-Size``) and
``ModelCard.validate`` (``/api/validate-yaml``) use. Repositories live in memory as a chain of
immutable commits, so a pinned revision keeps serving the bytes it had.

    with LoopbackHub() as hub:           # 127.0.0.1, a free port, a daemon thread
        env = {"HF_ENDPOINT": hub.url}   # huggingface_hub reads it at import: set it before
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TOKEN_PREFIX = "hf_"
# The Hub's pipeline tags that a model card may use (a subset of its list, enough to reject typos).
PIPELINE_TAGS = frozenset({
    "object-detection", "image-classification", "image-segmentation", "image-feature-extraction",
    "video-classification", "zero-shot-object-detection", "keypoint-detection", "mask-generation",
    "depth-estimation", "image-to-image", "text-classification", "other",
})
LICENSES = frozenset({
    "apache-2.0", "mit", "bsd", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0",
    "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "gpl-3.0", "lgpl-3.0", "agpl-3.0", "mpl-2.0", "openrail", "unlicense",
    "unknown", "other",
})


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file, which the Hub sends as the ETag of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    oid: str
    parent: str | None
    files: dict[str, bytes]
    message: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)


def validate_card_yaml(content: str) -> list[str]:
    """The Hub's checks on a README's metadata that matter here; a list of error messages."""
    m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
    if not m:
        return []  # no metadata: the Hub only warns
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        return [f"metadata is not valid YAML: {e}"]
    if not isinstance(meta, dict):
        return ["metadata must be a YAML mapping"]
    errors = []
    lic = meta.get("license")
    if lic is not None and lic not in LICENSES:
        errors.append(f'"license" must be a license identifier the Hub knows, got {lic!r}')
    if lic == "other" and not (meta.get("license_name") and meta.get("license_link")):
        errors.append('"license: other" needs "license_name" and "license_link"')
    tag = meta.get("pipeline_tag")
    if tag is not None and tag not in PIPELINE_TAGS:
        errors.append(f'"pipeline_tag" must be a Hub task, got {tag!r}')
    tags = meta.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        errors.append('"tags" must be a list of strings')
    for key in ("library_name",):
        if key in meta and not isinstance(meta[key], str):
            errors.append(f'"{key}" must be a string')
    index = meta.get("model-index")
    if index is not None:
        if not isinstance(index, list):
            errors.append('"model-index" must be a list')
        else:
            for entry in index:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    errors.append('"model-index" entries need a "name"')
                    continue
                for res in entry.get("results") or []:
                    task, data, metrics = res.get("task") or {}, res.get("dataset") or {}, res.get("metrics")
                    if not isinstance(task.get("type"), str):
                        errors.append('"model-index" result needs "task.type"')
                    if not (isinstance(data.get("type"), str) and isinstance(data.get("name"), str)):
                        errors.append('"model-index" result needs "dataset.type" and "dataset.name"')
                    if not isinstance(metrics, list) or not metrics:
                        errors.append('"model-index" result needs "metrics"')
                        continue
                    for met in metrics:
                        if not isinstance(met.get("type"), str) or "value" not in met:
                            errors.append('"model-index" metric needs "type" and "value"')
    return errors


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args):  # quiet
        pass

    # ------------------------------------------------------------------------------ helpers
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, *, head: bool = False):
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None, *, head: bool = False):
        self._send(status, json.dumps(obj).encode(), headers, head=head)

    def _error(self, status: int, message: str, code: str | None = None, *, head: bool = False):
        self._json(status, {"error": message}, {"X-Error-Code": code} if code else None, head=head)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:].startswith(TOKEN_PREFIX)

    def _repo(self, repo_id: str, *, head: bool = False) -> Repo | None:
        repo = self.server.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404, f"Repository Not Found for url: {self.path}", "RepoNotFound", head=head)
            return None
        return repo

    def _writable_repo(self, repo_id: str) -> Repo | None:
        """The repository a write goes to, or None once the 401/404 answer is sent."""
        if not self._authorized():
            self._error(401, "Invalid credentials in Authorization header")
            return None
        return self._repo(repo_id)

    # ------------------------------------------------------------------------------- routes
    def do_HEAD(self):
        self._route("HEAD")

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def _route(self, method: str):
        self.server.hub.requests.append((method, self.path))
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        try:
            with self.server.hub.lock:
                if method == "POST" and path == "/api/repos/create":
                    return self._create_repo()
                if method == "POST" and path == "/api/validate-yaml":
                    return self._validate_yaml()
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(preupload|commit|branch)/([^/]+)", path)
                if method == "POST" and m:
                    repo_id, what, rev = m.group(1), m.group(2), unquote(m.group(3))
                    return {"preupload": self._preupload, "commit": self._commit, "branch": self._branch}[what](
                        repo_id, rev)
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
                if method == "GET" and m:
                    return self._info(m.group(1), unquote(m.group(2) or "main"))
                m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
                if method == "GET" and m:
                    return self._tree(m.group(1), unquote(m.group(2)), unquote((m.group(3) or "/")[1:]),
                                      query.get("recursive", ["False"])[0].lower() == "true")
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if method in ("GET", "HEAD") and m:
                    return self._resolve(m.group(1), unquote(m.group(2)), unquote(m.group(3)), head=method == "HEAD")
            self._error(404, f"no route for {method} {path}", head=method == "HEAD")
        except Exception as e:  # a bug in the stand-in must show up as a failed request, not a hang
            self._error(500, f"{type(e).__name__}: {e}", head=method == "HEAD")

    def _create_repo(self):
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        body = json.loads(self._body() or b"{}")
        if body.get("type", "model") != "model":
            return self._error(400, "this stand-in hosts model repositories only")
        if not body.get("organization"):
            return self._error(400, "give the repo id as owner/name")
        repo_id = f"{body['organization']}/{body['name']}"
        hub = self.server.hub
        if repo_id in hub.repos:
            return self._error(409, "You already created this model repo")
        repo = Repo(repo_id, private=body.get("visibility") == "private")
        first = Commit(hub.new_oid(repo_id, None, {}, "initial commit"), None, {}, "initial commit")
        repo.commits[first.oid] = first
        repo.branches["main"] = first.oid
        hub.repos[repo_id] = repo
        self._json(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _validate_yaml(self):
        body = json.loads(self._body() or b"{}")
        errors = validate_card_yaml(body.get("content", ""))
        if errors:
            return self._json(400, {"errors": [{"message": e} for e in errors], "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _preupload(self, repo_id: str, rev: str):
        repo = self._writable_repo(repo_id)
        if repo is None:
            return
        commit = repo.resolve(rev)
        if commit is None:
            return self._error(404, f"Revision Not Found: {rev}", "RevisionNotFound")
        files = json.loads(self._body())["files"]
        self._json(200, {"files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": git_blob_sha1(commit.files[f["path"]]) if f["path"] in commit.files else None}
            for f in files]})

    def _branch(self, repo_id: str, branch: str):
        repo = self._writable_repo(repo_id)
        if repo is None:
            return
        if branch in repo.branches:
            return self._error(409, f"branch {branch} already exists")
        start = json.loads(self._body() or b"{}").get("startingPoint") or "main"
        commit = repo.resolve(start)
        if commit is None:
            return self._error(404, f"Revision Not Found: {start}", "RevisionNotFound")
        repo.branches[branch] = commit.oid
        self._json(200, {})

    def _commit(self, repo_id: str, rev: str):
        repo = self._writable_repo(repo_id)
        if repo is None:
            return
        if rev not in repo.branches:
            return self._error(404, f"Invalid rev id: {rev} (commits go to a branch)", "RevisionNotFound")
        parent = repo.commits[repo.branches[rev]]
        files = dict(parent.files)
        message = ""
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary", "")
                if value.get("parentCommit") and value["parentCommit"] != parent.oid:
                    return self._error(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                if value.get("encoding") != "base64":
                    return self._error(400, f"unsupported file encoding {value.get('encoding')!r}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                prefix = value["path"].rstrip("/") + "/"
                for p in [p for p in files if p == value["path"] or (key == "deletedFolder" and p.startswith(prefix))]:
                    del files[p]
            else:  # lfsFile: the stand-in told the client to upload everything as regular files
                return self._error(400, f"this stand-in accepts regular files only, got {key!r}")
        oid = self.server.hub.new_oid(repo_id, parent.oid, files, message)
        repo.commits[oid] = Commit(oid, parent.oid, files, message)
        repo.branches[rev] = oid
        self._json(200, {"commitUrl": f"{self.server.hub.url}/{repo_id}/commit/{oid}", "commitOid": oid,
                         "success": True, "pullRequestUrl": None})

    def _info(self, repo_id: str, rev: str):
        repo = self._repo(repo_id)
        if repo is None:
            return
        commit = repo.resolve(rev)
        if commit is None:
            return self._error(404, f"Revision Not Found: {rev}", "RevisionNotFound")
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": commit.oid, "private": repo.private,
                         "siblings": [{"rfilename": p} for p in sorted(commit.files)], "tags": [],
                         "downloads": 0, "likes": 0})

    def _tree(self, repo_id: str, rev: str, sub: str, recursive: bool):
        repo = self._repo(repo_id)
        if repo is None:
            return
        commit = repo.resolve(rev)
        if commit is None:
            return self._error(404, f"Revision Not Found: {rev}", "RevisionNotFound")
        prefix = sub.rstrip("/") + "/" if sub else ""
        entries, folders = [], set()
        for p in sorted(commit.files):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            for i in range(rest.count("/")):
                folders.add(prefix + "/".join(rest.split("/")[:i + 1]))
            data = commit.files[p]
            entries.append({"type": "file", "path": p, "size": len(data), "oid": git_blob_sha1(data)})
        entries += [{"type": "directory", "path": f, "size": 0, "oid": hashlib.sha1(f.encode()).hexdigest()}
                    for f in sorted(folders)]
        self._json(200, entries)

    def _resolve(self, repo_id: str, rev: str, filename: str, *, head: bool):
        repo = self._repo(repo_id, head=head)
        if repo is None:
            return
        commit = repo.resolve(rev)
        if commit is None:
            return self._error(404, f"Revision Not Found: {rev}", "RevisionNotFound", head=head)
        if filename not in commit.files:
            return self._error(404, f"Entry Not Found: {filename}", "EntryNotFound", head=head)
        data = commit.files[filename]
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": commit.oid,
                   "ETag": f'"{git_blob_sha1(data)}"', "X-Linked-Size": len(data), "Accept-Ranges": "bytes"}
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if rng and not head:
            start = int(rng.group(1))
            end = int(rng.group(2)) if rng.group(2) else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start:end + 1], headers)
        if head:
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        self._send(200, data, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: "LoopbackHub"


class LoopbackHub:
    """The stand-in: ``start()`` serves on 127.0.0.1 at a free port, ``url`` is the endpoint."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def new_oid(self, repo_id: str, parent: str | None, files: dict[str, bytes], message: str) -> str:
        self._counter += 1
        h = hashlib.sha1(f"{repo_id}\0{parent}\0{message}\0{self._counter}".encode())
        for p in sorted(files):
            h.update(p.encode() + b"\0" + git_blob_sha1(files[p]).encode())
        return h.hexdigest()

    def file(self, repo_id: str, filename: str, revision: str = "main") -> bytes:
        """What the stand-in stores, read directly (not through HTTP)."""
        with self.lock:
            commit = self.repos[repo_id].resolve(revision)
            return commit.files[filename]

    def start(self) -> "LoopbackHub":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "LoopbackHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
