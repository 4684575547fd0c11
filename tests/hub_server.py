"""A small local stand-in for the Hugging Face Hub's HTTP API, for tests (no network).

It serves what the real ``huggingface_hub`` and ``datasets`` clients call for a dataset push
and a load (with ``HF_ENDPOINT`` pointed at it and ``HF_HUB_DISABLE_XET=1``): repo info and
create, branches, preupload (LFS for binary data files, inline for small text files), the
plain LFS batch API and its uploads, NDJSON commits (with ``parentCommit`` checks), tree
listings, paths-info and file resolution (``ETag``, ``X-Repo-Commit``, ranges). Absent repos,
revisions and files answer 404 with the Hub's ``X-Error-Code`` header. Tokens: ``WRITE_TOKEN``
may write, ``READ_TOKEN`` only read (403 on writes), anything else is refused (401).

Every request is logged in ``server.requests`` (method, path, status) so a test can check
what the client did; ``server.repo_files(repo_id)`` gives the committed files of a repo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

WRITE_TOKEN = "hf_standin_write_0123456789abcdef"
READ_TOKEN = "hf_standin_read_0123456789abcdef"
LFS_SUFFIXES = (".parquet", ".arrow", ".png", ".jpg", ".bin", ".safetensors")


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, repo_type: str, repo_id: str, private: bool) -> None:
        self.type, self.id, self.private = repo_type, repo_id, private
        self.commits: dict[str, dict[str, dict]] = {}
        self.branches: dict[str, str] = {}
        self.messages: list[str] = []
        self._commit({}, "initial commit", "main")

    def _commit(self, files: dict[str, dict], message: str, branch: str) -> str:
        sha = hashlib.sha1(f"{self.id}:{len(self.commits)}:{message}".encode()).hexdigest()
        self.commits[sha] = files
        self.branches[branch] = sha
        self.messages.append(message)
        return sha

    def resolve(self, revision: str) -> str | None:
        revision = unquote(revision)
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


class HubStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> HubStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def add_repo(self, repo_type: str, repo_id: str, files: dict[str, bytes] | None = None) -> Repo:
        repo = self.repos.setdefault((repo_type, repo_id), Repo(repo_type, repo_id, private=False))
        if files:
            repo._commit(
                {p: {"data": d, "lfs": p.endswith(LFS_SUFFIXES)} for p, d in files.items()}, "seed", "main"
            )
        return repo

    def repo_files(self, repo_id: str, repo_type: str = "dataset") -> dict[str, bytes]:
        repo = self.repos[(repo_type, repo_id)]
        return {p: e["data"] for p, e in repo.commits[repo.branches["main"]].items()}


TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}


class _Handler(BaseHTTPRequestHandler):
    server: HubStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, ctype="application/json"):
        self.server.requests.append((self.command, self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str):
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None

    def _may_write(self) -> bool:
        token = self._token()
        if token == WRITE_TOKEN:
            return True
        if token == READ_TOKEN:
            self._error(403, "Forbidden", "You don't have the rights to write to this repository")
        else:
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        return False

    def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.server.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and self._token() not in (WRITE_TOKEN, READ_TOKEN)):
            self._error(404, "RepoNotFound", f"Repository not found: {repo_id}")
            return None
        return repo

    def _revision(self, repo: Repo, revision: str) -> tuple[str, dict] | None:
        sha = repo.resolve(revision)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return sha, repo.commits[sha]

    # ------------------------------------------------------------------ routes
    def do_HEAD(self):
        self._route("HEAD")

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def _route(self, method: str) -> None:
        with self.server.lock:
            try:
                self._dispatch(method)
            except Exception as exc:  # a bug in the stand-in: show it to the client and the test
                self._json(500, {"error": f"stand-in failure: {exc!r}"})

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        if parts[:2] == ["api", "whoami-v2"]:
            return self._whoami()
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo()
        if parts[0] == "api" and len(parts) >= 4 and parts[1] in TYPES:
            repo_type, repo_id, rest = TYPES[parts[1]], "/".join(parts[2:4]), parts[4:]
            return self._api(method, repo_type, repo_id, rest, query)
        if parts[0] == "lfs-upload" and method == "PUT":
            return self._lfs_put(parts[1])
        if len(parts) >= 3 and parts[0] in TYPES and parts[2].endswith(".git"):
            return self._lfs_batch(TYPES[parts[0]], f"{parts[1]}/{parts[2][:-4]}")
        if len(parts) >= 5 and parts[0] in TYPES and parts[3] == "resolve":
            return self._resolve(TYPES[parts[0]], "/".join(parts[1:3]), parts[4], "/".join(parts[5:]))
        if len(parts) >= 4 and parts[2] == "resolve":  # models have no prefix
            return self._resolve("model", "/".join(parts[0:2]), parts[3], "/".join(parts[4:]))
        self._error(404, "NotFound", f"stand-in has no route for {method} {url.path}")

    def _whoami(self):
        if self._token() not in (WRITE_TOKEN, READ_TOKEN):
            return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        role = "write" if self._token() == WRITE_TOKEN else "read"
        self._json(
            200, {"type": "user", "name": "tester", "orgs": [], "auth": {"accessToken": {"role": role}}}
        )

    def _validate_yaml(self):
        import yaml

        content = json.loads(self._body()).get("content", "")
        try:
            yaml.safe_load(content.split("---")[1] if content.startswith("---") else content)
        except yaml.YAMLError as exc:
            return self._json(400, {"error": f"invalid YAML: {exc}"})
        self._json(200, {"errors": [], "warnings": []})

    def _create_repo(self):
        body = json.loads(self._body() or b"{}")
        if not self._may_write():
            return
        repo_type = body.get("type") or "model"
        name = (
            body["name"] if "/" in body["name"] else f"{body.get('organization') or 'tester'}/{body['name']}"
        )
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        if (repo_type, name) in self.server.repos:
            return self._json(
                409, {"error": "You already created this repo", "url": f"{self.server.url}/{prefix}{name}"}
            )
        self.server.repos[(repo_type, name)] = Repo(repo_type, name, bool(body.get("private")))
        self._json(200, {"url": f"{self.server.url}/{prefix}{name}", "name": name, "id": name})

    def _api(self, method: str, repo_type: str, repo_id: str, rest: list[str], query: dict):
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return None
        if not rest or rest[0] == "revision":
            found = self._revision(repo, rest[1] if len(rest) > 1 else "main")
            return found and self._json(200, self._info(repo, *found))
        kind, revision, path = rest[0], rest[1] if len(rest) > 1 else "main", "/".join(rest[2:])
        if kind == "branch" and method == "POST":
            if not self._may_write():
                return None
            if revision in repo.branches:
                return self._error(409, "Conflict", "Reference already exists")
            repo.branches[revision] = repo.branches["main"]
            return self._json(200, {})
        found = self._revision(repo, revision)
        if found is None:
            return None
        sha, files = found
        if kind == "preupload" and method == "POST":
            if not self._may_write():
                return None
            req = json.loads(self._body())["files"]
            modes = [
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                    "shouldIgnore": False,
                    "oid": None,
                }
                for f in req
            ]
            return self._json(200, {"files": modes, "commitOid": sha})
        if kind == "commit" and method == "POST":
            return self._commit(repo, revision, sha, files)
        if kind == "tree" and method == "GET":
            return self._tree(files, path, query.get("recursive", ["false"])[0].lower() == "true")
        if kind == "paths-info" and method == "POST":
            form = parse_qs(self._body().decode())
            entries = [self._entry(files, p) for p in form.get("paths", [])]
            return self._json(200, [e for e in entries if e])
        self._error(404, "NotFound", f"stand-in has no route for {method} {self.path}")

    def _info(self, repo: Repo, sha: str, files: dict) -> dict:
        return {
            "_id": repo.id,
            "id": repo.id,
            "author": repo.id.split("/")[0],
            "sha": sha,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p} for p in sorted(files)],
        }

    def _entry(self, files: dict, path: str) -> dict | None:
        path = path.strip("/")
        if path in files:
            e = files[path]
            out = {"type": "file", "path": path, "size": len(e["data"]), "oid": git_oid(e["data"])}
            if e["lfs"]:
                out["lfs"] = {
                    "oid": hashlib.sha256(e["data"]).hexdigest(),
                    "size": len(e["data"]),
                    "pointerSize": 130,
                }
            return out
        if path == "" or any(p.startswith(path + "/") for p in files):
            return {"type": "directory", "path": path, "size": 0, "oid": git_oid(path.encode())}
        return None

    def _tree(self, files: dict, path: str, recursive: bool):
        path = path.strip("/")
        if path and not any(p.startswith(path + "/") for p in files):
            return self._error(404, "EntryNotFound", f"{path} does not exist on this revision")
        prefix = path + "/" if path else ""
        found: dict[str, dict] = {}
        for p in sorted(files):
            if not p.startswith(prefix):
                continue
            rel = p[len(prefix) :].split("/")
            for depth in range(1, len(rel) + 1 if recursive else 2):
                sub = prefix + "/".join(rel[:depth])
                found.setdefault(sub, self._entry(files, sub))
        self._json(200, [found[k] for k in sorted(found)])

    def _commit(self, repo: Repo, revision: str, sha: str, files: dict):
        if not self._may_write():
            return None
        lines = [json.loads(line) for line in self._body().decode().splitlines() if line.strip()]
        header = next(x["value"] for x in lines if x["key"] == "header")
        if header.get("parentCommit") and header["parentCommit"] != sha:
            return self._error(
                412, "PreconditionFailed", "A commit has happened since. Please refresh and try again."
            )
        new = dict(files)
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "file":
                new[value["path"]] = {"data": base64.b64decode(value["content"]), "lfs": False}
            elif key == "lfsFile":
                if value["oid"] not in self.server.lfs:
                    return self._error(
                        422, "LfsObjectMissing", f"LFS object {value['oid']} was never uploaded"
                    )
                new[value["path"]] = {"data": self.server.lfs[value["oid"]], "lfs": True}
            elif key == "deletedFile":
                new.pop(value["path"], None)
            elif key == "deletedFolder":
                for p in [p for p in new if p.startswith(value["path"].rstrip("/") + "/")]:
                    new.pop(p)
        oid = repo._commit(new, header.get("summary", ""), unquote(revision))
        prefix = "" if repo.type == "model" else f"{repo.type}s/"
        self._json(
            200,
            {
                "commitUrl": f"{self.server.url}/{prefix}{repo.id}/commit/{oid}",
                "commitOid": oid,
                "pullRequestUrl": None,
            },
        )

    def _lfs_batch(self, repo_type: str, repo_id: str):
        body = json.loads(self._body())
        if self._repo(repo_type, repo_id) is None or not self._may_write():
            return
        objects = []
        for obj in body["objects"]:
            out = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.server.lfs:
                out["actions"] = {
                    "upload": {"href": f"{self.server.url}/lfs-upload/{obj['oid']}", "header": {}}
                }
            objects.append(out)
        self._json(200, {"transfer": "basic", "objects": objects})

    def _lfs_put(self, oid: str):
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "BadRequest", "sha256 of the upload does not match its oid")
        self.server.lfs[oid] = data
        self._send(200)

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str):
        repo = self._repo(repo_type, repo_id)
        found = repo and self._revision(repo, revision)
        if not found:
            return
        sha, files = found
        if path not in files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on this revision")
        data, lfs = files[path]["data"], files[path]["lfs"]
        etag = hashlib.sha256(data).hexdigest() if lfs else git_oid(data)
        headers = {"ETag": f'"{etag}"', "X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if lfs:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = min(int(end_s) if end_s else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start : end + 1], headers, "application/octet-stream")
        self._send(200, data, headers, "application/octet-stream")
