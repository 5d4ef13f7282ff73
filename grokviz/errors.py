"""The one exception type a user can cause.

Every error that bad input can trigger (a bad path, a broken file, p not prime, a step that is
not in the run) is raised as :class:`GrokvizError` with a message that names the file or value
and says what to do. The CLIs print the message without a traceback; the app shows it in a box.
"""

from __future__ import annotations


class GrokvizError(Exception):
    """A problem with the user's input, described in plain words."""
