"""A git server on 127.0.0.1 speaking git's smart HTTP protocol, through git's own `git http-backend`
CGI program (git-http-backend(1)): what a GitLab instance serves at `<server>/<group>/<project>.git`.

gitlab-ci-local clones a component's project from the consumer project's remote host, and the
component's job fetches ci-gate's source from `$CI_SERVER_URL/<project>.git`: both reach this server.
Fetching a commit by its id is allowed (`uploadpack.allowReachableSHA1InWant`), as on GitLab.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from pathlib import Path
from types import TracebackType

GIT_IDENTITY = ["-c", "user.email=ci@example.invalid", "-c", "user.name=ci", "-c", "commit.gpgsign=false",
                "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main"]


def git(folder: Path, *arguments: str) -> str:
    return subprocess.run(["git", *GIT_IDENTITY, "-C", str(folder), *arguments], check=True, capture_output=True,
                          text=True, timeout=120).stdout.strip()


def commit_tree(folder: Path, message: str, tag: str | None = None) -> str:
    """`git init` + commit everything in `folder` (+ a tag); returns the commit id."""
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", message)
    if tag:
        git(folder, "tag", tag)
    return git(folder, "rev-parse", "HEAD")


class GitHttpServer:
    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _backend(self, method: str) -> None:
                server.requests.append(f"{method} {self.path}")
                path, _, query = self.path.partition("?")
                body = self._body() if method == "POST" else b""
                environment = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_ADDR": "127.0.0.1", "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                completed = subprocess.run(["git", "http-backend"], input=body, capture_output=True,
                                           env=environment, timeout=120)
                head, _, payload = completed.stdout.partition(b"\r\n\r\n")
                if not _:
                    head, _, payload = completed.stdout.partition(b"\n\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._backend("GET")

            def do_POST(self) -> None:
                self._backend("POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def publish(self, worktree: Path, project_path: str) -> Path:
        """Serve the repository in `worktree` as `<url>/<project_path>.git` (a bare clone)."""
        bare = self.root / f"{project_path}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(worktree), str(bare)], check=True, capture_output=True)
        git(bare, "config", "uploadpack.allowReachableSHA1InWant", "true")
        git(bare, "config", "http.receivepack", "false")
        return bare

    def __enter__(self) -> GitHttpServer:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
