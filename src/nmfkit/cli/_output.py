"""The output folder of a command (`--out DIR`): checked before the work, never over foreign files.

    out = OutputFolder(args.out, command="fit", inputs=[args.input], force=args.force)
    out.check(["W.csv", "H.csv", ...])   # before reading or fitting: refuses in one line
    ... work ...
    out.begin()                           # outputs now go to a hidden staging folder inside DIR
    try:
        write to out.path("W.csv") ...
        out.finish(["W.csv", ...])        # moved into DIR, stale files removed, manifest written
    finally:
        out.discard()                     # an interrupted write leaves DIR as it was

Rules: an output never replaces an input file (not even with --force); a file already in DIR is
replaced only if nmfkit wrote it (it is listed in the manifest `.nmfkit-run.json` of the previous run)
or with --force; a rerun removes the files of the previous run that it does not write again; the
manifest is written last.  The outputs are written in full to the staging folder and then renamed
into DIR with Ctrl-C held back for those few renames, so DIR holds either the previous run or the
new one, never a mixture or a truncated file.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile

from .. import __version__
from .._files import TEMP_PREFIX, atomic_write, check_writable_folder

MANIFEST = ".nmfkit-run.json"
MANIFEST_FORMAT = "nmfkit.run/1"


def same_file(a, b) -> bool:
    """Whether paths a and b name the same file (either may not exist yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def read_manifest(folder) -> set | None:
    """The file names listed by the manifest in `folder`: an empty set without one, None if it is not
    a manifest nmfkit wrote."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.lexists(path):
        return set()
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
        files = manifest["files"] if manifest.get("format") == MANIFEST_FORMAT else None
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None
    if not isinstance(files, list):
        return None
    return {name for name in files if _plain_name(name)}   # never act on a path outside the folder


def _inside(path, folder) -> bool:
    """Whether `path` is `folder` or lies under it."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _listing(names, shown=5) -> str:
    """'a, b, c' — at most `shown` names, then how many more."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _plain_name(name) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..", MANIFEST) and os.sep not in name
            and "/" not in name and (os.altsep is None or os.altsep not in name))


class OutputFolder:
    """See the module docstring."""

    def __init__(self, folder, *, command, inputs=(), force=False, option="--out"):
        self.folder = os.fspath(folder)
        self.command = command
        self.inputs = [os.fspath(p) for p in inputs if p is not None]
        self.force = force
        self.option = option
        self.previous = set()
        self.created = None        # the topmost folder this command created, removed again if unused
        self.begun = False
        self.staging = None        # while the outputs are written: the hidden folder they go to

    def path(self, name) -> str:
        """Where output `name` is written now (the staging folder between begin and finish)."""
        return os.path.join(self.staging or self.folder, name)

    def final(self, name) -> str:
        """Where output `name` ends up."""
        return os.path.join(self.folder, name)

    def check(self, planned) -> None:
        """Refuse (ValueError/OSError, one line) before any work if the outputs cannot or must not be
        written; create the folder and try writing a file in it."""
        where = f"{self.option} {self.folder}"
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise ValueError(f"{where} exists and is not a folder")
        top = self._first_missing()
        parent = os.path.dirname(top) if top else self.folder
        if top and not os.path.isdir(parent or "."):
            raise ValueError(f"{where}: {parent} is a file, not a folder")
        for source in self.inputs:
            if os.path.isdir(source) and _inside(self.folder, source):
                raise ValueError(f"{where} is inside the input {source}; choose another output folder")
        for name in [*planned, MANIFEST]:
            target = self.final(name)
            for source in self.inputs:
                if same_file(target, source):
                    raise ValueError(f"{where} would write {name} over the input file {source}; "
                                     "choose another output folder")
            if os.path.isdir(target):
                raise ValueError(f"{where} holds a folder named {name}, where an output file goes")
        previous = read_manifest(self.folder) if os.path.isdir(self.folder) else set()
        if previous is None:
            if not self.force:
                raise ValueError(f"{where} holds a {MANIFEST} that nmfkit did not write; "
                                 "use --force to replace it, or choose another folder")
            previous = set()
        foreign = [name for name in planned if os.path.lexists(self.final(name)) and name not in previous]
        if foreign and not self.force:
            listed = _listing(foreign)
            raise ValueError(f"{where} already holds {listed}, which nmfkit did not write; "
                             "use --force to overwrite, or choose another folder")
        self.previous = previous
        if top:
            try:
                os.makedirs(self.folder)
            except OSError as exc:
                raise OSError(f"{where}: cannot create the folder ({exc.strerror or exc})") from None
            self.created = top
        check_writable_folder(self.folder, where)

    def check_foreign_entries(self) -> None:
        """Refuse a folder holding entries not listed in nmfkit's manifest (for commands whose file names
        are not known before they run)."""
        foreign = sorted(self.entries() - (read_manifest(self.folder) or set()))
        if foreign and not self.force:
            listed = _listing(foreign)
            raise ValueError(f"{self.option} {self.folder} already holds {listed}, which nmfkit did not write; "
                             "use --force to write there anyway, or choose another (empty) folder")

    def entries(self) -> set:
        """The names in the folder now (temporary files excluded)."""
        if not os.path.isdir(self.folder):
            return set()
        return {e for e in os.listdir(self.folder) if e != MANIFEST and not e.startswith(TEMP_PREFIX)}

    def adopt(self, names) -> None:
        """Record files an interrupted command wrote into the folder itself, so that the next run
        recognises them as its own."""
        if names:
            self.begun = True
            self._write_manifest(sorted(self.previous | set(names)), complete=False)

    def begin(self) -> None:
        """From here on `path(name)` is in a hidden staging folder inside the output folder."""
        self.begun = True
        self.staging = tempfile.mkdtemp(prefix=TEMP_PREFIX, suffix="-run", dir=self.folder)

    def finish(self, written) -> None:
        """Move the staged outputs into the folder, remove the previous run's files not written again,
        then write the manifest (last); Ctrl-C waits until this is done."""
        written = [os.path.basename(name) for name in written]
        with _sigint_held_back():
            if self.staging:
                for name in written:
                    os.replace(os.path.join(self.staging, name), self.final(name))
                self.discard()
            for name in sorted(self.previous - set(written)):
                target = self.final(name)
                if os.path.islink(target) or os.path.isfile(target):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target)
            self._write_manifest(written, complete=True)

    def discard(self) -> None:
        """Remove the staging folder and whatever is in it (after finish: nothing to do)."""
        if self.staging:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None

    def abandon(self) -> None:
        """After a failure before anything was written: remove the folder if this command created it
        and it is still empty."""
        if self.created and not self.begun:
            folder = self.folder
            with contextlib.suppress(OSError):
                while True:
                    os.rmdir(folder)           # only empty folders go
                    if os.path.abspath(folder) == os.path.abspath(self.created):
                        break
                    folder = os.path.dirname(folder)

    def _first_missing(self):
        """The topmost folder of `self.folder` that does not exist yet (None if it exists)."""
        path, top = os.path.abspath(self.folder), None
        while not os.path.exists(path):
            top = path
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        return top

    def _write_manifest(self, files, complete):
        manifest = {"format": MANIFEST_FORMAT, "command": self.command, "nmfkit": __version__,
                    "complete": complete, "files": list(files)}
        with atomic_write(self.final(MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2)
            fh.write("\n")


@contextlib.contextmanager
def _sigint_held_back():
    """Run the block with Ctrl-C held back, then raise KeyboardInterrupt if one came (main thread only)."""
    try:
        caught = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:            # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
