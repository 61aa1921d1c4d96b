"""The embedded default's broker: kombu's filesystem transport with two fixes, and the broker
depth as the rest of the code asks for it.

kombu's filesystem transport creates a message file and then writes it; a consumer that lists
the folder in between takes an empty file, and the worker dies on it (`Unrecoverable error:
JSONDecodeError`, seen in `make run` once polling became fast). It also claims a message by
moving it to the system temporary folder, which is a copy on another file system (not an
exclusive claim) and loses the message if the worker dies between the move and the read. Here a
message is written aside and renamed into the queue folder, and claimed by a rename inside the
broker folder; a file that still does not parse is set aside, not fatal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from queue import Empty
from time import monotonic_ns

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

PARTIAL = ".part"  # a file being written: never matches "<queue>.msg", so nobody takes it


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The listing is sorted by name, so the name starts with the (system-wide) monotonic
        # clock: in nanoseconds and zero-padded, where kombu's milliseconds left two messages
        # of one millisecond in random order and gain a digit now and then.
        name = f"{monotonic_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        try:
            with open(final + PARTIAL, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(final + PARTIAL, final)  # atomic: the name appears with its content
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(final + PARTIAL)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(self.processed_folder, name)
            try:
                # A rename within one file system: of two consumers exactly one gets it.
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except OSError:
                continue  # taken by another consumer
            try:
                with open(claimed, "rb") as f:
                    payload = f.read()
                message = loads(bytes_to_str(payload))
            except (OSError, ValueError):
                log.exception("broker: unreadable message %s set aside", claimed)
                with contextlib.suppress(OSError):
                    os.rename(claimed, claimed + ".unreadable")
                continue
            if not self.store_processed:
                os.remove(claimed)
            return message
        raise Empty()


class FilesystemTransport(filesystem.Transport):
    Channel = Channel


def broker_depths() -> dict[str, int]:
    """Messages waiting on each of our queues, through kombu (Redis LLEN, or a count of the
    filesystem transport's message files): the same question whatever the broker."""
    from kombu.exceptions import ChannelError as NoSuchQueue

    from controlplane.celery import app
    from controlplane.queues import Queue

    depths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in Queue:
            try:
                depths[queue.value] = channel.queue_declare(queue.value, passive=True).message_count
            except NoSuchQueue:  # never declared: nothing was ever sent to it
                depths[queue.value] = 0
    return depths
