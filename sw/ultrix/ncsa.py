"""An NCSA httpd 1.4.2-like web server on the Ultrix model.

Process structure (NCSA httpd 1.4; CALIBRATION.md, "The baseline servers"): the parent
process pre-forks ``StartServers`` children (default 5), each connected to it by a UNIX-domain
socket pair. The parent ``select()``s on the listening socket and on the children's sockets,
``accept()``s each connection and passes the descriptor to an idle child (``sendmsg`` with
access rights, the 1.4 "FilePass" mechanism), then closes its own copy. A child that finishes
a request writes a byte to the parent to say it is idle again. When every child is busy the
parent forks another, up to the compiled-in maximum (10); at the maximum it waits for a child.
(NCSA 1.3 forked a child per request; 1.4 introduced the pool.)

Per request the child makes the system calls NCSA httpd 1.4's source makes (read in the
1.4 tree at github.com/fathonix/ncsa-httpd, ``SERVER_VERSION "NCSA/1.4"``; file/function
named at each step in the code):

1. ``httpd.c`` child_main: ``alarm(0)``, ``dup2`` x2, ``recvmsg`` (recv_fd), ``close`` x2,
   ``dup2`` x2: the connection becomes stdin and stdout;
2. ``http_request.c`` process_request: ``getpeername`` (get_remote_host; the build is taken
   as ``-DMINIMAL_DNS``, no ``gethostbyaddr``: the simulation has no name server, a
   documented departure from the Makefile's default), ``sigvec`` (``signal(SIGPIPE)``);
3. ``util.c`` getline: ``sigvec`` + ``alarm``, four one-byte ``read``s until ``"GET "``,
   ``sigvec`` + ``alarm`` and 8 KB ``read``s of the rest (rst's buffered getline),
   ``alarm(0)`` + ``sigvec``; other methods read every line a byte at a time;
   ``get_mime_headers`` writes a ``User-agent`` (and ``Referer``) line to its log with
   ``fprintf`` + ``fflush``: a ``write`` each; request parsing is user-level work
   (:attr:`NcsaOptions.request_cycles`);
4. ``http_get.c`` send_node: ``stat``; ``http_access.c`` evaluate_access: an ``open`` of
   ``.htaccess`` that fails in every directory of the path; send_file: ``open`` (fopen);
5. ``http_mime.c`` send_http_header: ``gettimeofday`` (``time()`` for the Date header) and
   ``fflush(stdout)``: the header is a ``write`` of its own;
6. ``http_request.c`` send_fd: ``sigvec`` x2, ``fstat`` (stdio's _findbuf), then per
   ``IOBUFSIZE`` (8 KB) piece ``alarm`` + ``read``, and one more pair at end of file;
   ``fwrite`` into stdout's buffer, which holds ``st_blksize`` = the socket's
   ``so_snd.sb_hiwat`` (ULTRIX 4.2 ``tcp_usrreq.c`` PRU_SENSE; 4.3BSD stdio's _findbuf),
   so the body is one ``write`` per buffer-full plus the final ``fflush``;
   ``alarm(0)``, ``sigvec`` x2;
7. ``http_log.c`` log_transaction: ``gettimeofday`` (get_gmtoff's ``time()``) and a
   ``write`` to the transfer log; ``close`` (fclose of the file);
8. child_main: ``shutdown``, ``close`` of the connection (the kernel sends the FIN with
   whatever Nagle's rule held: see :mod:`sw.libos.net.tcp`), ``write(parent_pipe, "DONE")``.

Errors (``die``) put the header and the page into stdout and write them with one ``fflush``.

GET and HEAD are served; HTTP/0.9 simple requests get the body without a header; errors get
NCSA's small HTML error page: 400 (malformed request), 403 (``..`` in the path), 404 (no such
file, or a path the file system cannot name, such as one holding a NUL), 501 (other methods).
Directories are served through their ``index.html`` or are 404 (no directory listings: a
simplification).

Robustness, as the real server had it:

* **Timeout** (:attr:`NcsaOptions.timeout`): ``getline`` arms ``alarm(Timeout)`` while it
  reads the request and ``send_fd`` re-arms it before every piece of the reply; a client that
  sends nothing (or stops reading) for that long gets its connection closed by the SIGALRM
  handler and the child is free again. The default is 1.4's ``DEFAULT_TIMEOUT`` 1200 s
  (``httpd.h``), as its ``TimeOut`` documentation says.
* **A failing request stays one request's failure**: an unexpected exception while serving
  is logged with its traceback, counted (``internal_errors``), answered 500 if nothing of the
  reply was written yet, and the connection closed; the child goes back to the pool.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sim.kernel import Event
from sim.time import S
from sw.libos.fs.errors import FsError

from .kernel import Alarm, Process, cpi_scale
from .sockets import SocketError, SocketLayer, UltrixMachine, doc_passes

log = logging.getLogger(__name__)

__all__ = ["NcsaOptions", "NcsaServer", "parse_request", "http_date", "Request",
           "request_complete", "answer_internal_error"]

#: Simulated time 0 is this calendar time (1 June 1995, 00:00 GMT) in Date headers.
EPOCH = 801_964_800
SERVER = "NCSA/1.4.2"
CRLF = b"\r\n"
#: What a child writes to the parent when it is idle again (httpd.c ``donemsg``, with its NUL).
DONEMSG = b"DONE\x00"
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            500: "Server Error", 501: "Not Implemented"}


def http_date(t_ps: int) -> str:
    """The RFC 850 date NCSA 1.4 wrote, for simulated time ``t_ps``."""
    return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(EPOCH + t_ps // S))


@dataclass(frozen=True)
class Request:
    """A parsed request: ``status`` is 0 when well formed, else the error to answer."""

    method: str
    url: str
    version: str | None
    status: int = 0


def request_complete(buf: bytes) -> bool:
    """Whether ``buf`` holds a whole request: a blank line after the headers, or a single
    HTTP/0.9 line (no version)."""
    if b"\r\n\r\n" in buf or b"\n\n" in buf:
        return True
    line, sep, _ = buf.partition(b"\n")
    return bool(sep) and len(line.split()) == 2


def parse_request(buf: bytes) -> Request:
    """Parse a request line (the headers are read and ignored, as NCSA did for GET/HEAD)."""
    line = buf.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        parts = line.decode("ascii").split()
    except UnicodeDecodeError:
        return Request("", "", None, 400)
    if len(parts) not in (2, 3) or not parts[1].startswith("/"):
        return Request(parts[0] if parts else "", "", None, 400)
    method, url = parts[0], parts[1]
    version = parts[2] if len(parts) == 3 else None
    if version is not None and not version.startswith("HTTP/"):
        return Request(method, url, None, 400)
    if method not in ("GET", "HEAD"):
        return Request(method, url, version, 501)
    path = url.split("?", 1)[0]
    if ".." in path.split("/"):
        return Request(method, url, version, 403)
    return Request(method, url, version)


def error_body(status: int, url: str) -> bytes:
    """NCSA's small HTML error page."""
    reason = _REASONS[status]
    text = {400: "Your client sent a query that this server could not understand.",
            403: f"You do not have permission to access {url} on this server.",
            404: f"The requested URL {url} was not found on this server.",
            500: "The server encountered an internal error or misconfiguration and was unable "
                 "to complete your request.",
            501: "The method is not implemented by this server."}[status]
    return (f"<HEAD><TITLE>{status} {reason}</TITLE></HEAD>\n<BODY><H1>{status} {reason}"
            f"</H1>\n{text}<P>\n</BODY>\n").encode()


async def answer_internal_error(sockets: SocketLayer, proc: Process, conn, url: str,
                                now_ps: int, *, nonblock: bool = False) -> None:
    """Answer 500 on ``conn`` after an unexpected exception, if nothing of the reply was
    written yet and the connection still works; a write that fails is ignored (the caller
    closes the connection next)."""
    if conn.closed or conn.bytes_written or conn.error is not None:
        return
    body = error_body(500, url)
    try:
        await sockets.write(proc, conn, header(500, now_ps, len(body)) + body, nonblock=nonblock)
    except SocketError:
        pass


def header(status: int, now_ps: int, length: int, mtime_ps: int | None = None,
           ctype: str = "text/html") -> bytes:
    """NCSA 1.4's MIME header for a reply."""
    lines = [f"HTTP/1.0 {status} {_REASONS[status]}", f"Date: {http_date(now_ps)}",
             f"Server: {SERVER}", "MIME-version: 1.0", f"Content-type: {ctype}"]
    if mtime_ps is not None:
        lines.append(f"Last-modified: {http_date(mtime_ps)}")
    lines.append(f"Content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(frozen=True)
class NcsaOptions:
    """NCSA httpd's configuration and the estimates of its user-level work.

    Attributes
    ----------
    port : int
        The ``Port`` it listens on (80).
    start_servers, max_servers : int
        ``StartServers`` (default 5) and the compiled-in maximum of children (10).
    document_root : str
        ``DocumentRoot`` inside the file system.
    access_file : bool
        Look for ``.htaccess`` in every directory of the document's path per request
        (``evaluate_access`` with AllowOverride on, NCSA's default ``AccessFileName``).
    iobufsize : int
        The body is read and written in pieces of this size (NCSA's 8 KB ``IOBUFSIZE``).
    log : bool
        Write the access-log line per request.
    request_cycles : float
        User-level work per request, estimate: reading and scanning about 100 bytes of
        request (10 instructions a byte), ``translate_name`` through the alias tables,
        ``evaluate_access``, the MIME-type lookup, formatting the header and the log line
        with ``sprintf``/``strftime`` (the two dates alone are some 2000 instructions):
        about 6000 instructions at the kernel CPI of 2.08 = 12 500 cycles (0.5 ms).
    timeout : int
        ``TimeOut`` in seconds: how long a child waits for the request, or for the client to
        take the reply, before dropping the connection (1200, NCSA's documented default).
    """

    port: int = 80
    start_servers: int = 5
    max_servers: int = 10
    document_root: str = "/"
    access_file: bool = True
    iobufsize: int = 8192
    log: bool = True
    request_cycles: float = 12_500
    timeout: int = 1200

    def __post_init__(self) -> None:
        for name, lo in (("port", 1), ("start_servers", 1), ("max_servers", 1), ("iobufsize", 1),
                         ("timeout", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"NcsaOptions.{name} must be an int >= {lo}, not {v!r}")
        if self.port > 0xFFFF:
            raise ValueError(f"NcsaOptions.port must be at most 65535, not {self.port!r}")
        if self.max_servers < self.start_servers:
            raise ValueError(f"max_servers ({self.max_servers}) < start_servers "
                             f"({self.start_servers})")
        if not isinstance(self.document_root, str) or not self.document_root.startswith("/"):
            raise ValueError(f"document_root must be an absolute path, not {self.document_root!r}")
        if isinstance(self.request_cycles, bool) or not isinstance(self.request_cycles, (int, float)) \
                or self.request_cycles < 0:
            raise ValueError(f"request_cycles must be >= 0, not {self.request_cycles!r}")


@dataclass
class _Child:
    proc: Process | None
    parent_end: object
    child_end: object
    busy: bool = False
    served: int = 0


@dataclass
class NcsaStats:
    requests: int = 0
    by_status: dict = field(default_factory=dict)
    body_bytes: int = 0
    errors: int = 0
    log_lines: int = 0
    timeouts: int = 0
    internal_errors: int = 0


class NcsaServer:
    """NCSA httpd 1.4.2 on an :class:`~sw.ultrix.sockets.UltrixMachine` (see the module
    docstring). Built by :func:`sw.ultrix.make_ncsa`.

    Parameters
    ----------
    machine : UltrixMachine
    options : NcsaOptions, optional
    name : str
    """

    def __init__(self, machine: UltrixMachine, options: NcsaOptions | None = None, *,
                 name: str = "ncsa"):
        if not isinstance(machine, UltrixMachine):
            raise TypeError(f"NcsaServer needs an UltrixMachine, not {machine!r}")
        if options is not None and not isinstance(options, NcsaOptions):
            raise TypeError(f"options must be NcsaOptions, not {options!r}")
        self.machine = machine
        self.options = options or NcsaOptions()
        self.name = name
        self.uk = machine.uk
        # The estimate counts instructions at the 3MIN's CPI: re-priced on a derived profile
        # (another clock or memory, issue 18), unchanged (x 1.0) on the paper's.
        self._request_cycles = self.options.request_cycles * cpi_scale(self.uk.profile)
        self.sockets: SocketLayer = machine.sockets
        self.children: list[_Child] = []
        self.parent: Process | None = None
        self.counters = NcsaStats()
        self._ready = None
        self._started = False

    # -- HttpServer --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Mount the documents, start the parent and its children; return when listening."""
        if self._started:
            raise RuntimeError(f"{self.name} already started")
        self._started = True
        await self.machine.mount()
        self._ready = Event(self.uk.kernel, f"{self.name}.ready")
        self.parent = self.uk.spawn(self._parent, f"{self.name}.httpd")
        await self._ready

    def stats(self) -> dict:
        c = self.counters
        out = {"server": self.name, "requests": c.requests, "by_status": dict(sorted(c.by_status.items())),
               "body_bytes": c.body_bytes, "errors": c.errors, "log_lines": c.log_lines,
               "timeouts": c.timeouts, "internal_errors": c.internal_errors,
               "children": len(self.children)}
        out.update(self.machine.stats())
        return out

    # -- the parent ----------------------------------------------------------------------------
    async def _fork_child(self, proc: Process) -> _Child:
        pe, ce = await self.sockets.socketpair(proc)
        ch = _Child(None, pe, ce)
        self.children.append(ch)
        ch.proc = await proc.fork(lambda p, ch=ch: self._child(p, ch),
                                  f"{self.name}.child{len(self.children)}")
        return ch

    async def _parent(self, proc: Process) -> None:
        so = self.sockets
        lst = await so.listen(proc, self.options.port, backlog=5)
        for _ in range(self.options.start_servers):
            await self._fork_child(proc)
        self._ready.set()
        while True:
            free = [c for c in self.children if not c.busy]
            can_take = bool(free) or len(self.children) < self.options.max_servers
            rd = ([lst] if can_take else []) + [c.parent_end for c in self.children]
            ready, _ = await so.select(proc, rd)
            for c in self.children:
                if c.parent_end in ready:
                    note = await so.read(proc, c.parent_end, 64)
                    if note:
                        c.busy = False
            if lst in ready:
                free = [c for c in self.children if not c.busy]
                if not free:
                    if len(self.children) >= self.options.max_servers:
                        continue
                    free = [await self._fork_child(proc)]
                conn = await so.accept(proc, lst, nonblock=True)
                if conn is None:
                    continue
                child = free[0]
                child.busy = True
                try:
                    await so.send_fd(proc, child.parent_end, conn)
                except Exception:                   # noqa: BLE001 - one connection's failure
                    self._internal_error("handing a connection to a child")
                    child.busy = False
                await so.close(proc, conn)          # the parent's copy; the child's stays open

    def _internal_error(self, what: str) -> None:
        """Log an unexpected exception (with its traceback) and count it."""
        self.counters.internal_errors += 1
        log.error("%s: internal error %s", self.name, what, exc_info=True)

    # -- a child ---------------------------------------------------------------------------------
    async def _child(self, proc: Process, ch: _Child) -> None:
        so = self.sockets
        while True:
            # httpd.c child_main(): alarm(0); dup2(parent_pipe, 0); dup2(parent_pipe, 1);
            # recv_fd(); close(0); close(1); dup2(csd, 0); dup2(csd, 1) (stdin and stdout
            # are the connection), then process_request(0, stdout).
            await proc.alarm(0)
            for call in ("dup2", "dup2"):
                await proc.syscall(call)
            conn = await so.recv_fd(proc, ch.child_end)
            for call in ("close", "close", "dup2", "dup2"):
                await proc.syscall(call)
            await self.serve_guarded(proc, conn)
            ch.served += 1
            await so.write(proc, ch.child_end, DONEMSG)   # write(parent_pipe, donemsg, 5)

    async def serve_guarded(self, proc: Process, conn) -> None:
        """:meth:`serve` one connection under ``alarm(Timeout)``; whatever goes wrong ends
        only this connection (a timeout or a failed socket is counted, anything else is an
        internal error: logged with its traceback, answered 500 if nothing was sent yet)."""
        so = self.sockets
        try:
            try:
                await self.serve(proc, conn)
            finally:
                proc.alarm_at = None                # child_main's alarm(0), even on the way out
        except Alarm:
            self.counters.timeouts += 1             # NCSA's timed_out(): log and drop
            log.info("%s: connection timed out after %d s", self.name, self.options.timeout)
        except SocketError as e:
            self.counters.errors += 1
            log.debug("%s: connection failed: %s", self.name, e)
        except Exception:                           # noqa: BLE001 - keep the server serving
            self._internal_error("serving a request")
            await answer_internal_error(so, proc, conn, "", self.uk.kernel.now)
        if not conn.closed:
            try:
                await so.close(proc, conn)
            except SocketError:
                pass

    async def _getline_arm(self, proc: Process) -> None:
        """util.c getline(): ``signal(SIGALRM, getline_timed_out); alarm(timeout)``."""
        await proc.syscall("sigvec")
        await proc.alarm(self.options.timeout)

    async def _getline_disarm(self, proc: Process) -> None:
        """util.c getline(): ``alarm(0); signal(SIGALRM, SIG_IGN)`` once a line is read."""
        await proc.alarm(0)
        await proc.syscall("sigvec")

    async def _read_request(self, proc: Process, conn) -> bytes:
        """The request as NCSA 1.4's util.c ``getline`` read it (rst's buffered getline):
        the first line one byte per ``read()`` until its first four bytes are ``"GET "``,
        then the socket is read in ``HUGE_STRING_LEN`` (8 KB) pieces
        (``getline_read_buf``, which arms the alarm again before it reads) and the headers
        come from that buffer (``get_mime_headers``). Any other method keeps the original
        one-byte reads for every line, each line under its own alarm."""
        so = self.sockets
        buf = b""
        await self._getline_arm(proc)
        while len(buf) < 4 and not buf.endswith(b"\n"):
            got = await so.read(proc, conn, 1)
            if not got:
                return buf
            buf += got
        if buf == b"GET ":
            await self._getline_arm(proc)           # getline_read_buf's refill
            while not request_complete(buf) and len(buf) < 8192:
                got = await so.read(proc, conn, 8192)
                if not got:
                    break
                buf += got
            await self._getline_disarm(proc)
            return buf
        while not request_complete(buf) and len(buf) < 8192:
            if buf.endswith(b"\n"):                 # a line ends: the next getline()
                await self._getline_disarm(proc)
                await self._getline_arm(proc)
            got = await so.read(proc, conn, 1)
            if not got:
                break
            buf += got
        await self._getline_disarm(proc)
        return buf

    async def serve(self, proc: Process, conn) -> None:
        """Serve one connection in process ``proc`` (a child, or another server's process):
        http_request.c ``process_request`` and, after it, child_main's ``shutdown`` and
        ``close`` of the connection."""
        so, uk, opt = self.sockets, self.uk, self.options
        # get_remote_host(): getpeername (MINIMAL_DNS: no gethostbyaddr, see the module
        # docstring); signal(SIGPIPE, send_fd_timed_out).
        await proc.syscall("getpeername")
        await proc.syscall("sigvec")
        raw = await self._read_request(proc, conn)
        await proc.compute(self._request_cycles)
        req = parse_request(raw)
        if req.version is not None:
            await self._log_request_headers(proc, raw)
        status, length = req.status, 0
        now = uk.kernel.now
        simple = req.version is None and req.status == 0
        if status == 0:
            status, length = await self._send_file(proc, conn, req, simple)
        if status != 200:
            # http_log.c die(): error_head and the page into stdout, one fflush (one
            # write), then log_transaction.
            body = error_body(status, req.url)
            await proc.syscall("gettimeofday")      # dump_default_header's time(NULL)
            now = uk.kernel.now
            out = (b"" if simple else header(status, now, len(body))) + \
                (body if req.method != "HEAD" else b"")
            await so.write(proc, conn, out)
            length = len(body)
            await self._log_transaction(proc, conn, raw, status, length, now)
        await proc.syscall("shutdown")              # child_main: shutdown(csd, 2)
        await so.close(proc, conn)
        c = self.counters
        c.requests += 1
        c.by_status[status] = c.by_status.get(status, 0) + 1
        if status == 200 and req.method == "GET":
            c.body_bytes += length

    async def _log_request_headers(self, proc: Process, raw: bytes) -> None:
        """http_mime.c get_mime_headers(): each ``User-agent`` header is written to the agent
        log and each ``Referer`` to the referer log, ``fprintf`` + ``fflush``: a write() each."""
        for line in raw.split(b"\n")[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name in (b"user-agent", b"referer") and self.options.log:
                await self.uk.write_log(proc, line.strip() + b"\n")

    async def _log_transaction(self, proc: Process, conn, raw: bytes, status: int,
                               length: int, now: int) -> None:
        """http_log.c log_transaction(): get_gmtoff's time() and one write() to the
        transfer log (an ``open``ed descriptor, not stdio)."""
        if not self.options.log:
            return
        await proc.syscall("gettimeofday")
        peer = conn.peer_name or (b"\x7f\x00\x00\x01", 0)
        first = raw.split(b"\n", 1)[0].decode("latin-1").strip()
        line = f"{'.'.join(map(str, peer[0]))} - - [{http_date(now)}] \"{first}\" {status} {length}\n"
        await self.uk.write_log(proc, line.encode("latin-1"))
        self.counters.log_lines += 1

    async def _send_file(self, proc: Process, conn, req: Request, simple: bool) -> tuple[int, int]:
        """http_get.c send_node() and send_file(), http_request.c send_fd()."""
        so, uk, opt = self.sockets, self.uk, self.options
        root = opt.document_root.rstrip("/")
        path = root + req.url.split("?", 1)[0]
        try:
            st = await uk.stat(proc, path)          # send_node: stat(file)
            if st.is_dir:
                path = path.rstrip("/") + "/index.html"
                st = await uk.stat(proc, path)
        except FsError:
            return 404, 0
        if opt.access_file:
            # http_access.c evaluate_access(): parse_htaccess() of every directory of the
            # path (AllowOverride is on by default): an fopen that fails for each.
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i]) or ""
                try:
                    f = await uk.open(proc, f"{d}/.htaccess")
                    await uk.close_file(proc, f)
                except FsError:
                    pass
        try:
            f = await uk.open(proc, path)           # send_file: fopen(file, "r")
        except FsError:
            return 404, 0
        if not simple:
            # send_http_header(): dump_default_header's time(NULL), then fflush(stdout):
            # the header is a write() of its own.
            await proc.syscall("gettimeofday")
            await so.write(proc, conn, header(200, uk.kernel.now, st.size, st.mtime))
        now = uk.kernel.now
        if req.method == "GET":
            await self._send_fd(proc, conn, f)
        await self._log_transaction(proc, conn, req_line(req), 200, st.size, now)
        await uk.close_file(proc, f)                # fclose(f)
        return 200, st.size

    async def _send_fd(self, proc: Process, conn, f) -> None:
        """http_request.c send_fd(): ``signal(SIGALRM)``, ``signal(SIGPIPE)``; per
        ``IOBUFSIZE`` piece ``alarm(timeout)`` and ``fread`` (one read() of the file's stdio
        buffer: st_blksize, the 8 KB block; the first read is preceded by _findbuf's
        fstat), ``fwrite`` into stdout's buffer, which is written out whenever it fills;
        after EOF ``fflush(stdout)``, ``alarm(0)`` and two ``signal`` calls. stdout's buffer
        is the socket's st_blksize, ``so_snd.sb_hiwat`` (ULTRIX 4.2 tcp_usrreq.c
        PRU_SENSE), as 4.3BSD stdio's _findbuf sizes it."""
        so, uk, opt = self.sockets, self.uk, self.options
        touch, passes = self.machine.doc_touch, doc_passes(conn)
        for call in ("sigvec", "sigvec"):
            await proc.syscall(call)
        await proc.syscall("fstat")
        pending = b""
        while True:
            await proc.alarm(opt.timeout)
            piece = await uk.read_file(proc, f, opt.iobufsize)
            if not piece:
                break
            touch.touched(len(piece))                     # read(): out of the buffer cache
            pending += piece
            blksize = so.sendspace                        # st_blksize: so_snd.sb_hiwat
            while len(pending) >= blksize:
                await so.write(proc, conn, pending[:blksize])
                touch.touched(blksize * passes)
                pending = pending[blksize:]
        if pending:
            await so.write(proc, conn, pending)
            touch.touched(len(pending) * passes)
        await proc.alarm(0)
        for call in ("sigvec", "sigvec"):
            await proc.syscall(call)


def req_line(req: Request) -> bytes:
    """The request line as the access log shows it."""
    return f"{req.method} {req.url}{' ' + req.version if req.version else ''}".encode("latin-1")
