"""Write a file atomically: all of it or none of it, even if the process is killed while writing.

    write_atomically("runs/last.ckpt", lambda file: file.write(data))

The bytes go to a temporary file beside the target, `.NAME.PID.XXXX.tmp`, are flushed to disk,
and only then does one os.replace make them the file: a reader sees the old file or the new
one, never half of one. A process killed with SIGKILL cannot remove its temporary, so every
write first removes the temporaries of NAME whose process (the PID in their name) is gone.
The file gets the mode a newly created file gets (0666 less the umask), not the private 0600
of a temporary file.
"""
import os
import re
import tempfile
from pathlib import Path


def _process_alive(pid):
    try:
        os.kill(pid, 0)                 # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:             # it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path):
    """Delete the temporaries of `path` left by processes that no longer run; returns their paths."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp$")
    removed = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        match = pattern.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _process_alive(int(match.group(1))):
            try:
                entry.unlink()
                removed.append(entry)
            except FileNotFoundError:   # another process cleaned it first
                pass
    return removed


def _normal_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path, write):
    """Create or replace `path` with what write(file) writes to a binary file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        os.chmod(temporary, _normal_mode())
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())     # the bytes are on disk before the rename makes them "the" file
        os.replace(temporary, path)
    except BaseException:               # including KeyboardInterrupt: never leave the temporary behind
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(path.parent)          # make the rename itself durable
    return path


def _fsync_folder(folder):
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:                     # e.g. Windows, where folders cannot be opened
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
