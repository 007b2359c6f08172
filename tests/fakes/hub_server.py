"""A small stand-in for the Hugging Face Hub HTTP endpoints that huggingface_hub's own client calls.

Point the real client at it with HF_ENDPOINT (or HfApi(endpoint=...)). It keeps repos in memory as
{path: bytes} plus a commit history, and answers the calls a dataset push and pull make:

  GET  /api/whoami-v2                                   who a token belongs to (401 for a bad token)
  POST /api/repos/create                                create a repo (409 + url when it exists, 403
                                                        for a namespace the token may not write to)
  GET  /api/datasets/{id}[/revision/{rev}]              repo info: sha, private, siblings
  POST /api/validate-yaml                               card metadata checks (license, sizes, configs)
  POST /api/datasets/{id}/preupload/{rev}               upload mode per file (lfs for binary files)
  POST /datasets/{id}.git/info/lfs/objects/batch        LFS batch: where to PUT each object
  PUT  /lfs-upload/{oid}                                the object's bytes (sha256 checked)
  POST /api/datasets/{id}/commit/{rev}                  NDJSON commit (header, file, lfsFile,
                                                        deletedFile); 409 when parentCommit is stale
  GET  /api/datasets/{id}/tree/{rev}[/{path}]           file listing (recursive)
  HEAD/GET /datasets/{id}/resolve/{rev}/{path}          file download with X-Repo-Commit / ETag

Xet storage is not emulated: run the client with HF_HUB_DISABLE_XET=1 so uploads take the LFS path.
`fail_next[kind] = status | "drop"` makes the next request of that kind fail (`fail_always`: every one) (drop = close the socket
without answering, as a network failure mid-upload does). Every request is logged in `requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import yaml

from tests.fakes.serving import Served, serve_in_thread

LICENSES = {"apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc0-1.0", "openrail", "other", "unknown"}
SIZE_CATEGORIES = {"n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T"}
TASK_CATEGORIES = {"text-generation", "question-answering", "text-classification", "summarization",
                   "translation", "conversational", "text2text-generation"}


@dataclass
class Repo:
    owner: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    lfs: set[str] = field(default_factory=set)
    commits: list[dict] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


class FakeHub:
    def __init__(self, tokens: dict[str, dict] | None = None) -> None:
        #: token -> {"name": user, "orgs": [...], "role": "write" | "read"}
        self.tokens = tokens or {}
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.fail_next: dict[str, int | str] = {}
        #: Like fail_next, but every time (a dead link: the client's retries fail too).
        self.fail_always: dict[str, int | str] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.url = ""  # set when it starts; still readable after it stops (a dead Hub's address)
        self._served: Served | None = None

    def __enter__(self) -> FakeHub:
        self._served = serve_in_thread(_handler(self), name="fake Hub")
        self.url = self._served.url
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._served is not None:
            self._served.stop()

    def add_repo(self, repo_id: str, owner: str, *, private: bool = False, files: dict[str, bytes] | None = None
                 ) -> Repo:
        repo = Repo(owner=owner, private=private)
        self.repos[repo_id] = repo
        self.commit(repo, "initial commit", files or {".gitattributes": b"*.parquet filter=lfs\n"}, [])
        return repo

    def commit(self, repo: Repo, summary: str, added: dict[str, bytes], deleted: list[str]) -> str:
        for path in deleted:
            repo.files.pop(path, None)
            repo.lfs.discard(path)
        repo.files.update(added)
        oid = hashlib.sha1(f"{repo.sha}{summary}{sorted(added)}{deleted}{len(repo.commits)}".encode()).hexdigest()
        repo.commits.append({"oid": oid, "summary": summary, "added": sorted(added), "deleted": deleted})
        return oid

    # Who may see / write a repo, as the Hub decides it.
    def user(self, auth: str | None) -> dict | None:
        if not auth or not auth.startswith("Bearer "):
            return None
        return self.tokens.get(auth[len("Bearer "):])

    def may_write(self, user: dict | None, namespace: str) -> bool:
        return bool(user) and user.get("role", "write") == "write" and (
            namespace == user["name"] or namespace in user.get("orgs", []))

    def may_read(self, user: dict | None, repo_id: str) -> bool:
        repo = self.repos[repo_id]
        ns = repo_id.split("/")[0]
        return not repo.private or bool(user) and (ns == user["name"] or ns in user.get("orgs", []))


def validate_card_yaml(content: str) -> list[str]:
    """The metadata checks the Hub runs on a dataset README (the subset a pushed card can trip)."""
    match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
    if not match:
        return []
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        return [f"YAML is invalid: {exc}"]
    errors = []
    for lic in [meta["license"]] if isinstance(meta.get("license"), str) else meta.get("license") or []:
        if lic not in LICENSES:
            errors.append(f'"license" must be a known license id, got {lic}')
    for size in meta.get("size_categories") or []:
        if size not in SIZE_CATEGORIES:
            errors.append(f'"size_categories" value {size} is not allowed')
    for task in meta.get("task_categories") or []:
        if task not in TASK_CATEGORIES:
            errors.append(f'"task_categories" value {task} is not a known task')
    for cfg in meta.get("configs") or []:
        if not isinstance(cfg, dict) or not isinstance(cfg.get("config_name"), str):
            errors.append('"configs" items need a config_name')
            continue
        for df in cfg.get("data_files") or []:
            if isinstance(df, dict) and not ({"split", "path"} <= set(df)):
                errors.append('"configs.data_files" items need split and path')
    if "tags" in meta and not all(isinstance(t, str) for t in meta["tags"]):
        errors.append('"tags" must be a list of strings')
    return errors


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        # --- plumbing -------------------------------------------------------------------------
        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                  raw: bytes | None = None) -> None:
            data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            self._send(status, {"error": message}, {"X-Error-Code": code} if code else None)

        def _injected(self, kind: str) -> bool:
            with hub.lock:
                failure = hub.fail_next.pop(kind, None) or hub.fail_always.get(kind)
            if failure is None:
                return False
            if failure == "drop":
                self._body()
                self.close_connection = True
                self.connection.shutdown(2)  # no answer at all: the client sees the connection die
                return True
            self._error(int(failure), f"injected failure {failure}")
            return True

        def _repo(self, repo_id: str, user: dict | None) -> Repo | None:
            if repo_id not in hub.repos or not hub.may_read(user, repo_id):
                self._error(401 if user is None else 404, "Repository not found", "RepoNotFound")
                return None
            return hub.repos[repo_id]

        def do_HEAD(self) -> None:
            self.do_GET()

        # --- routes -----------------------------------------------------------------------------
        def do_GET(self) -> None:
            url = urlparse(self.path)
            path, query = unquote(url.path), parse_qs(url.query)
            hub.requests.append((self.command, path))
            user = hub.user(self.headers.get("Authorization"))
            if path == "/api/whoami-v2":
                if self._injected("whoami"):
                    return
                if user is None:
                    return self._error(401, "Invalid credentials in Authorization header")
                return self._send(200, {"type": "user", "name": user["name"],
                                        "orgs": [{"name": o} for o in user.get("orgs", [])],
                                        "auth": {"type": "access_token",
                                                 "accessToken": {"role": user.get("role", "write")}}})
            if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
                repo = self._repo(m.group(1), user)
                if repo:
                    self._send(200, {"id": m.group(1), "author": m.group(1).split("/")[0], "sha": repo.sha,
                                     "private": repo.private,
                                     "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
                return None
            if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path):
                repo = self._repo(m.group(1), user)
                if repo:
                    prefix = (m.group(3) or "").strip("/")
                    recursive = query.get("recursive", ["false"])[0].lower() == "true"
                    self._send(200, self._tree(repo, prefix, recursive))
                return None
            if m := re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                repo = self._repo(m.group(1), user)
                if repo is None:
                    return None
                content = repo.files.get(m.group(3))
                if content is None:
                    return self._error(404, "Entry not found", "EntryNotFound")
                etag = hashlib.sha256(content).hexdigest() if m.group(3) in repo.lfs \
                    else hashlib.sha1(content).hexdigest()
                return self._send(200, raw=content, headers={"X-Repo-Commit": repo.sha, "ETag": f'"{etag}"'})
            return self._error(404, f"no route for GET {path}")

        def _tree(self, repo: Repo, prefix: str, recursive: bool) -> list[dict]:
            entries, folders = [], set()
            for p, content in sorted(repo.files.items()):
                if prefix and not p.startswith(prefix + "/"):
                    continue
                rest = p[len(prefix) + 1:] if prefix else p
                if "/" in rest and not recursive:
                    folders.add((prefix + "/" if prefix else "") + rest.split("/")[0])
                    continue
                for i, _ in enumerate(rest.split("/")[:-1]):
                    folders.add((prefix + "/" if prefix else "") + "/".join(rest.split("/")[: i + 1]))
                entry = {"type": "file", "path": p, "size": len(content), "oid": hashlib.sha1(content).hexdigest()}
                if p in repo.lfs:
                    entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content),
                                    "pointerSize": 134}
                entries.append(entry)
            return [{"type": "directory", "path": f, "oid": "0" * 40} for f in sorted(folders)] + entries

        def do_PUT(self) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append(("PUT", path))
            if self._injected("lfs-upload"):
                return None
            if m := re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path):
                data = self._body()
                if hashlib.sha256(data).hexdigest() != m.group(1):
                    return self._error(400, "sha256 mismatch")
                hub.lfs_objects[m.group(1)] = data
                return self._send(200, {})
            return self._error(404, f"no route for PUT {path}")

        def do_POST(self) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append(("POST", path))
            user = hub.user(self.headers.get("Authorization"))
            if path == "/api/validate-yaml":
                payload = json.loads(self._body())
                errors = validate_card_yaml(payload.get("content", ""))
                return self._send(400 if errors else 200, {"errors": [{"message": e} for e in errors],
                                                           "warnings": []})
            if path == "/api/repos/create":
                return self._create(user, json.loads(self._body()))
            if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/preupload/([^/]+)", path):
                if self._injected("preupload"):
                    return None
                return self._preupload(m.group(1), user, json.loads(self._body()))
            if m := re.fullmatch(r"/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path):
                payload = json.loads(self._body())
                if not hub.may_write(user, m.group(1).split("/")[0]):
                    return self._error(403, "You don't have write access to this repo")
                objects = [{"oid": o["oid"], "size": o["size"],
                            **({} if o["oid"] in hub.lfs_objects else
                               {"actions": {"upload": {"href": f"{hub.url}/lfs-upload/{o['oid']}"}}})}
                           for o in payload["objects"]]
                return self._send(200, {"transfer": "basic", "objects": objects})
            if m := re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/([^/]+)", path):
                if self._injected("commit"):
                    return None
                return self._commit(m.group(1), user, self._body())
            return self._error(404, f"no route for POST {path}")

        def _create(self, user: dict | None, payload: dict) -> None:
            if self._injected("create"):
                return None
            if user is None:
                return self._error(401, "Invalid credentials in Authorization header")
            namespace = payload.get("organization") or user["name"]
            repo_id = f"{namespace}/{payload['name']}"
            if not hub.may_write(user, namespace):
                return self._error(403, f"You don't have the rights to create a dataset under the namespace "
                                        f"\"{namespace}\"")
            if repo_id in hub.repos:
                # The Hub answers 409 with the repo url; create_repo(exist_ok=True) reads it.
                return self._send(409, {"error": "You already created this dataset repo",
                                        "url": f"{hub.url}/datasets/{repo_id}"})
            hub.add_repo(repo_id, user["name"], private=payload.get("visibility") == "private"
                         or bool(payload.get("private")))
            return self._send(200, {"url": f"{hub.url}/datasets/{repo_id}", "name": repo_id})

        def _preupload(self, repo_id: str, user: dict | None, payload: dict) -> None:
            repo = self._repo(repo_id, user)
            if repo is None:
                return None
            files = []
            for f in payload["files"]:
                sample = base64.b64decode(f["sample"])
                binary = b"\x00" in sample or f["path"].endswith(".parquet")
                files.append({"path": f["path"], "uploadMode": "lfs" if binary else "regular",
                              "shouldIgnore": False})
            return self._send(200, {"files": files, "commitOid": repo.sha})

        def _commit(self, repo_id: str, user: dict | None, body: bytes) -> None:
            repo = self._repo(repo_id, user)
            if repo is None:
                return None
            if not hub.may_write(user, repo_id.split("/")[0]):
                return self._error(403, "You don't have write access to this repo")
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header = next(x["value"] for x in lines if x["key"] == "header")
            if header.get("parentCommit") and header["parentCommit"] != repo.sha:
                return self._error(409, "A commit has happened since. Please refresh and try again.")
            added: dict[str, bytes] = {}
            lfs_paths = set()
            for item in lines:
                value = item["value"]
                if item["key"] == "file":
                    added[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "lfsFile":
                    if value["oid"] not in hub.lfs_objects:
                        return self._error(422, f"LFS object {value['oid']} was never uploaded")
                    added[value["path"]] = hub.lfs_objects[value["oid"]]
                    lfs_paths.add(value["path"])
            deleted = [x["value"]["path"] for x in lines if x["key"] == "deletedFile"]
            missing = [p for p in deleted if p not in repo.files]
            if missing:
                return self._error(404, f"A file with this name doesn't exist: {missing[0]}", "EntryNotFound")
            if "README.md" in added:
                errors = validate_card_yaml(added["README.md"].decode())
                if errors:
                    return self._error(400, "; ".join(errors))
            oid = hub.commit(repo, header["summary"], added, deleted)
            repo.lfs |= lfs_paths
            repo.lfs -= {p for p in added if p not in lfs_paths}
            return self._send(200, {"commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{oid}", "commitOid": oid,
                                    "success": True})

    return Handler
